//! The HTTP client of the HTTP-based exporters (otlp_http, loki): plain HTTP or TLS with
//! the system's roots, an extra CA and a client certificate, HTTP/1.1 and HTTP/2; and one
//! POST with a deadline, its failure sorted into retryable or not.

use std::time::Duration;

use anyhow::Context as _;

use super::queue::SendError;
use crate::config::tls::TlsClientConfig;

pub type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// An HTTP/1.1 and HTTP/2 client speaking plain HTTP or TLS (system roots, plus `ca_file`,
/// plus a client certificate for mTLS). The crypto provider is passed explicitly rather than
/// installed process-wide, so nothing else in the process is affected.
pub fn https_client(tls: &TlsClientConfig) -> anyhow::Result<HttpsClient> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = &tls.ca_file {
        for cert in CertificateDer::pem_file_iter(ca)
            .with_context(|| format!("cannot read ca_file {ca}"))?
        {
            roots.add(cert.with_context(|| format!("bad certificate in {ca}"))?)?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            let certs = CertificateDer::pem_file_iter(c)
                .with_context(|| format!("cannot read cert_file {c}"))?
                .collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_file(k)
                .with_context(|| format!("cannot read key_file {k}"))?;
            builder.with_client_auth_cert(certs, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

/// Why one HTTP POST did not succeed.
pub(crate) enum PostError {
    /// No answer (refused, reset, timed out): always worth another try.
    NoAnswer(String),
    /// An answer other than 2xx, with its Retry-After and the start of its body.
    Status {
        status: http::StatusCode,
        retry_after: Option<Duration>,
        text: String,
    },
}

impl PostError {
    /// A send error for `url`, retryable when there was no answer or `retryable(status)`.
    pub(crate) fn classify(
        self,
        url: impl std::fmt::Display,
        retryable: impl Fn(u16) -> bool,
    ) -> SendError {
        match self {
            PostError::NoAnswer(why) => SendError::retryable(format!("{url}: {why}")),
            PostError::Status {
                status,
                retry_after,
                text,
            } => SendError {
                retryable: retryable(status.as_u16()),
                message: format!("{url}: HTTP {status}: {text}"),
                retry_after,
            },
        }
    }
}

/// Sends one request and waits at most `timeout` for its answer.
pub(crate) async fn post(
    client: &HttpsClient,
    req: http::Request<http_body_util::Full<bytes::Bytes>>,
    timeout: Duration,
) -> Result<(), PostError> {
    use http_body_util::BodyExt;
    let resp = match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => return Err(PostError::NoAnswer(format!("no answer within {timeout:?}"))),
        Ok(Err(e)) => return Err(PostError::NoAnswer(e.to_string())),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = match tokio::time::timeout(timeout, resp.into_body().collect()).await {
        Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        _ => String::new(),
    };
    Err(PostError::Status {
        status,
        retry_after,
        text: text.chars().filter(|c| !c.is_control()).take(300).collect(),
    })
}
