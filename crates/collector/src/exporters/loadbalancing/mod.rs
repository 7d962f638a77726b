//! The `loadbalancing` exporter, as the Go collector's loadbalancingexporter: spreads
//! telemetry over several OTLP/gRPC backends so that everything with one routing key (a
//! trace id, or a service) reaches the same backend. In the Kind lab the node agents use it
//! to send each trace whole to one of the gateway replicas behind a headless Service, so
//! the gateway sees complete traces.
//!
//! ```yaml
//! exporters:
//!   loadbalancing:
//!     routing_key: traceID            # or service
//!     protocol:
//!       otlp:                         # otlp_grpc settings, without endpoint
//!         tls: {insecure: true}
//!     resolver:
//!       dns: {hostname: otel-gateway-headless.otel-lab.svc.cluster.local, port: 4317}
//!       # or static: {hostnames: [gw-1:4317, gw-2:4317]}
//! ```
//!
//! Each backend gets its own `otlp_grpc` exporter (queue and retries): data for a backend
//! that is down waits and is retried for that backend, never sent to another one, which
//! would split its trace. When the resolved set changes the ring is rebuilt, new data goes
//! to the current backends, and the exporters of removed backends drain and stop.

pub mod resolver;
pub mod ring;
pub mod routing;

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::exporters::otlp::{self, GrpcExporterConfig};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
use crate::telemetry::{Counter, Gauge};
use async_trait::async_trait;
use resolver::{DnsResolver, DnsResolverConfig, Resolver, StaticResolver, StaticResolverConfig};
use ring::Ring;
pub use routing::RoutingKey;
use serde::Deserialize;
use std::sync::{Arc, Mutex, RwLock};

pub const FACTORY: ExporterFactory = ExporterFactory {
    kind: "loadbalancing",
    aliases: &[],
    description: "Spreads data over OTLP/gRPC backends (static list or DNS) by trace id or service, with consistent hashing",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: registry::validate::<LoadBalancingConfig>,
    build,
};

/// `loadbalancing`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancingConfig {
    /// `traceID` (default): spans and logs by trace id; `service`: by service.name.
    /// Metrics are always routed by service.
    #[serde(default)]
    pub routing_key: RoutingKey,
    /// How to talk to each backend. Default: the otlp_grpc exporter's defaults, as in Go.
    #[serde(default)]
    pub protocol: ProtocolConfig,
    /// Where the backends come from: exactly one of `static` or `dns`.
    pub resolver: ResolverConfig,
}

/// `protocol`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// The `otlp_grpc` exporter's settings (tls, headers, compression, timeout,
    /// sending_queue, retry_on_failure), used for every backend. `endpoint` is set per
    /// backend by the resolver and must be left out.
    pub otlp: GrpcExporterConfig,
}

/// `resolver`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolverConfig {
    /// A fixed list of backends.
    #[serde(rename = "static")]
    pub static_list: Option<StaticResolverConfig>,
    /// A DNS name resolved every `interval` (a Kubernetes headless Service).
    pub dns: Option<DnsResolverConfig>,
}

impl ComponentConfig for LoadBalancingConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if !self.protocol.otlp.endpoint.is_empty() {
            v.push((
                "protocol",
                "protocol::otlp::endpoint is set for each backend by the resolver; remove it"
                    .into(),
            ));
        }
        let mut otlp = self.protocol.otlp.clone();
        otlp.endpoint = "backend:4317".into();
        for (_, msg) in otlp.validate() {
            v.push(("protocol", format!("otlp: {msg}")));
        }
        match (&self.resolver.static_list, &self.resolver.dns) {
            (None, None) => v.push((
                "resolver",
                "set one resolver: static (hostnames) or dns (hostname)".into(),
            )),
            (Some(_), Some(_)) => v.push((
                "resolver",
                "set only one resolver: static or dns, not both".into(),
            )),
            (Some(s), None) if s.hostnames.is_empty() => {
                v.push(("resolver", "static::hostnames lists no backend".into()))
            }
            (None, Some(d)) if d.hostname.is_empty() => {
                v.push(("resolver", "dns::hostname is required".into()))
            }
            (None, Some(d)) if d.interval.0.is_zero() => {
                v.push(("resolver", "dns::interval must be more than 0".into()))
            }
            _ => {}
        }
        v
    }
}

