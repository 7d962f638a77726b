//! Every component type the collector knows, keyed by the name used in YAML. Adding a
//! component means adding its module and one line here.

use crate::component::{BuildContext, Consumers, Extension, Receiver, SharedConsumer};
use crate::config::{ComponentDef, Errors, Node, Section, decode};
use crate::pdata::Signal;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A component's config: strict serde decoding plus checks that span several fields.
pub trait ComponentConfig: DeserializeOwned + Send + Sync + 'static {
    /// Semantic checks after decoding; each `(key, message)` becomes an error at that key
    /// (an empty key means the component itself).
    fn validate(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Keys that Go configs carry and this collector accepts but does not act on, each with
    /// the reason; when the config sets one, `validate` warns at its line. A nested key is
    /// written `outer::inner`.
    fn ignored(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
}

/// Decodes and validates a component config, reporting everything into `errors`.
pub fn check<T: ComponentConfig>(node: &Node, path: &str, errors: &mut Errors) -> Option<T> {
    let before = errors.errors.len();
    let cfg: T = decode(node, path, errors)?;
    for (key, msg) in cfg.validate() {
        let (loc, p) = match node.get(key) {
            Some(n) if !key.is_empty() => (n.loc.clone(), format!("{path}::{key}")),
            _ => (node.loc.clone(), path.to_string()),
        };
        errors.error(Some(loc), p, msg);
    }
    for (key, why) in cfg.ignored() {
        let mut found = Some(node);
        for part in key.split("::") {
            found = found.and_then(|n| n.get(part));
        }
        if let Some(n) = found {
            errors.warn(
                Some(n.loc.clone()),
                format!("{path}::{key}"),
                format!("accepted for compatibility with Go configs and ignored: {why}"),
            );
        }
    }
    (errors.errors.len() == before).then_some(cfg)
}

/// For tests: decodes and checks a config outside the service.
#[cfg(test)]
pub fn parse<T: ComponentConfig>(node: &Node, path: &str) -> anyhow::Result<T> {
    let mut errors = Errors::default();
    check::<T>(node, path, &mut errors).ok_or_else(|| {
        let msgs: Vec<String> = errors.errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!(msgs.join("\n"))
    })
}

/// A component's config as its factory's `validate` decoded and checked it. `build` gets this
/// same value ([`typed`] gives it back as the config type), so what was validated is what is
/// built, and the YAML is decoded once.
pub type Decoded = Arc<dyn std::any::Any + Send + Sync>;

pub type ValidateFn = fn(&Node, &str, &mut Errors) -> Option<Decoded>;

/// The `validate` of a factory whose config is `T`: decode, check, keep.
pub fn validate<T: ComponentConfig>(
    node: &Node,
    path: &str,
    errors: &mut Errors,
) -> Option<Decoded> {
    check::<T>(node, path, errors).map(|c| Arc::new(c) as Decoded)
}

/// The config `service::validate` decoded for `def` (it must have run: the service builds
/// only validated configs).
pub fn decoded(def: &ComponentDef) -> anyhow::Result<&Decoded> {
    def.decoded
        .get()
        .ok_or_else(|| anyhow::anyhow!("{}: the configuration was not validated", def.id))
}

/// For tests: `node` decoded as `T`, as `validate` would keep it (panics on a bad config).
#[cfg(test)]
pub fn decoded_for<T: ComponentConfig>(node: &Node) -> Decoded {
    let mut errors = Errors::default();
    let decoded = validate::<T>(node, "test", &mut errors);
    assert!(errors.is_ok(), "{:?}", errors.errors);
    decoded.expect("a valid config")
}

/// The config a factory's own `validate` decoded, as its type.
pub fn typed<T: 'static>(decoded: &Decoded) -> &T {
    decoded
        .downcast_ref::<T>()
        .expect("a factory builds from the config its own validate decoded")
}

pub struct ReceiverFactory {
    pub kind: &'static str,
    pub description: &'static str,
    pub signals: &'static [Signal],
    pub validate: ValidateFn,
    pub build: fn(&Decoded, BuildContext, Consumers) -> anyhow::Result<Arc<dyn Receiver>>,
}

pub struct ProcessorFactory {
    pub kind: &'static str,
    pub description: &'static str,
    pub signals: &'static [Signal],
    pub validate: ValidateFn,
    pub build: fn(&Decoded, BuildContext, Signal, SharedConsumer) -> anyhow::Result<SharedConsumer>,
}

pub struct ExporterFactory {
    pub kind: &'static str,
    /// Older names still accepted (`otlphttp` for `otlp_http`).
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub signals: &'static [Signal],
    pub validate: ValidateFn,
    pub build: fn(&Decoded, BuildContext, Signal) -> anyhow::Result<SharedConsumer>,
}

