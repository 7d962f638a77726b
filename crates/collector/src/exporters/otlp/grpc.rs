//! `otlp_grpc` (alias `otlp`): OTLP over gRPC with tonic, the batch encoded once and sent
//! with a pass-through codec.

use super::{ALL, compression_problem};
use crate::component::{BuildContext, SharedConsumer};
use crate::config::GoDuration;
use crate::config::tls::TlsClientConfig;
use crate::exporters::helper::queue::{
    QueueConfig, QueuedExporter, RetryConfig, SendError, Sender,
};
use crate::extensions::bearertokenauth::{self, AuthSettings};
use crate::otlp_codec::{self, Encoding};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
use anyhow::Context;
use async_trait::async_trait;
use bytes::BufMut;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// `otlp_grpc` / `otlp`
pub const GRPC_FACTORY: ExporterFactory = ExporterFactory {
    kind: "otlp_grpc",
    aliases: &["otlp"],
    description: "Sends OTLP over gRPC to another collector or a backend (Jaeger, Tempo, ...)",
    signals: ALL,
    validate: registry::validate::<GrpcExporterConfig>,
    build: build_grpc,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcExporterConfig {
    /// host:port of the receiving server (a http:// or https:// prefix is accepted).
    pub endpoint: String,
    pub tls: TlsClientConfig,
    /// Extra gRPC metadata sent with every request (e.g. authorization).
    pub headers: BTreeMap<String, String>,
    /// gzip (default), zstd or none.
    pub compression: String,
    /// Deadline of one export call. Default 5s.
    pub timeout: GoDuration,
    pub sending_queue: QueueConfig,
    pub retry_on_failure: RetryConfig,
    /// Go's gRPC load-balancing policy. Accepted and ignored (with a warning): one
    /// connection to the endpoint is used.
    pub balancer_name: Option<String>,
    /// Send a token: `auth: {authenticator: bearertokenauth}`.
    pub auth: Option<AuthSettings>,
}

impl Default for GrpcExporterConfig {
    fn default() -> Self {
        GrpcExporterConfig {
            endpoint: String::new(),
            tls: TlsClientConfig::default(),
            headers: BTreeMap::new(),
            compression: "gzip".into(),
            timeout: GoDuration::secs(5),
            sending_queue: QueueConfig::default(),
            retry_on_failure: RetryConfig::default(),
            balancer_name: None,
            auth: None,
        }
    }
}

impl ComponentConfig for GrpcExporterConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.endpoint.is_empty() {
            v.push((
                "",
                "endpoint is required (host:port of the OTLP/gRPC server)".into(),
            ));
        } else if let Err(e) = grpc_uri(&self.endpoint, &self.tls)
            .and_then(|u| Endpoint::from_shared(u.clone()).map_err(|e| format!("\"{u}\": {e}")))
        {
            v.push(("endpoint", e));
        }
        for k in self.headers.keys() {
            if MetadataKey::<tonic::metadata::Ascii>::from_bytes(k.to_ascii_lowercase().as_bytes())
                .is_err()
            {
                v.push((
                    "headers",
                    format!("\"{k}\" is not a valid gRPC metadata name"),
                ));
            }
        }
        v.extend(compression_problem(&self.compression));
        v.extend(self.tls.problems());
        v.extend(self.sending_queue.problems());
        v.extend(self.retry_on_failure.problems());
        v
    }

    fn ignored(&self) -> Vec<(&'static str, &'static str)> {
        vec![(
            "balancer_name",
            "one connection to the endpoint is used; the loadbalancing exporter spreads data over several",
        )]
    }
}

fn grpc_uri(endpoint: &str, tls: &TlsClientConfig) -> Result<String, String> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return Ok(endpoint.to_string());
    }
    if !endpoint.contains(':') {
        return Err(format!("\"{endpoint}\" needs a port, e.g. {endpoint}:4317"));
    }
    let scheme = if tls.insecure { "http" } else { "https" };
    Ok(format!("{scheme}://{endpoint}"))
}

fn read(path: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {path}"))
}

fn build_grpc(
    decoded: &Decoded,
    ctx: BuildContext,
    signal: Signal,
) -> anyhow::Result<SharedConsumer> {
    let cfg: GrpcExporterConfig = registry::typed::<GrpcExporterConfig>(decoded).clone();
    grpc_exporter(&cfg, &ctx, signal)
}

/// An `otlp_grpc` exporter (sender, queue and retries) from an already validated config.
/// Components that manage several OTLP exporters (the `loadbalancing` exporter, one per
/// backend) build them through this.
pub fn grpc_exporter(
    cfg: &GrpcExporterConfig,
    ctx: &BuildContext,
    signal: Signal,
) -> anyhow::Result<SharedConsumer> {
    let cfg = cfg.clone();
    let uri = grpc_uri(&cfg.endpoint, &cfg.tls).map_err(anyhow::Error::msg)?;
    let mut ep = Endpoint::from_shared(uri.clone())?
        .timeout(cfg.timeout.0)
        .connect_timeout(cfg.timeout.0);
    if uri.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &cfg.tls.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(c), Some(k)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
            tls = tls.identity(Identity::from_pem(read(c)?, read(k)?));
        }
        if let Some(name) = &cfg.tls.server_name_override {
            tls = tls.domain_name(name.clone());
        }
        ep = ep.tls_config(tls)?;
    }
    let mut headers = MetadataMap::new();
    for (k, v) in &cfg.headers {
        let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())?;
        headers.insert(
            key,
            MetadataValue::try_from(v.as_str()).with_context(|| format!("header {k}"))?,
        );
    }
    if let Some(a) = &cfg.auth {
        let token = bearertokenauth::lookup(&ctx.host, a, &format!("exporters::{}", ctx.id))?;
        headers.insert(
            "authorization",
            MetadataValue::try_from(token.header_value())
                .context("token is not a valid header value")?,
        );
    }
    let compression = match cfg.compression.as_str() {
        "gzip" => Some(CompressionEncoding::Gzip),
        "zstd" => Some(CompressionEncoding::Zstd),
        _ => None,
    };
    let sender = GrpcSender {
        channel: ep.connect_lazy(),
        headers,
        compression,
        endpoint: cfg.endpoint.clone(),
    };
    QueuedExporter::new(ctx, signal, sender, cfg.sending_queue, cfg.retry_on_failure)
        .map(|e| e as SharedConsumer)
}