fn build(decoded: &Decoded, ctx: BuildContext, signal: Signal) -> anyhow::Result<SharedConsumer> {
    let cfg: LoadBalancingConfig = registry::typed::<LoadBalancingConfig>(decoded).clone();
    let otlp_cfg = cfg.protocol.otlp.clone();
    let backend_ctx = ctx.clone();
    let make_exporter = move |endpoint: &str| {
        let mut c = otlp_cfg.clone();
        c.endpoint = endpoint.to_string();
        otlp::grpc_exporter(&c, &backend_ctx, signal)
    };
    let lb = match (cfg.resolver.static_list, cfg.resolver.dns) {
        (Some(s), _) => {
            // A static list is known now: route from the first batch on.
            let lb = LoadBalancer::new(&ctx, signal, cfg.routing_key, make_exporter);
            lb.update(StaticResolver::new(&s).endpoints().to_vec())?;
            lb
        }
        (None, Some(d)) => LoadBalancer::start(
            &ctx,
            signal,
            cfg.routing_key,
            Arc::new(DnsResolver::new(d)),
            make_exporter,
        ),
        (None, None) => anyhow::bail!("exporters::{}: no resolver", ctx.id),
    };
    Ok(lb)
}

/// Builds the exporter of one backend from its endpoint.
pub type MakeExporter = Box<dyn Fn(&str) -> anyhow::Result<SharedConsumer> + Send + Sync>;

/// The current backends: the ring and one exporter per ring endpoint (same order).
#[derive(Default)]
struct Backends {
    ring: Ring,
    exporters: Vec<SharedConsumer>,
}

/// The running exporter: routes each batch over the ring of current backends.
pub struct LoadBalancer {
    id: String,
    signal: Signal,
    routing_key: RoutingKey,
    make_exporter: MakeExporter,
    backends: RwLock<Arc<Backends>>,
    /// Serialises updates, so two resolutions never build exporters for the same endpoint.
    updating: Mutex<()>,
    /// The resolver loop, stopped at shutdown.
    resolving: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Shutdowns of removed backends' exporters, awaited at shutdown.
    draining: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    num_backends: Gauge,
    resolutions_ok: Counter,
    resolutions_failed: Counter,
}

impl LoadBalancer {
    /// A load balancer with no backend yet; feed it with [`LoadBalancer::update`].
    pub fn new(
        ctx: &BuildContext,
        signal: Signal,
        routing_key: RoutingKey,
        make_exporter: impl Fn(&str) -> anyhow::Result<SharedConsumer> + Send + Sync + 'static,
    ) -> Arc<LoadBalancer> {
        let id = ctx.id.to_string();
        let t = &ctx.telemetry;
        let l = [("exporter", id.as_str()), ("data_type", signal.as_str())];
        let resolutions = |success: &str| {
            t.counter(
                "otelcol_loadbalancer_num_resolutions_total",
                "Number of backend resolutions, by outcome.",
                &[("exporter", id.as_str()), ("success", success)],
            )
        };
        Arc::new(LoadBalancer {
            signal,
            routing_key,
            make_exporter: Box::new(make_exporter),
            backends: RwLock::new(Arc::new(Backends::default())),
            updating: Mutex::new(()),
            resolving: Mutex::new(None),
            draining: Mutex::new(Vec::new()),
            num_backends: t.gauge(
                "otelcol_loadbalancer_num_backends",
                "Current number of backends in use.",
                &l,
            ),
            resolutions_ok: resolutions("true"),
            resolutions_failed: resolutions("false"),
            id,
        })
    }

