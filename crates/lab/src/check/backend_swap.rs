//! Module 13, "instrument once, export anywhere": the learner points the lab's traces at a
//! second backend (the workshop's `vendor-backend`, a collector with its own explorer on
//! :16687) by editing only their copy of the gateway's YAML, restarts the lab with it
//! (`make workshop GATEWAY=workshop/gateway.yaml`), and finds a checkout in the new backend
//! with no service rebuilt. The check reads the file (and runs `collector validate` on it),
//! the running gateway's own metrics (its exporter to the new backend has sent spans), and
//! the new backend's explorer.

use super::explorer::{ApiError, GATEWAY_METRICS, Trace, TraceQuery, VENDOR_EXPLORER};
use super::pipelines::{CONFIG, GatewayConfig, kind, parse, validate};
use super::tour::checkout_span;
use super::{Context, Criterion, Module};

pub const MODULE: Module = Module {
    id: "13",
    title: "Swapping a backend by editing only collector YAML",
    page: "docs/workshop/13-backend-swap.md",
    questions: &[],
};

/// The second backend's OTLP ports (gRPC, HTTP).
const VENDOR_PORTS: [&str; 2] = [":4517", ":4518"];
const OTLP_EXPORTERS: [&str; 3] = ["otlp", "otlp_http", "otlphttp"];

/// The OTLP exporters of `config` that point at the second backend and are wired into a
/// traces pipeline.
pub fn vendor_exporters(config: &GatewayConfig) -> Vec<String> {
    let wired: Vec<String> = config
        .traces_pipelines()
        .into_iter()
        .flat_map(|(_, p)| p.exporters)
        .collect();
    config
        .exporters
        .iter()
        .filter(|(id, _)| OTLP_EXPORTERS.contains(&kind(id)) && wired.contains(id))
        .filter(|(_, body)| {
            body.as_ref()
                .and_then(|b| b["endpoint"].as_str())
                .is_some_and(|e| VENDOR_PORTS.iter().any(|p| e.contains(p)))
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// The second backend's checkout traces (up to `limit`), or why it could not be asked.
pub async fn vendor_checkouts(ctx: &Context, limit: usize) -> Result<Vec<Trace>, String> {
    let query = TraceQuery {
        service: "order-service",
        operation: Some("POST /orders"),
        limit,
        ..TraceQuery::default()
    };
    match ctx.api.traces_at(VENDOR_EXPLORER, &query).await {
        Ok(traces) => Ok(traces),
        Err(ApiError::Failed { message, .. }) => Err(message),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let what = format!("{CONFIG} validates");
    let text = match std::fs::read_to_string(ctx.repo.join(CONFIG)) {
        Ok(text) => text,
        Err(_) => {
            out.push(Criterion::fail(
                what,
                format!(
                    "no {CONFIG}: start from module 10's copy, or mkdir -p workshop && cp \
                     crates/collector/configs/local/gateway.yaml {CONFIG}"
                ),
            ));
            return Ok(out);
        }
    };
    out.push(match validate(&ctx.repo) {
        Ok(summary) => Criterion::pass(what, summary),
        Err(problems) => Criterion::fail(what, problems),
    });

    let what = "a traces pipeline exports to the second backend (127.0.0.1:4517 or :4518)";
    let exporters = parse(&text)
        .map(|c| vendor_exporters(&c))
        .unwrap_or_default();
    out.push(if exporters.is_empty() {
        Criterion::fail(
            what,
            "add an otlp (gRPC, 127.0.0.1:4517) or otlp_http (http://127.0.0.1:4518) exporter \
             under exporters: and list it in service.pipelines.traces.exporters",
        )
    } else {
        Criterion::pass(what, exporters.join(", "))
    });

    let what = format!("the running gateway uses {CONFIG}: its exporter has sent spans");
    let page = ctx.api.metrics(GATEWAY_METRICS).await?;
    let sent: f64 = exporters
        .iter()
        .map(|id| {
            page.samples("otelcol_exporter_sent_spans_total", &[("exporter", id)])
                .sum::<f64>()
        })
        .sum();
    out.push(if sent > 0.0 {
        Criterion::pass(what, format!("{sent} spans sent"))
    } else {
        Criterion::fail(
            what,
            format!(
                "the gateway on :8888 has sent nothing through {}: restart the lab with your \
                 file (Ctrl-C, then make workshop GATEWAY={CONFIG}) and place an order",
                if exporters.is_empty() {
                    "an exporter to the second backend".to_owned()
                } else {
                    exporters.join(", ")
                }
            ),
        )
    });

    let what = "the second backend's explorer (:16687) has a whole checkout trace";
    out.push(match vendor_checkouts(ctx, 50).await {
        Err(e) => Criterion::fail(
            what,
            format!("it does not answer ({e}): it runs with make workshop (vendor-backend)"),
        ),
        Ok(traces) => match traces.iter().find(|t| {
            checkout_span(t).is_some()
                && super::tour::DOWNSTREAM
                    .iter()
                    .all(|s| t.server_span(s).is_some())
        }) {
            Some(t) => Criterion::pass(what, format!("{VENDOR_EXPLORER}/trace/{}", t.trace_id)),
            None => Criterion::fail(
                what,
                "no checkout with every workload in it yet: place an order (the spans take a \
                 few seconds through the collectors)",
            ),
        },
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wired_otlp_exporter_to_the_second_backend_counts() {
        let config = parse(
            "exporters:\n  otlp_http/vendor: {endpoint: http://127.0.0.1:4518}\n  \
             otlp/elsewhere: {endpoint: 127.0.0.1:4417}\n  otlp/unwired: {endpoint: 127.0.0.1:4517}\n\
             service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      \
             exporters: [otlp_http/vendor, otlp/elsewhere]\n",
        )
        .unwrap();
        assert_eq!(vendor_exporters(&config), ["otlp_http/vendor"]);
    }
}
