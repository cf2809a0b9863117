//! TLS for the client: TLS 1.2 or newer, certificates verified against the configured host name with
//! webpki-roots plus any extra anchors (RFC 8314 §5, RFC 3207 §4.1). There is deliberately no switch that
//! turns verification off: a private relay gets its CA added, not its checks removed.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::x509;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{host:?} is not a valid TLS server name")]
    ServerName { host: String },
    #[error("a trust anchor could not be used: {reason}")]
    TrustAnchor { reason: String },
    #[error("TLS setup failed: {0}")]
    Setup(#[from] rustls::Error),
    #[error("TLS handshake with {host} failed: {reason}")]
    Handshake { host: String, reason: String },
}

/// What was negotiated, for `probe` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// E.g. `TLSv1.3`.
    pub version: String,
    /// E.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The leaf certificate's subject, e.g. `CN=smtp.example.com`.
    pub subject: Option<String>,
}

/// A connector trusting webpki-roots and `extra_roots`, offering TLS 1.3 and 1.2 only.
pub fn connector(extra_roots: &[CertificateDer<'static>]) -> Result<TlsConnector, TlsError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for cert in extra_roots {
        roots.add(cert.clone()).map_err(|e| TlsError::TrustAnchor { reason: e.to_string() })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::ServerName { host: host.to_owned() })
}

/// The handshake itself; the caller puts the deadline around it.
pub async fn handshake<S>(connector: &TlsConnector, host: &str, io: S) -> Result<TlsStream<S>, TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = server_name(host)?;
    connector.connect(name, io).await.map_err(|e| TlsError::Handshake { host: host.to_owned(), reason: reason(&e) })
}

pub fn info(conn: &rustls::ClientConnection) -> TlsInfo {
    let version = conn.protocol_version().map(|v| format!("{v:?}").replace('_', ".")).unwrap_or_default();
    let cipher = conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
    let subject = conn.peer_certificates().and_then(|certs| certs.first()).and_then(|leaf| x509::subject(leaf));
    TlsInfo { version, cipher, subject }
}

/// rustls' own error, in words a person can act on, when the I/O error carries one.
fn reason(err: &std::io::Error) -> String {
    let Some(tls) = err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return err.to_string();
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => {
            format!("the server's certificate was refused: {}", certificate(cert))
        }
        other => other.to_string(),
    }
}

fn certificate(err: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match err {
        E::UnknownIssuer => "it is issued by an unknown certificate authority (for a private relay, add its CA \
                             with `ca_file`)"
            .to_owned(),
        E::Expired | E::ExpiredContext { .. } => "it has expired".to_owned(),
        E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet".to_owned(),
        E::NotValidForName | E::NotValidForNameContext { .. } => "it is not valid for this host name".to_owned(),
        other => format!("{other:?}"),
    }
}
