//! The `attributes` processor, after the Go collector's `attributesprocessor`: runs a list
//! of `actions` (insert, update, upsert, delete, hash, extract, convert) on the attributes
//! of every span, log record and metric data point.
//!
//! ```yaml
//! processors:
//!   attributes:
//!     actions:
//!       - {key: deployment.environment.name, value: lab, action: insert}
//!       - {key: enduser.id, action: hash}
//!       - {key: "", pattern: ^secret\., action: delete}
//! ```
//!
//! Not supported (refused as unknown keys): `include`/`exclude` match properties and
//! `from_context`.

pub mod actions;

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ProcessorFactory};
use actions::{ActionConfig, Actions};
use async_trait::async_trait;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use serde::Deserialize;
use std::sync::Arc;

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "attributes",
    description: "Inserts, updates, deletes or hashes span, log and data-point attributes",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: registry::validate::<AttributesConfig>,
    build,
};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttributesConfig {
    /// The actions, applied in order to each item's attributes. At least one is required;
    /// see [`ActionConfig`] for the keys of one action.
    pub actions: Vec<ActionConfig>,
}

impl ComponentConfig for AttributesConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        if self.actions.is_empty() {
            return vec![("actions", "at least one action is required".into())];
        }
        match actions::compile(&self.actions) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|m| ("actions", m)).collect(),
        }
    }
}

fn build(
    decoded: &Decoded,
    _ctx: BuildContext,
    _signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: AttributesConfig = registry::typed::<AttributesConfig>(decoded).clone();
    let actions = actions::compile(&cfg.actions).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    Ok(Arc::new(AttributesProcessor { actions, next }))
}

pub struct AttributesProcessor {
    actions: Actions,
    next: SharedConsumer,
}

impl AttributesProcessor {
    pub fn new(actions: Actions, next: SharedConsumer) -> Self {
        AttributesProcessor { actions, next }
    }

    fn process(&self, batch: &mut Batch) {
        let a = &self.actions;
        match batch {
            Batch::Traces(rs) => rs
                .iter_mut()
                .flat_map(|r| &mut r.scope_spans)
                .flat_map(|s| &mut s.spans)
                .for_each(|span| a.apply(&mut span.attributes)),
            Batch::Logs(rl) => rl
                .iter_mut()
                .flat_map(|r| &mut r.scope_logs)
                .flat_map(|s| &mut s.log_records)
                .for_each(|log| a.apply(&mut log.attributes)),
            Batch::Metrics(rm) => {
                for m in rm
                    .iter_mut()
                    .flat_map(|r| &mut r.scope_metrics)
                    .flat_map(|s| &mut s.metrics)
                {
                    match &mut m.data {
                        Some(Data::Gauge(g)) => g
                            .data_points
                            .iter_mut()
                            .for_each(|p| a.apply(&mut p.attributes)),
                        Some(Data::Sum(s)) => s
                            .data_points
                            .iter_mut()
                            .for_each(|p| a.apply(&mut p.attributes)),
                        Some(Data::Histogram(h)) => h
                            .data_points
                            .iter_mut()
                            .for_each(|p| a.apply(&mut p.attributes)),
                        Some(Data::ExponentialHistogram(h)) => h
                            .data_points
                            .iter_mut()
                            .for_each(|p| a.apply(&mut p.attributes)),
                        Some(Data::Summary(s)) => s
                            .data_points
                            .iter_mut()
                            .for_each(|p| a.apply(&mut p.attributes)),
                        None => {}
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Consumer for AttributesProcessor {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        self.process(&mut batch);
        self.next.consume(batch).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Errors;
    use crate::config::Node;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use std::sync::Mutex;

    /// A downstream consumer that keeps what it is given.
    #[derive(Default)]
    pub(crate) struct Capture(pub Mutex<Vec<Batch>>);

    #[async_trait]
    impl Consumer for Capture {
        async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
            self.0.lock().unwrap().push(batch);
            Ok(())
        }
    }

    fn config(yaml: &str) -> Result<AttributesConfig, Errors> {
        let node = Node::parse("t.yaml", yaml).unwrap();
        let mut errors = Errors::default();
        registry::check::<AttributesConfig>(&node, "processors::attributes", &mut errors)
            .ok_or(errors)
    }

    #[tokio::test]
    async fn yaml_scalars_become_typed_span_attributes() {
        let cfg = config(
            "actions:\n  - {key: count, value: 42, action: insert}\n  - {key: f, value: 1.5, action: upsert}\n  - {key: b, value: true, action: insert}\n  - {key: s, value: \"42\", action: insert}\n",
        )
        .unwrap();
        let capture = Arc::new(Capture::default());
        let p = AttributesProcessor::new(actions::compile(&cfg.actions).unwrap(), capture.clone());
        let batch = Batch::Traces(vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default()],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        p.consume(batch).await.unwrap();
        let got = capture.0.lock().unwrap().pop().unwrap();
        let Batch::Traces(rs) = got else { panic!() };
        let attrs = &rs[0].scope_spans[0].spans[0].attributes;
        let v = |k| crate::pdata::attributes::get(attrs, k).cloned();
        assert_eq!(
            v("count"),
            Some(AnyValue {
                value: Some(Value::IntValue(42))
            })
        );
        assert_eq!(
            v("f"),
            Some(AnyValue {
                value: Some(Value::DoubleValue(1.5))
            })
        );
        assert_eq!(
            v("b"),
            Some(AnyValue {
                value: Some(Value::BoolValue(true))
            })
        );
        assert_eq!(v("s"), Some(crate::pdata::attributes::string("42")));
    }

    #[test]
    fn config_errors_land_at_actions_and_unknown_keys_are_refused() {
        let errs = config("actions:\n  - {key: a, action: explode}\n").unwrap_err();
        assert!(
            errs.errors[0]
                .path
                .starts_with("processors::attributes::actions::0::action"),
            "{:?}",
            errs.errors
        );
        let errs = config("actions:\n  - {key: a, action: insert}\n").unwrap_err();
        assert_eq!(errs.errors[0].path, "processors::attributes::actions");
        assert!(errs.errors[0].message.contains("needs \"value\""));
        let errs = config("include: {}\nactions: []\n").unwrap_err();
        assert!(errs.errors[0].message.contains("unknown key \"include\""));
        assert!(config("{}").is_err(), "no actions is an error");
    }
}
