//! From an address to a [`Session`]: TCP (`TCP_NODELAY`) → [implicit TLS] → 220 → EHLO → [STARTTLS → the
//! read buffer must be empty → TLS → EHLO again, forgetting what was learned before] → [AUTH].
//!
//! A [`Connector`] is made once per run and opens every session of it: it holds the one rustls client
//! configuration, whose session cache lets a reconnect resume TLS instead of a full handshake. The EHLO name
//! defaults to the machine's name when that is fully qualified, else to the address literal of our end of
//! the socket (RFC 5321 §4.1.4). Two hints catch the common mix-up of `security` and port: a TLS handshake
//! answered in plaintext says so, and no greeting 10 s after connecting without TLS says that the port may
//! expect TLS from the first byte (the wait goes on to the configured deadline).
//!
//! The handshake is one linear async function, so a `Session` exists only after all of it succeeded. STARTTLS,
//! when configured, is required: not offered, refused, or followed by bytes before the handshake (a response
//! injection, RFC 3207 §4, CVE-2011-0411) all abort. After TLS every capability learned in plaintext is
//! forgotten and EHLO is sent again (RFC 3207 §4.2), since an attacker could have edited the first list.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::auth::{self, AuthError};
use super::capabilities::Capabilities;
use super::command::{self, Command, CommandError};
use super::config::{ClientConfig, Security};
use super::connection::{Connection, ConnectionError};
use super::credentials::Credentials;
use super::phase::Phase;
use super::reply::Reply;
use super::session::{ServerInfo, Session};
use super::stream::MaybeTls;
use super::tls::{self, TlsError};
use super::transcript::Learned;

/// Without TLS, no greeting after this long suggests a port that expects TLS from the first byte.
pub const GREETING_HINT_AFTER: Duration = Duration::from_secs(10);

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
    StartTlsRejected { reply: Reply },
    #[error("{bytes} bytes arrived after the server's 220 to STARTTLS, before TLS (response injection); aborted")]
    StartTlsInjection { bytes: usize },
    #[error("login failed: {0}")]
    Auth(#[from] AuthError),
    /// The caller's source of credentials failed (e.g. the command that prints a fresh OAuth2 token).
    #[error("cannot get the credentials: {0}")]
    Credentials(String),
    #[error("the server is closing the connection: {reply}")]
    ServiceClosing { reply: Reply },
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

/// Opens sessions as one configuration says, sharing one TLS client configuration (and its resumption
/// cache) between them.
#[derive(Clone)]
pub struct Connector {
    config: ClientConfig,
    tls: TlsConnector,
}

impl Connector {
    /// Checks what can be refused before a byte is sent and builds the TLS configuration.
    pub fn new(config: ClientConfig) -> Result<Connector, ConnectError> {
        preflight(&config)?;
        let tls = tls::connector(&config.extra_roots)?;
        Ok(Connector { config, tls })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Where hints about a likely misconfiguration go (see [`ClientConfig::hints`]).
    pub fn set_hints(&mut self, hints: super::transcript::HintSink) {
        self.config.hints = Some(hints);
    }

    /// A new session over TCP.
    pub async fn connect(&self) -> Result<TcpSession, ConnectError> {
        self.connect_as(self.config.credentials.as_ref()).await
    }

    /// A new session over TCP logging in with `credentials` instead of the configured ones (a fresh OAuth2
    /// access token for a session opened after the last one expired).
    pub async fn connect_as(&self, credentials: Option<&Credentials>) -> Result<TcpSession, ConnectError> {
        let tcp = tcp(&self.config).await?;
        let local = tcp.local_addr().ok();
        self.handshake(tcp, local, credentials).await
    }

    /// The handshake over an already connected transport (an in-memory pipe in tests).
    pub async fn establish<S>(&self, io: S) -> Result<Session<MaybeTls<S>>, ConnectError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.handshake(io, None, self.config.credentials.as_ref()).await
    }

    async fn handshake<S>(
        &self,
        io: S,
        local: Option<SocketAddr>,
        credentials: Option<&Credentials>,
    ) -> Result<Session<MaybeTls<S>>, ConnectError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = &self.config;
        let ehlo_name = config.ehlo_name.clone().unwrap_or_else(|| default_ehlo_name(local));
        let stream = match config.security {
            Security::ImplicitTls => upgrade(&self.tls, config, io).await?,
            Security::StartTls | Security::None => MaybeTls::Plain(io),
        };
        let mut conn = Connection::new(stream, config.timeouts.clone(), config.transcript.clone());
        let greeting = greeting(&mut conn, config).await?;
        tell(config, Learned::Greeting(&greeting));
        tell_tls(config, &conn);
        match greeting.code() {
            220 => {}
            421 => return Err(ConnectError::ServiceClosing { reply: greeting }),
            _ => return Err(ConnectError::Greeting { reply: greeting }),
        }
        let mut ehlo = hello(&mut conn, &ehlo_name).await?;
        tell(config, Learned::Capabilities(&Capabilities::from_ehlo(&ehlo)));
        if config.security == Security::StartTls {
            (conn, ehlo) = starttls(conn, &self.tls, config, &ehlo, &ehlo_name).await?;
            tell(config, Learned::Capabilities(&Capabilities::from_ehlo(&ehlo)));
        }
        let capabilities = Capabilities::from_ehlo(&ehlo);
        let auth = match credentials {
            Some(creds) => {
                let mechanism = auth::choose(&capabilities, config.mechanism, &creds.username)?;
                Some(auth::authenticate(&mut conn, mechanism, creds, (&config.host, config.port)).await?)
            }
            None => None,
        };
        let tls = conn.get_ref().tls().map(tls::info);
        Ok(Session::new(conn, ServerInfo { greeting, ehlo, capabilities, tls, auth }, config.pipelining, config.window))
    }
}

