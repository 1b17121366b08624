//! TLS for the HTTP API (rustls, TLS 1.2 and 1.3): the certificate chain
//! and private key are PEM files named in the configuration. Each
//! handshake runs in its connection's own task with a deadline, after the
//! connection took one of the server's connection slots, so a client that
//! never finishes its handshake holds no one else up and handshakes count
//! against `max_connections`; only completed connections reach the router.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Where the server's certificate chain and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file: the server certificate, then its intermediates.
    pub cert: PathBuf,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS cannot be set up; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: no certificate could be read: {reason}")]
    Certificate { path: String, reason: String },
    #[error("{path}: no private key could be read: {reason}")]
    Key { path: String, reason: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// A client configuration that trusts the certificate authorities of the
/// PEM file `ca_file`, and only those (as `curl --cacert`): for a hub
/// whose certificate is issued by an operator's own authority, or is
/// self-signed.
pub fn client_config(ca_file: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let name = ca_file.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: name.clone(),
            reason: e.to_string(),
        })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: name.clone(),
            reason: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Certificate {
            path: name,
            reason: "the file holds no CERTIFICATE block".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The TLS acceptor for these files.
pub fn acceptor(settings: &TlsSettings) -> Result<TlsAcceptor, TlsError> {
    let name = |p: &Path| p.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: name(&settings.cert),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: name(&settings.cert),
            reason: "the file holds no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| TlsError::Key {
        path: name(&settings.key),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TCP listener whose connections speak TLS (see
/// [`super::http::serve_tls`]).
pub struct TlsListener {
    pub(crate) listener: TcpListener,
    pub(crate) acceptor: TlsAcceptor,
}

impl TlsListener {
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        Ok(TlsListener { listener, acceptor })
    }
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}
