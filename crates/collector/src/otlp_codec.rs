//! OTLP request bodies on the wire: protobuf and OTLP/JSON, gzip and zstd, with size limits
//! applied both to the compressed body and to what it expands to (a 1 KiB gzip bomb must not
//! become a 1 GiB allocation).

use crate::pdata::{Batch, Signal};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::io::{Read, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// From a Content-Type header value; parameters such as `; charset=utf-8` are ignored.
    pub fn from_content_type(ct: &str) -> Option<Encoding> {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error("request body is larger than the limit of {limit} bytes after decompression")]
    TooLarge { limit: usize },
    #[error("unsupported Content-Encoding \"{0}\"; use gzip, zstd or none")]
    UnsupportedEncoding(String),
    #[error("cannot decompress the {encoding} body: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
    #[error("cannot decode the OTLP {signal} request as {encoding}: {reason}")]
    Decode {
        signal: Signal,
        encoding: &'static str,
        reason: String,
    },
}

/// Decompresses according to a Content-Encoding value, refusing to produce more than `limit`
/// bytes.
pub fn decompress(
    body: &[u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    let enc = content_encoding.map(|s| s.trim().to_ascii_lowercase());
    match enc.as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > limit {
                return Err(CodecError::TooLarge { limit });
            }
            Ok(body.to_vec())
        }
        Some("gzip") | Some("x-gzip") => {
            read_limited(flate2::read::GzDecoder::new(body), limit, "gzip")
        }
        Some("deflate") => read_limited(flate2::read::ZlibDecoder::new(body), limit, "deflate"),
        Some("zstd") => {
            let dec = zstd::stream::read::Decoder::new(body).map_err(|e| CodecError::Corrupt {
                encoding: "zstd",
                reason: e.to_string(),
            })?;
            read_limited(dec, limit, "zstd")
        }
        Some(other) => Err(CodecError::UnsupportedEncoding(other.to_string())),
    }
}

fn read_limited(r: impl Read, limit: usize, encoding: &'static str) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut taker = r.take(limit as u64 + 1);
    taker
        .read_to_end(&mut out)
        .map_err(|e| CodecError::Corrupt {
            encoding,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(out)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("writing to a Vec cannot fail");
    e.finish().expect("writing to a Vec cannot fail")
}

pub fn zstd_compress(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).expect("compressing into memory cannot fail")
}

fn enc_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Protobuf => "protobuf",
        Encoding::Json => "JSON",
    }
}

/// Decodes an OTLP export request body (already decompressed).
pub fn decode(signal: Signal, encoding: Encoding, body: &[u8]) -> Result<Batch, CodecError> {
    let err = |reason: String| CodecError::Decode {
        signal,
        encoding: enc_name(encoding),
        reason,
    };
    Ok(match (signal, encoding) {
        (Signal::Traces, Encoding::Protobuf) => Batch::Traces(
            ExportTraceServiceRequest::decode(body)
                .map_err(|e| err(e.to_string()))?
                .resource_spans,
        ),
        (Signal::Metrics, Encoding::Protobuf) => Batch::Metrics(
            ExportMetricsServiceRequest::decode(body)
                .map_err(|e| err(e.to_string()))?
                .resource_metrics,
        ),
        (Signal::Logs, Encoding::Protobuf) => Batch::Logs(
            ExportLogsServiceRequest::decode(body)
                .map_err(|e| err(e.to_string()))?
                .resource_logs,
        ),
        (Signal::Traces, Encoding::Json) => Batch::Traces(
            serde_json::from_slice::<ExportTraceServiceRequest>(body)
                .map_err(|e| err(e.to_string()))?
                .resource_spans,
        ),
        (Signal::Metrics, Encoding::Json) => Batch::Metrics(
            serde_json::from_slice::<ExportMetricsServiceRequest>(body)
                .map_err(|e| err(e.to_string()))?
                .resource_metrics,
        ),
        (Signal::Logs, Encoding::Json) => Batch::Logs(
            serde_json::from_slice::<ExportLogsServiceRequest>(body)
                .map_err(|e| err(e.to_string()))?
                .resource_logs,
        ),
    })
}