/// Connects as `config` says and returns a session ready for mail (a one-off [`Connector`]).
pub async fn connect(config: &ClientConfig) -> Result<TcpSession, ConnectError> {
    Connector::new(config.clone())?.connect().await
}

/// The handshake over an already connected transport (TCP in production, an in-memory pipe in tests).
pub async fn establish<S>(io: S, config: &ClientConfig) -> Result<Session<MaybeTls<S>>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Connector::new(config.clone())?.establish(io).await
}

/// Reports a fact to the configured observer, if any.
fn tell(config: &ClientConfig, fact: Learned<'_>) {
    if let Some(learned) = &config.learned {
        learned(fact);
    }
}

/// Reports the TLS parameters, once the connection has TLS.
fn tell_tls<S>(config: &ClientConfig, conn: &Connection<MaybeTls<S>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(tls) = conn.get_ref().tls().filter(|_| config.learned.is_some()) {
        tell(config, Learned::Tls(&tls::info(tls)));
    }
}

/// The machine's name when it is fully qualified (has a dot), else the address literal of our end of the
/// connection, else (no socket, as over an in-memory pipe) `localhost`.
pub fn default_ehlo_name(local: Option<SocketAddr>) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    ehlo_name_for(host.trim(), local)
}

fn ehlo_name_for(host: &str, local: Option<SocketAddr>) -> String {
    let fqdn = host.contains('.')
        && !host.starts_with('.')
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    match local.map(|a| a.ip().to_canonical()) {
        _ if fqdn => host.to_owned(),
        Some(IpAddr::V4(ip)) => format!("[{ip}]"),
        Some(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
        None => "localhost".to_owned(),
    }
}

/// The server's first reply. Without TLS, silence for [`GREETING_HINT_AFTER`] gets a hint (a server on an
/// implicit-TLS port waits for our ClientHello and never greets in plaintext); the wait goes on.
async fn greeting<S>(conn: &mut Connection<MaybeTls<S>>, config: &ClientConfig) -> Result<Reply, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hint = config.hints.as_ref().filter(|_| config.security != Security::ImplicitTls);
    let Some(hint) = hint.filter(|_| config.timeouts.greeting > GREETING_HINT_AFTER) else {
        return Ok(conn.read_reply(Phase::Greeting).await?);
    };
    let (host, port) = (&config.host, config.port);
    let read = conn.read_reply(Phase::Greeting);
    tokio::pin!(read);
    tokio::select! {
        reply = &mut read => return Ok(reply?),
        _ = tokio::time::sleep(GREETING_HINT_AFTER) => {}
    }
    hint(&format!(
        "no greeting from {host}:{port} after {}s: if this port expects TLS from the first byte (usually 465), \
         set `security = \"tls\"`; still waiting",
        GREETING_HINT_AFTER.as_secs()
    ));
    Ok(read.await?)
}