struct GrpcSender {
    channel: Channel,
    headers: MetadataMap,
    compression: Option<CompressionEncoding>,
    endpoint: String,
}

fn classify(endpoint: &str, s: tonic::Status) -> SendError {
    use tonic::Code::*;
    use tonic_types::StatusExt;
    // The server's google.rpc.RetryInfo, when it sent one, says when to come back.
    let retry_after = s.get_details_retry_info().and_then(|r| r.retry_delay);
    // The OTLP specification's retryable codes; RESOURCE_EXHAUSTED only with RetryInfo,
    // the server's sign that the exhaustion will pass.
    let retryable = match s.code() {
        Cancelled | DeadlineExceeded | Aborted | OutOfRange | Unavailable | DataLoss => true,
        ResourceExhausted => retry_after.is_some(),
        _ => false,
    };
    let msg = format!("{endpoint}: {:?}: {}", s.code(), s.message());
    SendError {
        retryable,
        message: msg,
        retry_after,
    }
}

#[async_trait]
impl Sender for GrpcSender {
    /// The export request's protobuf bytes, encoded straight from the pipeline's data
    /// (building the generated client's request struct would copy the whole batch first).
    /// tonic compresses them on each attempt: it has no way to send bytes compressed before.
    type Request = (Signal, bytes::Bytes);

    fn prepare(&self, batch: &Batch) -> Result<Self::Request, SendError> {
        Ok((
            batch.signal(),
            otlp_codec::encode(batch, Encoding::Protobuf).into(),
        ))
    }

    async fn send(&self, (signal, body): &Self::Request) -> Result<(), SendError> {
        let body = body.clone();
        let (rejected, message, what) = match signal {
            Signal::Traces => {
                let r: ExportTraceServiceResponse = self.unary(TRACES_PATH, body).await?;
                let ps = r.partial_success.unwrap_or_default();
                (ps.rejected_spans, ps.error_message, "spans")
            }
            Signal::Metrics => {
                let r: ExportMetricsServiceResponse = self.unary(METRICS_PATH, body).await?;
                let ps = r.partial_success.unwrap_or_default();
                (ps.rejected_data_points, ps.error_message, "data points")
            }
            Signal::Logs => {
                let r: ExportLogsServiceResponse = self.unary(LOGS_PATH, body).await?;
                let ps = r.partial_success.unwrap_or_default();
                (ps.rejected_log_records, ps.error_message, "log records")
            }
        };
        if rejected > 0 {
            tracing::warn!(endpoint = %self.endpoint, rejected, message = %message, "the server rejected some {what}");
        }
        Ok(())
    }
}

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

impl GrpcSender {
    /// One OTLP export call with an already encoded request body.
    async fn unary<R: prost::Message + Default + Send + 'static>(
        &self,
        path: &'static str,
        body: bytes::Bytes,
    ) -> Result<R, SendError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .accept_compressed(CompressionEncoding::Gzip);
        if let Some(enc) = self.compression {
            grpc = grpc.send_compressed(enc);
        }
        grpc.ready().await.map_err(|e| {
            classify(
                &self.endpoint,
                tonic::Status::unavailable(format!("not ready: {e}")),
            )
        })?;
        let mut req = tonic::Request::new(body);
        *req.metadata_mut() = self.headers.clone();
        let path = http::uri::PathAndQuery::from_static(path);
        let resp = grpc
            .unary(req, path, PreEncoded::<R>(PhantomData))
            .await
            .map_err(|s| classify(&self.endpoint, s))?;
        Ok(resp.into_inner())
    }
}

/// A gRPC codec whose request is protobuf bytes already encoded and whose response is the
/// message `R`.
struct PreEncoded<R>(PhantomData<R>);

impl<R: prost::Message + Default + Send + 'static> Codec for PreEncoded<R> {
    type Encode = bytes::Bytes;
    type Decode = R;
    type Encoder = RawBody;
    type Decoder = PreEncoded<R>;

    fn encoder(&mut self) -> Self::Encoder {
        RawBody
    }
    fn decoder(&mut self) -> Self::Decoder {
        PreEncoded(PhantomData)
    }
}

/// Writes the encoded request as it is.
struct RawBody;

impl Encoder for RawBody {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: bytes::Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl<R: prost::Message + Default> Decoder for PreEncoded<R> {
    type Item = R;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, tonic::Status> {
        R::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable response: {e}")))
    }
}
