//! The `resource` processor, after the Go collector's `resourceprocessor`: runs a list of
//! attribute actions (see [`ActionConfig`]) on the resource attributes of every batch, for
//! all three signals. The lab's agents use it to stamp `k8s.cluster.name` on everything.
//!
//! ```yaml
//! processors:
//!   resource:
//!     attributes:
//!       - {key: k8s.cluster.name, value: otel-demo, action: insert}
//! ```

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::pdata::{Batch, Signal};
use crate::processors::attributes::actions::{self, ActionConfig, Actions};
use crate::registry::{self, ComponentConfig, Decoded, ProcessorFactory};
use async_trait::async_trait;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::Deserialize;
use std::sync::Arc;

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "resource",
    description: "Inserts, updates, deletes or hashes resource attributes",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: registry::validate::<ResourceConfig>,
    build,
};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceConfig {
    /// The actions, applied in order to the resource attributes. At least one is required
    /// (as in the Go collector); see [`ActionConfig`] for the keys of one action.
    pub attributes: Vec<ActionConfig>,
}

impl ComponentConfig for ResourceConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        if self.attributes.is_empty() {
            return vec![("attributes", "at least one action is required".into())];
        }
        match actions::compile(&self.attributes) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|m| ("attributes", m)).collect(),
        }
    }
}

fn build(
    decoded: &Decoded,
    _ctx: BuildContext,
    _signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: ResourceConfig = registry::typed::<ResourceConfig>(decoded).clone();
    let actions = actions::compile(&cfg.attributes).map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    Ok(Arc::new(ResourceProcessor { actions, next }))
}

pub struct ResourceProcessor {
    actions: Actions,
    next: SharedConsumer,
}

impl ResourceProcessor {
    fn apply(&self, resource: &mut Option<Resource>) {
        let r = resource.get_or_insert_with(Resource::default);
        self.actions.apply(&mut r.attributes);
    }
}

#[async_trait]
impl Consumer for ResourceProcessor {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        match &mut batch {
            Batch::Traces(v) => v.iter_mut().for_each(|r| self.apply(&mut r.resource)),
            Batch::Metrics(v) => v.iter_mut().for_each(|r| self.apply(&mut r.resource)),
            Batch::Logs(v) => v.iter_mut().for_each(|r| self.apply(&mut r.resource)),
        }
        self.next.consume(batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Errors;
    use crate::config::Node;
    use crate::pdata::attributes;
    use crate::processors::attributes::tests::Capture;
    use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
    use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

    fn processor(yaml: &str, next: SharedConsumer) -> ResourceProcessor {
        let node = Node::parse("t.yaml", yaml).unwrap();
        let mut errors = Errors::default();
        let cfg =
            registry::check::<ResourceConfig>(&node, "processors::resource", &mut errors).unwrap();
        ResourceProcessor {
            actions: actions::compile(&cfg.attributes).unwrap(),
            next,
        }
    }

    #[tokio::test]
    async fn seed_config_stamps_cluster_name_on_every_signal() {
        let capture = Arc::new(Capture::default());
        let p = processor(
            "attributes:\n- key: k8s.cluster.name\n  value: otel-demo\n  action: insert\n- key: service.name\n  value: replaced\n  action: insert\n",
            capture.clone(),
        );
        let existing = Some(Resource {
            attributes: vec![attributes::string_kv("service.name", "order-service")],
            ..Default::default()
        });
        p.consume(Batch::Metrics(vec![ResourceMetrics {
            resource: existing.clone(),
            ..Default::default()
        }]))
        .await
        .unwrap();
        p.consume(Batch::Logs(vec![ResourceLogs::default()]))
            .await
            .unwrap();
        let got = capture.0.lock().unwrap();
        let Batch::Metrics(m) = &got[0] else { panic!() };
        let attrs = &m[0].resource.as_ref().unwrap().attributes;
        assert_eq!(
            attributes::get_text(attrs, "k8s.cluster.name").as_deref(),
            Some("otel-demo")
        );
        assert_eq!(
            attributes::get_text(attrs, "service.name").as_deref(),
            Some("order-service")
        );
        let Batch::Logs(l) = &got[1] else { panic!() };
        let attrs = &l[0].resource.as_ref().unwrap().attributes;
        assert_eq!(
            attributes::get_text(attrs, "k8s.cluster.name").as_deref(),
            Some("otel-demo")
        );
    }
}