/// Everything that can be refused before a byte is sent.
fn preflight(config: &ClientConfig) -> Result<(), ConnectError> {
    if let Some(name) = &config.ehlo_name {
        command::argument("EHLO name", name, false).map_err(ConnectError::EhloName)?;
        if name.contains(' ') {
            return Err(ConnectError::EhloName(CommandError::ForbiddenByte { what: "EHLO name", byte: b' ' }));
        }
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

async fn upgrade<S>(connector: &TlsConnector, config: &ClientConfig, io: S) -> Result<MaybeTls<S>, ConnectError>
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
    connector: &TlsConnector,
    config: &ClientConfig,
    plain_ehlo: &Reply,
    ehlo_name: &str,
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
        _ => return Err(ConnectError::StartTlsRejected { reply }),
    }
    if conn.buffered() > 0 {
        return Err(ConnectError::StartTlsInjection { bytes: conn.buffered() });
    }
    let (timeouts, transcript) = (conn.timeouts().clone(), conn.transcript().cloned());
    let MaybeTls::Plain(io) = conn.into_stream() else { unreachable!("STARTTLS runs only on a plaintext stream") };
    let stream = upgrade(connector, config, io).await?;
    let mut conn = Connection::new(stream, timeouts, transcript);
    tell_tls(config, &conn);
    let ehlo = hello(&mut conn, ehlo_name).await?;
    Ok((conn, ehlo))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::smtp::testing::{Step, expect, peer, quick_timeouts, send};

    #[test]
    fn the_default_ehlo_name_is_a_dotted_host_name_else_our_address_literal() {
        let v4: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let v6: SocketAddr = "[::1]:40000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:40000".parse().unwrap();
        assert_eq!(ehlo_name_for("mail.example.org", Some(v4)), "mail.example.org");
        assert_eq!(ehlo_name_for("vm", Some(v4)), "[127.0.0.1]");
        assert_eq!(ehlo_name_for("vm", Some(v6)), "[IPv6:::1]");
        assert_eq!(ehlo_name_for("", Some(mapped)), "[192.0.2.7]");
        assert_eq!(ehlo_name_for("bad name.example", Some(v4)), "[127.0.0.1]");
        assert_eq!(ehlo_name_for("vm", None), "localhost");
    }

    /// A server on an implicit-TLS port waits for our ClientHello and never greets in plaintext: after
    /// 10 s one hint says so, and the wait goes on to the configured deadline.
    #[tokio::test(start_paused = true)]
    async fn silence_after_connecting_without_tls_gets_one_hint_and_the_wait_goes_on() {
        let (io, _server) = peer(vec![Step::Drain]);
        let hints = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut config = ClientConfig::new("localhost", 465);
        config.security = Security::StartTls;
        config.timeouts = quick_timeouts();
        config.timeouts.greeting = Duration::from_secs(30);
        let sink = hints.clone();
        config.hints = Some(Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_owned())));
        let started = tokio::time::Instant::now();
        let err = establish(io, &config).await.expect_err("no greeting ever comes");
        assert!(matches!(err, ConnectError::Connection(ConnectionError::Timeout { .. })), "{err}");
        assert_eq!(started.elapsed().as_secs(), 30, "the configured deadline, not the hint's");
        let hints = hints.lock().unwrap();
        assert_eq!(hints.len(), 1, "{hints:?}");
        assert!(hints[0].contains("security = \"tls\"") && hints[0].contains("after 10s"), "{hints:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_greeting_in_time_gets_no_hint() {
        let (io, _server) = peer(vec![
            send("220 test.example ESMTP\r\n"),
            expect("EHLO localhost"),
            send("250 test.example\r\n"),
            Step::Drain,
        ]);
        let hints = Arc::new(Mutex::new(0));
        let mut config = ClientConfig::new("localhost", 25);
        (config.security, config.timeouts) = (Security::None, quick_timeouts());
        config.timeouts.greeting = Duration::from_secs(30);
        let sink = hints.clone();
        config.hints = Some(Arc::new(move |_: &str| *sink.lock().unwrap() += 1));
        establish(io, &config).await.unwrap();
        assert_eq!(*hints.lock().unwrap(), 0);
    }
}