/// Encodes a batch as the body of an OTLP export request.
pub fn encode(batch: &Batch, encoding: Encoding) -> Vec<u8> {
    use prost::encoding::message::encode_repeated;
    match encoding {
        // Written field by field rather than through a request struct, which would need a
        // copy of the whole batch. Each request's only field is number 1.
        Encoding::Protobuf => {
            let mut buf = Vec::with_capacity(encoded_len(batch));
            match batch {
                Batch::Traces(r) => encode_repeated(1, r, &mut buf),
                Batch::Metrics(r) => encode_repeated(1, r, &mut buf),
                Batch::Logs(r) => encode_repeated(1, r, &mut buf),
            }
            buf
        }
        Encoding::Json => encode_json(batch).into_bytes(),
    }
}

/// The size of a batch as an OTLP/protobuf request body, without encoding it.
pub fn encoded_len(batch: &Batch) -> usize {
    use prost::encoding::message::encoded_len_repeated;
    match batch {
        Batch::Traces(r) => encoded_len_repeated(1, r),
        Batch::Metrics(r) => encoded_len_repeated(1, r),
        Batch::Logs(r) => encoded_len_repeated(1, r),
    }
}

pub fn encode_json(batch: &Batch) -> String {
    // Serialising these derived types into a String cannot fail.
    match batch {
        Batch::Traces(r) => serde_json::to_string(&ExportTraceServiceRequest {
            resource_spans: r.clone(),
        }),
        Batch::Metrics(r) => serde_json::to_string(&ExportMetricsServiceRequest {
            resource_metrics: r.clone(),
        }),
        Batch::Logs(r) => serde_json::to_string(&ExportLogsServiceRequest {
            resource_logs: r.clone(),
        }),
    }
    .expect("OTLP types serialise to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_hex_ids_and_string_int64_as_the_spec_says() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
          "name":"op","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
          "attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;
        let b = decode(Signal::Traces, Encoding::Json, body).unwrap();
        let Batch::Traces(rs) = &b else { panic!() };
        let span = &rs[0].scope_spans[0].spans[0];
        assert_eq!(
            hex::encode(&span.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1544712660000000000);
        let json = encode_json(&b);
        assert!(
            json.contains("\"traceId\":\"5b8efff798038103d269b633813fc60c\""),
            "{json}"
        );
    }

    #[test]
    fn protobuf_bodies_are_exactly_what_the_request_types_encode() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a"},
          {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"b"}]}]},
          {"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60d","spanId":"eee19b7ec3c1b176","name":"c"}]}]}]}"#;
        let batch = decode(Signal::Traces, Encoding::Json, body).unwrap();
        let Batch::Traces(rs) = &batch else { panic!() };
        let expected = ExportTraceServiceRequest {
            resource_spans: rs.clone(),
        }
        .encode_to_vec();
        assert_eq!(encode(&batch, Encoding::Protobuf), expected);
        assert_eq!(encoded_len(&batch), expected.len());
        assert_eq!(
            decode(Signal::Traces, Encoding::Protobuf, &expected).unwrap(),
            batch
        );
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        let big = vec![0u8; 10 << 20];
        let bomb = gzip(&big);
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            decompress(&bomb, Some("gzip"), 1 << 20),
            Err(CodecError::TooLarge { limit: 1 << 20 })
        );
        let z = zstd_compress(&big);
        assert_eq!(
            decompress(&z, Some("zstd"), 1 << 20),
            Err(CodecError::TooLarge { limit: 1 << 20 })
        );
        assert_eq!(
            decompress(&gzip(b"hello"), Some("gzip"), 100).unwrap(),
            b"hello"
        );
        assert!(matches!(
            decompress(b"not gzip", Some("gzip"), 100),
            Err(CodecError::Corrupt { .. })
        ));
        assert!(matches!(
            decompress(b"x", Some("br"), 100),
            Err(CodecError::UnsupportedEncoding(_))
        ));
    }
}
