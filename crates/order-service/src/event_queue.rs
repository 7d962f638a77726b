//! Where the outbox relay sends `order.placed` events, chosen by `ORDERS_QUEUE`: a queue
//! name means the lab's local queue (the `queue` crate, a SQLite file the Lambda emulator's
//! event source reads), an `http(s)://` queue URL means Amazon SQS (the Kind lab's
//! LocalStack, or SQS itself). The relay, its spans and the message's attributes are the
//! same for both; only `messaging.system` and the message id's origin differ.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::BehaviorVersion;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageAttributeValue;
use aws_smithy_http_client::tls;
use queue::Queues;
use telemetry::messaging::{self, MessageAttributes};

/// A destination for events, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventQueue {
    /// The queue `name` in the local queue file at `path`.
    Local { path: PathBuf, name: String },
    /// The SQS queue at this queue URL.
    Sqs { url: String },
}

impl EventQueue {
    /// The queue's name, as `messaging.destination.name` reports it.
    pub fn name(&self) -> &str {
        match self {
            Self::Local { name, .. } => name,
            Self::Sqs { url } => url.trim_end_matches('/').rsplit('/').next().unwrap_or(url),
        }
    }
}

/// Why a send failed; the event stays in the outbox and is sent again.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Local(#[from] queue::Error),
    #[error("SQS SendMessage to {url} failed: {detail}")]
    Sqs { url: String, detail: String },
    #[error("the send was interrupted: {0}")]
    Interrupted(#[from] tokio::task::JoinError),
}

/// Sends messages to one [`EventQueue`].
#[derive(Clone)]
pub struct Sender {
    target: Target,
    name: String,
}

#[derive(Clone)]
enum Target {
    Local {
        queues: Arc<Queues>,
    },
    Sqs {
        client: aws_sdk_sqs::Client,
        url: String,
    },
}

impl Sender {
    /// Opens the local queue file, or makes an SQS client with the AWS SDK's usual
    /// configuration (credentials and region from the environment, profile or instance).
    pub async fn open(queue: &EventQueue) -> anyhow::Result<Self> {
        let target = match queue {
            EventQueue::Local { path, .. } => Target::Local {
                queues: Arc::new(
                    Queues::open(path)
                        .with_context(|| format!("opening the queue file {}", path.display()))?,
                ),
            },
            EventQueue::Sqs { url } => Target::Sqs {
                client: sqs_client(url).await?,
                url: url.clone(),
            },
        };
        Ok(Self {
            target,
            name: queue.name().to_owned(),
        })
    }

    /// `messaging.system` of the sends.
    pub fn system(&self) -> &'static str {
        match self.target {
            Target::Local { .. } => messaging::LOCAL_QUEUE_SYSTEM,
            Target::Sqs { .. } => messaging::SQS_SYSTEM,
        }
    }

    /// The queue's name.
    pub fn queue_name(&self) -> &str {
        &self.name
    }

    /// Sends one message; returns the id the queue gave it.
    pub async fn send(
        &self,
        body: String,
        attributes: MessageAttributes,
    ) -> Result<String, SendError> {
        match &self.target {
            Target::Local { queues } => {
                let (queues, name) = (queues.clone(), self.name.clone());
                Ok(
                    tokio::task::spawn_blocking(move || queues.send(&name, &body, &attributes))
                        .await??,
                )
            }
            Target::Sqs { client, url } => {
                let failed = |detail: String| SendError::Sqs {
                    url: url.clone(),
                    detail,
                };
                let mut request = client.send_message().queue_url(url).message_body(body);
                // SQS refuses an attribute with an empty value (an empty `tracestate`).
                for (key, value) in attributes.into_iter().filter(|(_, v)| !v.is_empty()) {
                    let value = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(value)
                        .build()
                        .map_err(|err| failed(err.to_string()))?;
                    request = request.message_attributes(key, value);
                }
                let sent = request
                    .send()
                    .await
                    .map_err(|err| failed(DisplayErrorContext(&err).to_string()))?;
                sent.message_id
                    .ok_or_else(|| failed("the answer carries no MessageId".to_owned()))
            }
        }
    }
}

/// The AWS SDK's HTTP client with rustls on ring (the workspace's TLS), in place of the
/// SDK's default (rustls on aws-lc, a second crypto library to build).
pub fn aws_http_client() -> aws_sdk_sqs::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// An SQS client for the queue at `url`. Where the environment names no region, the
/// region is read from the queue URL (`sqs.<region>.amazonaws.com`); where it names no
/// endpoint and the queue is not on AWS (LocalStack, say), requests go to the queue URL's
/// origin, which serves the SQS API there.
async fn sqs_client(url: &str) -> anyhow::Result<aws_sdk_sqs::Client> {
    let parsed = reqwest::Url::parse(url)
        .with_context(|| format!("ORDERS_QUEUE={url:?} is neither a queue name nor a URL"))?;
    let host = parsed
        .host_str()
        .with_context(|| format!("ORDERS_QUEUE={url:?} names no host"))?
        .to_owned();
    // The relay retries with its own backoff; a send must not hang it.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_http_client())
        .timeout_config(timeouts)
        .load()
        .await;
    let mut config = aws_sdk_sqs::config::Builder::from(&shared);
    if shared.region().is_none() {
        let region = host
            .strip_prefix("sqs.")
            .and_then(|rest| rest.split('.').next())
            .with_context(|| {
                format!("no AWS region for the queue {url}: set AWS_REGION (or AWS_DEFAULT_REGION)")
            })?;
        config = config.region(aws_config::Region::new(region.to_owned()));
    }
    let on_aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    let endpoint_configured = shared.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_SQS").is_some_and(|v| !v.is_empty());
    if !on_aws && !endpoint_configured {
        config = config.endpoint_url(parsed.origin().ascii_serialization());
    }
    Ok(aws_sdk_sqs::Client::from_conf(config.build()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_name_is_the_urls_last_segment() {
        let sqs = EventQueue::Sqs {
            url: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders".into(),
        };
        assert_eq!(sqs.name(), "orders");
        let local = EventQueue::Local {
            path: "queue.db".into(),
            name: "orders".into(),
        };
        assert_eq!(local.name(), "orders");
    }
}
