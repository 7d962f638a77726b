//! Translation between HTTP and Lambda Function URL events (payload format version 2.0),
//! following the shapes AWS documents for Function URLs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

/// Lambda's limit on a synchronous invocation's payload.
pub(super) const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// The parts of an HTTP request that a Function URL event carries.
pub(super) struct HttpRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub peer: SocketAddr,
}

/// Builds the event JSON Lambda would send for `request`.
pub(super) fn function_url_event(
    request: &HttpRequest<'_>,
    request_id: &str,
    url_id: &str,
) -> Value {
    // Function URLs lowercase header names and join repeated values with commas; cookies
    // travel separately.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in request.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let source_ip = request.peer.ip().to_string();
    headers
        .entry("x-forwarded-for".to_owned())
        .or_insert_with(|| source_ip.clone());
    headers.insert("x-forwarded-proto".to_owned(), "http".to_owned());
    headers.insert(
        "x-forwarded-port".to_owned(),
        request.peer.port().to_string(),
    );
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut query: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(axum::extract::Query(pairs)) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(request.uri)
    {
        for (key, value) in pairs {
            query
                .entry(key)
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(&value);
                })
                .or_insert(value);
        }
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let domain = format!("{url_id}.lambda-url.us-east-1.on.aws");
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.uri.path(),
        "rawQueryString": request.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": domain,
            "domainPrefix": url_id,
            "http": {
                "method": request.method.as_str(),
                "path": request.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(now.as_secs()),
            "timeEpoch": now.as_millis() as u64,
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !request.body.is_empty() {
        let content_type = request
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        match std::str::from_utf8(request.body) {
            Ok(text) if is_textual(content_type) => event["body"] = json!(text),
            _ => {
                event["body"] = json!(BASE64.encode(request.body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event
}

/// Function URLs pass text bodies as they are and base64-encode everything else.
fn is_textual(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
        )
}

/// Why a function's response could not be turned into HTTP.
#[derive(Debug, thiserror::Error)]
pub(super) enum ResponseError {
    #[error("the function's response is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the function's response has an invalid statusCode: {0}")]
    BadStatus(Value),
    #[error("the function's response body is marked base64 but is not: {0}")]
    BadBase64(base64::DecodeError),
}

/// Turns the function's output into the HTTP response, as Function URLs do: an object with
/// `statusCode` is a full response; any other JSON is a 200 `application/json` body.
pub(super) fn http_response(output: &[u8]) -> Result<Response, ResponseError> {
    let value: Value = serde_json::from_slice(output).map_err(ResponseError::NotJson)?;
    let Some(status) = value.get("statusCode") else {
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(Bytes::copy_from_slice(output)))
            .expect("a static response is valid"));
    };
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| ResponseError::BadStatus(status.clone()))?;

    let mut response = Response::builder().status(status);
    if let Some(headers) = value.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value),
            ) {
                response = response.header(name, value);
            }
        }
    }
    if let Some(cookies) = value.get("cookies").and_then(Value::as_array) {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            if let Ok(cookie) = HeaderValue::try_from(cookie) {
                response = response.header(header::SET_COOKIE, cookie);
            }
        }
    }
    let body = match value.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(body)) => {
            if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
                Bytes::from(BASE64.decode(body).map_err(ResponseError::BadBase64)?)
            } else {
                Bytes::from(body.clone())
            }
        }
        Some(other) => Bytes::from(other.to_string()),
    };
    Ok(response
        .body(Body::from(body))
        .expect("headers were validated one by one"))
}

/// The X-Ray trace header Lambda passes as `Lambda-Runtime-Trace-Id`, derived from the
/// W3C `traceparent` when the caller sent one so both name the same trace.
pub(super) fn xray_trace_id(traceparent: Option<&str>) -> String {
    let parsed = traceparent.and_then(|tp| {
        let mut parts = tp.split('-');
        let (_version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        (trace_id.len() == 32 && span_id.len() == 16).then(|| {
            let sampled = u8::from_str_radix(flags, 16).map_or(0, |f| f & 1);
            (trace_id.to_owned(), span_id.to_owned(), sampled)
        })
    });
    let (trace_id, parent, sampled) = parsed.unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        (id[..32].to_owned(), id[..16].to_owned(), 0)
    });
    format!(
        "Root=1-{}-{};Parent={parent};Sampled={sampled}",
        &trace_id[..8],
        &trace_id[8..]
    )
}

/// `12/Mar/2020:19:03:58 +0000`, the request time format of Function URL events.
fn clf_time(unix_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time_is_formatted_like_function_url_events() {
        // 2020-03-12T19:03:58Z, the example in AWS's Function URL documentation.
        assert_eq!(clf_time(1_584_039_838), "12/Mar/2020:19:03:58 +0000");
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
    }

    #[test]
    fn xray_trace_id_names_the_same_trace_as_traceparent() {
        let id = xray_trace_id(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(
            id,
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
    }

    #[test]
    fn event_lowercases_headers_and_base64_encodes_binary_bodies() {
        let mut headers = HeaderMap::new();
        headers.insert("Traceparent", HeaderValue::from_static("00-abc"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.append("X-Multi", HeaderValue::from_static("a"));
        headers.append("X-Multi", HeaderValue::from_static("b"));
        let uri: Uri = "/score?x=1&x=2".parse().unwrap();
        let event = function_url_event(
            &HttpRequest {
                method: &Method::POST,
                uri: &uri,
                headers: &headers,
                body: &[0xff, 0x00],
                peer: "127.0.0.1:5555".parse().unwrap(),
            },
            "req-1",
            "emulator",
        );
        assert_eq!(event["headers"]["traceparent"], "00-abc");
        assert_eq!(event["headers"]["x-multi"], "a,b");
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(event["rawPath"], "/score");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], BASE64.encode([0xff, 0x00]));
    }

    #[test]
    fn plain_json_output_becomes_a_200() {
        let response = http_response(br#"{"ok":true}"#).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn structured_output_sets_status_and_headers() {
        let response = http_response(
            br#"{"statusCode":418,"headers":{"x-a":"b"},"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(response.headers()["x-a"], "b");
    }
}
