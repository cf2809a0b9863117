//! From an address to a [`Session`]: TCP (`TCP_NODELAY`) → [implicit TLS] → 220 → EHLO → [STARTTLS → the
//! read buffer must be empty → TLS → EHLO again, forgetting what was learned before] → [AUTH].
//!
//! The handshake is one linear async function, so a `Session` exists only after all of it succeeded. STARTTLS,
//! when configured, is required: not offered, refused, or followed by bytes before the handshake (a response
//! injection, RFC 3207 §4, CVE-2011-0411) all abort. After TLS every capability learned in plaintext is
//! forgotten and EHLO is sent again (RFC 3207 §4.2), since an attacker could have edited the first list.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::auth::{self, AuthError};
use super::capabilities::Capabilities;
use super::command::{self, Command, CommandError};
use super::config::{ClientConfig, Phase, Security};
use super::connection::{Connection, ConnectionError};
use super::reply::Reply;
use super::session::{ServerInfo, Session};
use super::stream::MaybeTls;
use super::tls::{self, TlsError};

/// A session over TCP, as [`connect`] returns it.
pub type TcpSession = Session<MaybeTls<TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid EHLO name: {0}")]
    EhloName(CommandError),
    #[error(
        "refusing to send the password over a connection without TLS (set `allow_plaintext_auth` for a local relay)"
    )]
    PlaintextAuth,
    #[error("cannot connect to {host}:{port}: {source}")]
    Unreachable { host: String, port: u16, source: std::io::Error },
    #[error("no connection to {host}:{port} within {after:?}")]
    ConnectTimeout { host: String, port: u16, after: std::time::Duration },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("TLS handshake with {host} did not finish within {after:?}")]
    TlsTimeout { host: String, after: std::time::Duration },
    #[error("the server refused the connection: {reply}")]
    Greeting { reply: Reply },
    #[error("the server refused EHLO and HELO: {reply}")]
    Ehlo { reply: Reply },
    #[error("STARTTLS is required but the server does not offer it")]
    StartTlsNotOffered,
    #[error("STARTTLS is required but the server refused it: {reply}")]
    StartTlsRefused { reply: Reply },
    #[error("{bytes} bytes arrived after the server's 220 to STARTTLS, before TLS (response injection); aborted")]
    StartTlsInjection { bytes: usize },
    #[error("login failed: {0}")]
    Auth(#[from] AuthError),
    #[error("the server is closing the connection: {reply}")]
    ServiceClosing { reply: Reply },
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl ConnectError {
    /// Username, password or mechanism trouble: retrying with the same settings will not help (except 454).
    pub fn is_auth(&self) -> bool {
        matches!(self, ConnectError::Auth(e) if !e.is_temporary())
    }

    /// Worth another attempt later: the network, a deadline, a 4xx greeting, a 421, a 454 at AUTH.
    /// Configuration, TLS trust, a refused login and a server lacking STARTTLS are not.
    pub fn is_temporary(&self) -> bool {
        match self {
            ConnectError::Unreachable { .. }
            | ConnectError::ConnectTimeout { .. }
            | ConnectError::TlsTimeout { .. }
            | ConnectError::ServiceClosing { .. }
            | ConnectError::Connection(_) => true,
            ConnectError::Greeting { reply } | ConnectError::Ehlo { reply } => reply.code() / 100 == 4,
            ConnectError::Auth(e) => e.is_temporary(),
            _ => false,
        }
    }
}

/// Connects as `config` says and returns a session ready for mail.
pub async fn connect(config: &ClientConfig) -> Result<TcpSession, ConnectError> {
    preflight(config)?;
    let tcp = tcp(config).await?;
    establish(tcp, config).await
}

/// The handshake over an already connected transport (TCP in production, an in-memory pipe in tests).
pub async fn establish<S>(io: S, config: &ClientConfig) -> Result<Session<MaybeTls<S>>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    preflight(config)?;
    let connector = tls::connector(&config.extra_roots)?;
    let stream = match config.security {
        Security::ImplicitTls => upgrade(&connector, config, io).await?,
        Security::StartTls | Security::None => MaybeTls::Plain(io),
    };
    let mut conn = Connection::new(stream, config.timeouts.clone(), config.transcript.clone());
    let greeting = conn.read_reply(Phase::Greeting).await?;
    match greeting.code() {
        220 => {}
        421 => return Err(ConnectError::ServiceClosing { reply: greeting }),
        _ => return Err(ConnectError::Greeting { reply: greeting }),
    }
    let mut ehlo = hello(&mut conn, &config.ehlo_name).await?;
    if config.security == Security::StartTls {
        (conn, ehlo) = starttls(conn, &connector, config, &ehlo).await?;
    }
    let capabilities = Capabilities::from_ehlo(&ehlo);
    let auth = match &config.credentials {
        Some(creds) => {
            let mechanism = auth::choose(&capabilities, config.mechanism, &creds.username)?;
            Some(auth::authenticate(&mut conn, mechanism, creds).await?)
        }
        None => None,
    };
    let tls = conn.get_ref().tls().map(tls::info);
    let pipelining = config.pipelining && capabilities.pipelining;
    Ok(Session::new(conn, ServerInfo { greeting, ehlo, capabilities, tls, auth }, pipelining))
}

