//! The `bearertokenauth` extension (the Go collector-contrib's bearertokenauthextension):
//! a token that receivers require (`auth: {authenticator: bearertokenauth}` under a protocol)
//! and exporters send (`auth: {authenticator: bearertokenauth}` on the exporter), in the
//! `authorization: Bearer <token>` header. The token comes from the config (`token`, usually
//! `${env:TOKEN}`) or from a file (`filename`); it is compared in constant time and never
//! logged.

use crate::component::{BuildContext, Extension, Host};
use crate::registry::{self, ComponentConfig, Decoded, ExtensionFactory};
use async_trait::async_trait;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

pub const FACTORY: ExtensionFactory = ExtensionFactory {
    kind: "bearertokenauth",
    description: "Bearer-token authentication for receivers (required) and exporters (sent)",
    validate: registry::validate::<BearerTokenConfig>,
    build,
};

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BearerTokenConfig {
    /// The auth scheme before the token. Default Bearer.
    pub scheme: String,
    /// The token itself (use `${env:VAR}`); or:
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace ignored).
    pub filename: Option<String>,
}

impl fmt::Debug for BearerTokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokenConfig")
            .field("scheme", &self.scheme)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("filename", &self.filename)
            .finish()
    }
}

impl Default for BearerTokenConfig {
    fn default() -> Self {
        BearerTokenConfig {
            scheme: "Bearer".into(),
            token: None,
            filename: None,
        }
    }
}

impl ComponentConfig for BearerTokenConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        match (&self.token, &self.filename) {
            (Some(_), Some(_)) => vec![("", "set token or filename, not both".into())],
            (None, None) => vec![("", "set token (e.g. ${env:OTEL_TOKEN}) or filename".into())],
            (Some(t), None) if t.trim().is_empty() => vec![(
                "token",
                "is empty (is its environment variable set?)".into(),
            )],
            (None, Some(f)) if !std::path::Path::new(f).is_file() => {
                vec![("filename", format!("\"{f}\" does not exist"))]
            }
            _ => Vec::new(),
        }
    }
}

/// `auth:` on a receiver protocol or an exporter.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Id of the authenticator extension, e.g. bearertokenauth or bearertokenauth/ingest.
    pub authenticator: String,
}

/// The resolved credential, shared through the host.
pub struct BearerToken {
    header_value: String,
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// The `authorization` header value an exporter sends.
    pub fn header_value(&self) -> &str {
        &self.header_value
    }

    /// Whether a received `authorization` header carries the token; constant time in the
    /// header's content.
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        let want = self.header_value.as_bytes();
        let Some(got) = header else { return false };
        let mut diff = (got.len() != want.len()) as u8;
        for (i, w) in want.iter().enumerate() {
            diff |= w ^ got.get(i).copied().unwrap_or(0);
        }
        diff == 0
    }
}

/// Finds the authenticator a component names; it must be enabled in service::extensions.
pub fn lookup(host: &Host, settings: &AuthSettings, who: &str) -> anyhow::Result<Arc<BearerToken>> {
    host.extension::<BearerToken>(&settings.authenticator).ok_or_else(|| {
        anyhow::anyhow!("{who}::auth::authenticator: \"{}\" is not an enabled bearertokenauth extension; define it and list it in service::extensions", settings.authenticator)
    })
}

struct BearerTokenExtension;

#[async_trait]
impl Extension for BearerTokenExtension {
    async fn start(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn shutdown(&self) {}
}

fn build(decoded: &Decoded, ctx: BuildContext) -> anyhow::Result<Arc<dyn Extension>> {
    let cfg: BearerTokenConfig = registry::typed::<BearerTokenConfig>(decoded).clone();
    let token = match (&cfg.token, &cfg.filename) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("extensions::{}: cannot read {f}: {e}", ctx.id))?
            .trim()
            .to_string(),
        (None, None) => anyhow::bail!("extensions::{}: set token or filename", ctx.id),
    };
    let header_value = if cfg.scheme.is_empty() {
        token
    } else {
        format!("{} {token}", cfg.scheme)
    };
    ctx.host
        .provide(&ctx.id.to_string(), Arc::new(BearerToken { header_value }))
        .map_err(anyhow::Error::msg)?;
    Ok(Arc::new(BearerTokenExtension))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_header() {
        let t = BearerToken {
            header_value: "Bearer s3cret".into(),
        };
        assert!(t.accepts(Some(b"Bearer s3cret")));
        assert!(!t.accepts(Some(b"Bearer s3cret2")));
        assert!(!t.accepts(Some(b"Bearer s3cre")));
        assert!(!t.accepts(Some(b"bearer s3cret")));
        assert!(!t.accepts(None));
        assert_eq!(format!("{t:?}"), "BearerToken(<redacted>)");
    }
}
