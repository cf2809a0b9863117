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
    Handshake { host: String, reason: String, cause: HandshakeCause },
}

/// What broke a handshake, so the caller can tell a passing network fault from one that will recur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeCause {
    /// The server's certificate was refused.
    Certificate,
    /// The server answered with something that is not TLS at all, such as a plaintext `220` greeting.
    NotTls,
    /// The connection failed under the handshake (reset, closed, …): no TLS error was involved.
    Io,
    /// Any other TLS error (no common version or cipher, an alert from the server, …).
    Protocol,
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
    /// The session was resumed from an earlier one (no certificate exchange, one round trip less).
    pub resumed: bool,
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
    connector.connect(name, io).await.map_err(|e| {
        let (reason, cause) = reason(&e);
        TlsError::Handshake { host: host.to_owned(), reason, cause }
    })
}

pub fn info(conn: &rustls::ClientConnection) -> TlsInfo {
    let version = conn.protocol_version().map(|v| format!("{v:?}").replace('_', ".")).unwrap_or_default();
    let cipher = conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
    let subject = conn.peer_certificates().and_then(|certs| certs.first()).and_then(|leaf| x509::subject(leaf));
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    TlsInfo { version, cipher, subject, resumed }
}

/// rustls' own error, in words a person can act on, when the I/O error carries one.
fn reason(err: &std::io::Error) -> (String, HandshakeCause) {
    let Some(tls) = err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return (err.to_string(), HandshakeCause::Io);
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => {
            (format!("the server's certificate was refused: {}", certificate(cert)), HandshakeCause::Certificate)
        }
        // A plaintext SMTP server greets first, and `220 …` is no TLS record ('2' is no content type).
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => (
            "the server answered in plaintext, not TLS (likely its `220` greeting): this port expects STARTTLS \
             or no TLS; set `security = \"starttls\"` (usually port 587) or `security = \"none\"`"
                .to_owned(),
            HandshakeCause::NotTls,
        ),
        other => (other.to_string(), HandshakeCause::Protocol),
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