pub struct ConnectorFactory {
    pub kind: &'static str,
    pub description: &'static str,
    /// (signal it consumes as an exporter, signal it produces as a receiver)
    pub pairs: &'static [(Signal, Signal)],
    pub validate: ValidateFn,
    pub build: fn(
        &Decoded,
        BuildContext,
        Signal,
        Signal,
        SharedConsumer,
    ) -> anyhow::Result<SharedConsumer>,
}

pub struct ExtensionFactory {
    pub kind: &'static str,
    pub description: &'static str,
    pub validate: ValidateFn,
    pub build: fn(&Decoded, BuildContext) -> anyhow::Result<Arc<dyn Extension>>,
}

pub fn receivers() -> Vec<&'static ReceiverFactory> {
    vec![&crate::receivers::otlp::FACTORY]
}

pub fn processors() -> Vec<&'static ProcessorFactory> {
    vec![
        &crate::processors::batch::FACTORY,
        &crate::processors::memory_limiter::FACTORY,
        &crate::processors::attributes::FACTORY,
        &crate::processors::resource::FACTORY,
        &crate::processors::probabilistic_sampler::FACTORY,
        &crate::processors::filter::FACTORY,
        &crate::processors::tail_sampling::FACTORY,
    ]
}

pub fn exporters() -> Vec<&'static ExporterFactory> {
    vec![
        &crate::exporters::otlp::GRPC_FACTORY,
        &crate::exporters::otlp::HTTP_FACTORY,
        &crate::exporters::debug::FACTORY,
        &crate::exporters::nop::FACTORY,
        &crate::exporters::file::FACTORY,
        &crate::exporters::prometheus::FACTORY,
        &crate::exporters::loki::FACTORY,
        &crate::exporters::jaeger_storage_exporter::FACTORY,
        &crate::exporters::loadbalancing::FACTORY,
    ]
}

pub fn connectors() -> Vec<&'static ConnectorFactory> {
    vec![&crate::connectors::spanmetrics::FACTORY]
}

pub fn extensions() -> Vec<&'static ExtensionFactory> {
    vec![
        &crate::extensions::health_check::FACTORY,
        &crate::extensions::file_storage::FACTORY,
        &crate::extensions::bearertokenauth::FACTORY,
        &crate::extensions::jaeger_storage::FACTORY,
        &crate::extensions::jaeger_query::FACTORY,
    ]
}

/// What the service needs of any factory to check a config: its YAML type name (and older
/// names) and its validation.
pub trait Factory: Sync + 'static {
    fn kind(&self) -> &'static str;
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    fn validate_fn(&self) -> ValidateFn;
}

macro_rules! factory {
    ($t:ty) => {
        impl Factory for $t {
            fn kind(&self) -> &'static str {
                self.kind
            }
            fn validate_fn(&self) -> ValidateFn {
                self.validate
            }
        }
    };
}
factory!(ReceiverFactory);
factory!(ProcessorFactory);
factory!(ConnectorFactory);
factory!(ExtensionFactory);

impl Factory for ExporterFactory {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn aliases(&self) -> &'static [&'static str] {
        self.aliases
    }
    fn validate_fn(&self) -> ValidateFn {
        self.validate
    }
}

/// The one lookup of a type name among factories.
fn find<F: Factory>(all: &[&'static F], kind: &str) -> Option<&'static F> {
    all.iter()
        .copied()
        .find(|f| f.kind() == kind || f.aliases().contains(&kind))
}

pub fn find_receiver(kind: &str) -> Option<&'static ReceiverFactory> {
    find(&receivers(), kind)
}

pub fn find_processor(kind: &str) -> Option<&'static ProcessorFactory> {
    find(&processors(), kind)
}

pub fn find_exporter(kind: &str) -> Option<&'static ExporterFactory> {
    find(&exporters(), kind)
}

pub fn find_connector(kind: &str) -> Option<&'static ConnectorFactory> {
    find(&connectors(), kind)
}

pub fn find_extension(kind: &str) -> Option<&'static ExtensionFactory> {
    find(&extensions(), kind)
}

fn kinds<F: Factory>(all: &[&'static F]) -> Vec<&'static str> {
    let mut kinds: Vec<_> = all.iter().map(|f| f.kind()).collect();
    kinds.sort_unstable();
    kinds
}

/// The validation of `kind` in `section`, or the section's known type names (sorted) when
/// there is no such type.
pub fn validator(section: Section, kind: &str) -> Result<ValidateFn, Vec<&'static str>> {
    fn pick<F: Factory>(all: &[&'static F], kind: &str) -> Result<ValidateFn, Vec<&'static str>> {
        find(all, kind)
            .map(|f| f.validate_fn())
            .ok_or_else(|| kinds(all))
    }
    match section {
        Section::Receivers => pick(&receivers(), kind),
        Section::Processors => pick(&processors(), kind),
        Section::Exporters => pick(&exporters(), kind),
        Section::Connectors => pick(&connectors(), kind),
        Section::Extensions => pick(&extensions(), kind),
    }
}