    /// A load balancer fed by `resolver`: resolved at once, then every `interval`.
    pub fn start(
        ctx: &BuildContext,
        signal: Signal,
        routing_key: RoutingKey,
        resolver: Arc<dyn Resolver>,
        make_exporter: impl Fn(&str) -> anyhow::Result<SharedConsumer> + Send + Sync + 'static,
    ) -> Arc<LoadBalancer> {
        let lb = LoadBalancer::new(ctx, signal, routing_key, make_exporter);
        // A weak reference: the loop must not keep a dropped exporter alive.
        let weak = Arc::downgrade(&lb);
        let handle = tokio::spawn(async move {
            loop {
                let result = resolver.resolve().await;
                let Some(lb) = weak.upgrade() else { return };
                match result {
                    Ok(endpoints) => {
                        lb.resolutions_ok.add(1);
                        if let Err(e) = lb.update(endpoints) {
                            tracing::error!(exporter = %lb.id, error = %e, "cannot use the resolved backends");
                        }
                    }
                    Err(e) => {
                        lb.resolutions_failed.add(1);
                        tracing::warn!(exporter = %lb.id, resolver = %resolver.describe(), error = %e, "backend resolution failed; keeping the current backends");
                    }
                }
                drop(lb);
                let Some(every) = resolver.interval() else {
                    return;
                };
                tokio::time::sleep(every).await;
            }
        });
        *lb.resolving.lock().expect("resolver lock") = Some(handle);
        lb
    }

    /// Makes `endpoints` the backends: exporters for new ones, the ring rebuilt, and the
    /// exporters of removed ones drained and stopped in the background.
    pub fn update(&self, endpoints: Vec<String>) -> anyhow::Result<()> {
        let _serial = self.updating.lock().expect("update lock");
        let ring = Ring::new(endpoints);
        let current = self.backends.read().expect("backends lock").clone();
        if ring.endpoints() == current.ring.endpoints() {
            return Ok(());
        }
        let mut exporters = Vec::with_capacity(ring.endpoints().len());
        for e in ring.endpoints() {
            let existing = current.ring.endpoints().iter().position(|c| c == e);
            exporters.push(match existing {
                Some(i) => current.exporters[i].clone(),
                None => (self.make_exporter)(e)?,
            });
        }
        let removed: Vec<SharedConsumer> = current
            .ring
            .endpoints()
            .iter()
            .zip(&current.exporters)
            .filter(|(e, _)| !ring.endpoints().contains(e))
            .map(|(_, x)| x.clone())
            .collect();
        tracing::info!(exporter = %self.id, signal = %self.signal, backends = ?ring.endpoints(), "backends changed");
        self.num_backends.set(ring.endpoints().len() as i64);
        *self.backends.write().expect("backends lock") = Arc::new(Backends { ring, exporters });
        let mut draining = self.draining.lock().expect("draining lock");
        draining.retain(|t| !t.is_finished());
        for x in removed {
            // What was queued for a removed backend is still sent to it while it drains.
            draining.push(tokio::spawn(async move { x.shutdown().await }));
        }
        Ok(())
    }

    /// The backends in use, sorted.
    pub fn endpoints(&self) -> Vec<String> {
        self.backends
            .read()
            .expect("backends lock")
            .ring
            .endpoints()
            .to_vec()
    }
}

#[async_trait]
impl Consumer for LoadBalancer {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let backends = self.backends.read().expect("backends lock").clone();
        if backends.ring.is_empty() {
            return Err(ConsumeError::retryable(format!(
                "exporter {}: no backend resolved yet",
                self.id
            )));
        }
        let ring = &backends.ring;
        let parts = routing::split(batch, self.routing_key, |key| {
            ring.index_for(key).expect("ring is not empty")
        });
        let sends = parts
            .into_iter()
            .map(|(i, part)| backends.exporters[i].consume(part));
        let results = futures::future::join_all(sends).await;
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    async fn shutdown(&self) {
        if let Some(r) = self.resolving.lock().expect("resolver lock").take() {
            r.abort();
        }
        let current = std::mem::take(&mut *self.backends.write().expect("backends lock"));
        futures::future::join_all(current.exporters.iter().map(|x| x.shutdown())).await;
        let draining = std::mem::take(&mut *self.draining.lock().expect("draining lock"));
        futures::future::join_all(draining).await;
    }
}
