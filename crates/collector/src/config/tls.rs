//! `tls` settings, as the Go collector's configtls: a client's (exporters) and a server's
//! (receivers, extensions that listen).

use std::sync::Arc;

use serde::Deserialize;

/// `tls`, as the Go collector's configtls client settings.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsClientConfig {
    /// Plain text, no TLS. Default false (TLS with the system's roots).
    pub insecure: bool,
    /// Accept any server certificate. Default false. Only for experiments.
    pub insecure_skip_verify: bool,
    /// PEM file of the CA that signs the server's certificate.
    pub ca_file: Option<String>,
    /// PEM client certificate and key, for mTLS.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Name to verify the server certificate against instead of the endpoint's host.
    pub server_name_override: Option<String>,
}

impl TlsClientConfig {
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.cert_file.is_some() != self.key_file.is_some() {
            v.push((
                "tls",
                "cert_file and key_file go together: set both or neither".into(),
            ));
        }
        for f in [&self.ca_file, &self.cert_file, &self.key_file]
            .into_iter()
            .flatten()
        {
            if !std::path::Path::new(f).exists() {
                v.push(("tls", format!("file \"{f}\" does not exist")));
            }
        }
        v
    }
}

/// `tls` on a receiver protocol, as the Go collector's configtls server settings.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate (chain) the server presents. Required.
    pub cert_file: String,
    /// PEM private key of that certificate. Required.
    pub key_file: String,
    /// PEM CA; when set, clients must present a certificate it signed (mTLS).
    pub client_ca_file: Option<String>,
}

impl TlsServerConfig {
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        for (what, f) in [
            ("cert_file", Some(&self.cert_file)),
            ("key_file", Some(&self.key_file)),
            ("client_ca_file", self.client_ca_file.as_ref()),
        ] {
            match f {
                Some(f) if f.is_empty() => v.push(("tls", format!("{what} is required"))),
                Some(f) if !std::path::Path::new(f).is_file() => {
                    v.push(("tls", format!("{what} \"{f}\" does not exist")))
                }
                _ => {}
            }
        }
        v
    }

    /// A rustls server config (HTTP/2 and HTTP/1.1 via ALPN).
    pub fn rustls(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        use anyhow::Context;
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = CertificateDer::pem_file_iter(&self.cert_file)
            .with_context(|| format!("cannot read {}", self.cert_file))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .with_context(|| format!("cannot read {}", self.key_file))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.client_ca_file {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca)
                    .with_context(|| format!("cannot read {ca}"))?
                {
                    roots.add(c?)?;
                }
                builder.with_client_cert_verifier(
                    rustls::server::WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider,
                    )
                    .build()?,
                )
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_single_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}