/// Everything that can be refused before a byte is sent.
fn preflight(config: &ClientConfig) -> Result<(), ConnectError> {
    command::argument("EHLO name", &config.ehlo_name, false).map_err(ConnectError::EhloName)?;
    if config.ehlo_name.contains(' ') {
        return Err(ConnectError::EhloName(CommandError::ForbiddenByte { what: "EHLO name", byte: b' ' }));
    }
    if config.credentials.is_some() && config.security == Security::None && !config.allow_plaintext_auth {
        return Err(ConnectError::PlaintextAuth);
    }
    tls::server_name(&config.host)?;
    Ok(())
}

async fn tcp(config: &ClientConfig) -> Result<TcpStream, ConnectError> {
    let (host, port, after) = (config.host.clone(), config.port, config.timeouts.connect);
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port);
    let tcp = match tokio::time::timeout(after, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => return Err(ConnectError::Unreachable { host, port, source }),
        Err(_) => return Err(ConnectError::ConnectTimeout { host, port, after }),
    };
    // Each command group is one write; without this, Nagle holds it for the previous segment's ACK.
    tcp.set_nodelay(true).map_err(|source| ConnectError::Unreachable { host, port, source })?;
    Ok(tcp)
}

async fn upgrade<S>(
    connector: &tokio_rustls::TlsConnector,
    config: &ClientConfig,
    io: S,
) -> Result<MaybeTls<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let after = config.timeouts.tls;
    match tokio::time::timeout(after, tls::handshake(connector, &config.host, io)).await {
        Ok(tls) => Ok(MaybeTls::Tls(Box::new(tls?))),
        Err(_) => Err(ConnectError::TlsTimeout { host: config.host.clone(), after }),
    }
}

/// EHLO, or HELO for a server that does not know EHLO (RFC 5321 §3.2); HELO means no extensions.
async fn hello<S>(conn: &mut Connection<S>, name: &str) -> Result<Reply, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reply = conn.command(&Command::Ehlo(name), Phase::Command).await?;
    match reply.code() {
        250 => return Ok(reply),
        421 => return Err(ConnectError::ServiceClosing { reply }),
        500..=502 | 504 | 550 => {}
        _ => return Err(ConnectError::Ehlo { reply }),
    }
    let reply = conn.command(&Command::Helo(name), Phase::Command).await?;
    match reply.code() {
        250 => Ok(reply),
        421 => Err(ConnectError::ServiceClosing { reply }),
        _ => Err(ConnectError::Ehlo { reply }),
    }
}

/// RFC 3207: STARTTLS, its 220, nothing else buffered, the handshake, a fresh EHLO.
async fn starttls<S>(
    mut conn: Connection<MaybeTls<S>>,
    connector: &tokio_rustls::TlsConnector,
    config: &ClientConfig,
    plain_ehlo: &Reply,
) -> Result<(Connection<MaybeTls<S>>, Reply), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !Capabilities::from_ehlo(plain_ehlo).starttls {
        return Err(ConnectError::StartTlsNotOffered);
    }
    let reply = conn.command(&Command::StartTls, Phase::Command).await?;
    match reply.code() {
        220 => {}
        421 => return Err(ConnectError::ServiceClosing { reply }),
        _ => return Err(ConnectError::StartTlsRefused { reply }),
    }
    if conn.buffered() > 0 {
        return Err(ConnectError::StartTlsInjection { bytes: conn.buffered() });
    }
    let (timeouts, transcript) = (conn.timeouts().clone(), conn.transcript().cloned());
    let MaybeTls::Plain(io) = conn.into_stream() else { unreachable!("STARTTLS runs only on a plaintext stream") };
    let stream = upgrade(connector, config, io).await?;
    let mut conn = Connection::new(stream, timeouts, transcript);
    let ehlo = hello(&mut conn, &config.ehlo_name).await?;
    Ok((conn, ehlo))
}
