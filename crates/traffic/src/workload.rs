//! Sends one planned request as a traced client: every request is the root of its own trace.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::TraceContextExt as _;
use rand::Rng as _;
use serde_json::Value;
use telemetry::http_client::TracedClient;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::mix::{PlannedRequest, RequestKind};

/// How many created order ids are kept for `GET /orders/{id}`.
const REMEMBERED_ORDERS: usize = 500;

/// What one request did.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: RequestKind,
    /// The HTTP status, or `None` when no response arrived.
    pub status: Option<u16>,
    pub latency: Duration,
    /// The trace the request belongs to: from the order response's `trace_id` when it has
    /// one, else from the client span.
    pub trace_id: Option<String>,
    /// Why it failed, for transport errors and 5xx responses.
    pub error: Option<String>,
}

impl Sample {
    /// A transport error or a 5xx: something the learner should go and look at.
    pub fn is_error(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
}

/// The services under load and what the run has learnt about them.
pub struct Workload {
    client: TracedClient,
    order_service: String,
    inventory_service: String,
    skus: Vec<String>,
    created_orders: Mutex<Vec<String>>,
}

impl Workload {
    pub fn new(
        client: TracedClient,
        order_service: &str,
        inventory_service: &str,
        skus: Vec<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            order_service: order_service.trim_end_matches('/').to_owned(),
            inventory_service: inventory_service.trim_end_matches('/').to_owned(),
            skus,
            created_orders: Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` and reports what happened; never fails, failures are samples too.
    pub async fn send(&self, mut request: PlannedRequest) -> Sample {
        let order_id = if request.kind == RequestKind::LookupOrder {
            let id = self.known_order();
            if id.is_none() {
                // Nothing ordered yet: the shopper looks at a product instead.
                request.kind = RequestKind::ViewProduct;
                request.sku = Some(self.skus[rand::rng().random_range(0..self.skus.len())].clone());
            }
            id
        } else {
            None
        };
        let kind = request.kind;
        let span = tracing::info_span!(
            parent: None,
            "traffic.request",
            otel.name = %format!("traffic.{}", kind.name()),
            otel.kind = "internal",
            otel.status_code = Empty,
            traffic.kind = kind.name(),
            order.id = Empty,
        );
        let builder = match (&request.order, kind) {
            (Some(order), _) => self
                .client
                .post(format!("{}/orders", self.order_service))
                .json(order),
            (None, RequestKind::LookupOrder) => self.client.get(format!(
                "{}/orders/{}",
                self.order_service,
                order_id.as_deref().unwrap_or_default()
            )),
            (None, RequestKind::ViewProduct) => self.client.get(format!(
                "{}/inventory/{}",
                self.inventory_service,
                request.sku.as_deref().unwrap_or_default()
            )),
            (None, _) => self
                .client
                .get(format!("{}/inventory", self.inventory_service)),
        }
        .header("x-traffic-kind", kind.name());

        let started = Instant::now();
        let result = async {
            let response = self.client.send(builder).await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .instrument(span.clone())
        .await;
        let latency = started.elapsed();

        let client_trace_id = {
            let context = span.context();
            let span_context = context.span().span_context().clone();
            span_context
                .is_valid()
                .then(|| span_context.trace_id().to_string())
        };
        let mut sample = Sample {
            kind,
            status: None,
            latency,
            trace_id: client_trace_id,
            error: None,
        };
        match result {
            Ok((status, body)) => {
                sample.status = Some(status);
                let json: Option<Value> = serde_json::from_slice(&body).ok();
                if let Some(trace_id) = json
                    .as_ref()
                    .and_then(|j| j.get("trace_id"))
                    .and_then(Value::as_str)
                    .filter(|t| t.len() == 32)
                {
                    sample.trace_id = Some(trace_id.to_owned());
                }
                if kind.places_order()
                    && (200..300).contains(&status)
                    && let Some(id) = json.as_ref().and_then(order_id_of)
                {
                    span.record("order.id", id.as_str());
                    self.remember_order(id);
                }
                if status >= 500 {
                    span.record("otel.status_code", "error");
                    // One line per message in the summary, whatever the body looks like.
                    let text = String::from_utf8_lossy(&body);
                    let text: String = text
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .chars()
                        .take(160)
                        .collect();
                    sample.error = Some(format!("HTTP {status}: {text}"));
                }
            }
            Err(err) => {
                span.record("otel.status_code", "error");
                sample.error = Some(describe(&err));
            }
        }
        sample
    }

    fn known_order(&self) -> Option<String> {
        let orders = self.created_orders.lock().expect("orders lock poisoned");
        (!orders.is_empty()).then(|| orders[rand::rng().random_range(0..orders.len())].clone())
    }

    fn remember_order(&self, id: String) {
        let mut orders = self.created_orders.lock().expect("orders lock poisoned");
        if orders.len() >= REMEMBERED_ORDERS {
            orders.remove(0);
        }
        orders.push(id);
    }
}

/// The order id in an order-service response: `id` (or `order_id`), string or number.
fn order_id_of(json: &Value) -> Option<String> {
    let id = json.get("id").or_else(|| json.get("order_id"))?;
    match id {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A transport error with its causes, which reqwest keeps in the source chain.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
