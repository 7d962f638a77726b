//! Where the backends come from: a static list, or a DNS name (a Kubernetes headless
//! Service lists one A record per ready pod) asked again every `interval`.

use crate::config::GoDuration;
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

/// The port a backend without one is reached on (OTLP/gRPC).
pub const DEFAULT_PORT: u16 = 4317;

/// Tells the load balancer the current backends as `host:port` endpoints.
#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// The current set of backends. An error keeps the previous set in use.
    async fn resolve(&self) -> Result<Vec<String>, String>;
    /// How often to ask again; None means the set never changes.
    fn interval(&self) -> Option<Duration>;
    /// What is being resolved, for logs.
    fn describe(&self) -> String;
}

/// `resolver::static`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticResolverConfig {
    /// Backends as `host:port` (or `host`, meaning port 4317).
    pub hostnames: Vec<String>,
}

/// `resolver::dns`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsResolverConfig {
    /// Name whose A/AAAA records are the backends, e.g. a headless Service
    /// `otel-gateway-headless.otel-lab.svc.cluster.local`.
    pub hostname: String,
    /// Port of every backend. Default 4317.
    pub port: u16,
    /// How often to resolve again. Default 5s.
    pub interval: GoDuration,
    /// Deadline of one resolution. Default 1s.
    pub timeout: GoDuration,
}

impl Default for DnsResolverConfig {
    fn default() -> Self {
        DnsResolverConfig {
            hostname: String::new(),
            port: DEFAULT_PORT,
            interval: GoDuration::secs(5),
            timeout: GoDuration::secs(1),
        }
    }
}

/// Adds the default port where a hostname has none (IPv6 literals in brackets).
pub fn with_port(host: &str) -> String {
    let has_port = match host.rsplit_once(':') {
        Some((h, p)) => p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')),
        None => false,
    };
    if has_port {
        host.to_string()
    } else {
        format!("{host}:{DEFAULT_PORT}")
    }
}

/// A fixed list.
pub struct StaticResolver {
    endpoints: Vec<String>,
}

impl StaticResolver {
    pub fn new(cfg: &StaticResolverConfig) -> StaticResolver {
        StaticResolver {
            endpoints: cfg.hostnames.iter().map(|h| with_port(h)).collect(),
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self) -> Result<Vec<String>, String> {
        Ok(self.endpoints.clone())
    }
    fn interval(&self) -> Option<Duration> {
        None
    }
    fn describe(&self) -> String {
        format!("static list {:?}", self.endpoints)
    }
}

/// The system resolver (`/etc/hosts`, then DNS), as every other name in the collector.
pub struct DnsResolver {
    cfg: DnsResolverConfig,
}

impl DnsResolver {
    pub fn new(cfg: DnsResolverConfig) -> DnsResolver {
        DnsResolver { cfg }
    }
}

#[async_trait]
impl Resolver for DnsResolver {
    async fn resolve(&self) -> Result<Vec<String>, String> {
        let target = (self.cfg.hostname.as_str(), self.cfg.port);
        match tokio::time::timeout(self.cfg.timeout.0, tokio::net::lookup_host(target)).await {
            Err(_) => Err(format!(
                "resolving {} took longer than {}",
                self.cfg.hostname, self.cfg.timeout
            )),
            Ok(Err(e)) => Err(format!("resolving {}: {e}", self.cfg.hostname)),
            // SocketAddr's Display puts IPv6 addresses in brackets, as endpoints need.
            Ok(Ok(addrs)) => Ok(addrs.map(|a| a.to_string()).collect()),
        }
    }
    fn interval(&self) -> Option<Duration> {
        Some(self.cfg.interval.0)
    }
    fn describe(&self) -> String {
        format!("DNS name {}:{}", self.cfg.hostname, self.cfg.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_without_a_port_get_4317() {
        assert_eq!(with_port("gateway"), "gateway:4317");
        assert_eq!(with_port("gateway:4417"), "gateway:4417");
        assert_eq!(with_port("10.0.0.1"), "10.0.0.1:4317");
        assert_eq!(with_port("[::1]:4000"), "[::1]:4000");
        assert_eq!(with_port("[::1]"), "[::1]:4317");
    }

    #[tokio::test]
    async fn dns_resolver_lists_the_addresses_of_a_name_with_the_port() {
        let r = DnsResolver::new(DnsResolverConfig {
            hostname: "localhost".into(),
            port: 4999,
            ..Default::default()
        });
        let got = r.resolve().await.unwrap();
        assert!(
            got.iter()
                .any(|e| e == "127.0.0.1:4999" || e == "[::1]:4999"),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn dns_resolver_reports_a_name_that_does_not_resolve() {
        let r = DnsResolver::new(DnsResolverConfig {
            hostname: "no-such-host.invalid".into(),
            ..Default::default()
        });
        let err = r.resolve().await.unwrap_err();
        assert!(err.contains("no-such-host.invalid"), "{err}");
    }
}
