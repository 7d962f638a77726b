//! Settings read from the standard `OTEL_*` environment variables.

use std::time::Duration;

/// The OTLP transport, from `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `grpc` (the default): one endpoint for all signals, port 4317.
    Grpc,
    /// `http/protobuf`: per-signal paths `/v1/traces`, `/v1/metrics`, `/v1/logs`, port 4318.
    HttpProtobuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "OTEL_EXPORTER_OTLP_PROTOCOL={0:?} is not supported: use \"grpc\" or \"http/protobuf\""
    )]
    Protocol(String),
    #[error("OTEL_METRIC_EXPORT_INTERVAL={0:?} is not a number of milliseconds")]
    MetricInterval(String),
}

/// One OTLP signal, for choosing its endpoint.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }
    fn env_suffix(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub disabled: bool,
    pub protocol: OtlpProtocol,
    base_endpoint: Option<String>,
    pub metric_interval: Duration,
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let disabled =
            non_empty_env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let protocol = match non_empty_env("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            None | Some("grpc") => OtlpProtocol::Grpc,
            Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
            Some(other) => return Err(ConfigError::Protocol(other.to_owned())),
        };
        let metric_interval = match non_empty_env("OTEL_METRIC_EXPORT_INTERVAL") {
            None => Duration::from_millis(5000),
            Some(v) => Duration::from_millis(
                v.parse::<u64>()
                    .map_err(|_| ConfigError::MetricInterval(v.clone()))?,
            ),
        };
        Ok(Self {
            disabled,
            protocol,
            base_endpoint: non_empty_env("OTEL_EXPORTER_OTLP_ENDPOINT"),
            metric_interval,
        })
    }

    /// The URL one signal is exported to: the per-signal variable verbatim, else the base
    /// endpoint (plus the signal path for http/protobuf), else the local agent.
    pub fn endpoint(&self, signal: Signal) -> String {
        if let Some(url) = non_empty_env(&format!(
            "OTEL_EXPORTER_OTLP_{}_ENDPOINT",
            signal.env_suffix()
        )) {
            return url;
        }
        match self.protocol {
            OtlpProtocol::Grpc => self
                .base_endpoint
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:4317".to_owned()),
            OtlpProtocol::HttpProtobuf => {
                let base = self
                    .base_endpoint
                    .clone()
                    .unwrap_or_else(|| "http://127.0.0.1:4318".to_owned());
                format!("{}{}", base.trim_end_matches('/'), signal.path())
            }
        }
    }
}
