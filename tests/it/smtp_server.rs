//! An in-process, scripted SMTP server on `127.0.0.1:0` for fault injection (tier 3).
//!
//! Each accepted connection follows one script of [`Step`]s: send bytes (any reply, or garbage, or
//! several replies in one write), expect a line, swallow message data, start TLS (implicitly or after a
//! STARTTLS reply, so bytes can be injected before the handshake), wait, close, or go silent. What the client
//! sent is recorded byte for byte; a broken expectation ends the connection and is reported by
//! [`ScriptServer::finish`], so a test never passes on a script that did not run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub enum Step {
    /// Write these bytes in one write.
    Send(String),
    /// Read one line; it must equal this (CRLF excluded).
    Expect(String),
    /// Read one line; it must start with this.
    ExpectPrefix(String),
    /// Read message data through the final `.` line.
    Data,
    /// TLS handshake as the server, now (after a `220` to STARTTLS).
    StartTls(Arc<rustls::ServerConfig>),
    Sleep(Duration),
    /// Close the connection.
    Close,
    /// Stay silent, read until the client closes.
    Drain,
}

pub fn send(bytes: &str) -> Step {
    Step::Send(bytes.to_owned())
}

pub fn expect(line: &str) -> Step {
    Step::Expect(line.to_owned())
}

/// `250-test.example`, then one line per capability (the last with a space).
pub fn ehlo_reply(capabilities: &[&str]) -> String {
    let mut lines = vec!["test.example"];
    lines.extend_from_slice(capabilities);
    let last = lines.len() - 1;
    lines.iter().enumerate().map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' })).collect()
}

/// The greeting and an EHLO answered with `capabilities`.
pub fn greet(capabilities: &[&str]) -> Vec<Step> {
    vec![send("220 test.example ESMTP scripted\r\n"), expect("EHLO localhost"), Step::Send(ehlo_reply(capabilities))]
}

/// MAIL, RCPT, DATA and the data of one message, all accepted (no SIZE advertised).
pub fn accept_message(from: &str, to: &str, queue_id: &str) -> Vec<Step> {
    vec![
        expect(&format!("MAIL FROM:<{from}>")),
        send("250 2.1.0 Ok\r\n"),
        expect(&format!("RCPT TO:<{to}>")),
        send("250 2.1.5 Ok\r\n"),
        expect("DATA"),
        send("354 End data with <CR><LF>.<CR><LF>\r\n"),
        Step::Data,
        Step::Send(format!("250 2.0.0 Ok: queued as {queue_id}\r\n")),
    ]
}

/// What one connection saw.
#[derive(Debug)]
pub struct Record {
    /// Every byte the client sent (plaintext and decrypted), lossily as text.
    pub received: String,
    /// Why the script stopped early, if it did (a broken expectation, EOF, a failed handshake).
    pub error: Option<String>,
}

impl Record {
    /// The record, or a panic naming why the script did not run to its end.
    pub fn ok(self) -> Record {
        assert!(self.error.is_none(), "scripted server: {:?}\nreceived: {:?}", self.error, self.received);
        self
    }
}

pub struct ScriptServer {
    pub addr: SocketAddr,
    handle: JoinHandle<Vec<Record>>,
}

impl ScriptServer {
    /// One plaintext connection following `script`.
    pub async fn start(script: Vec<Step>) -> Self {
        Self::start_many(None, vec![script]).await
    }

    /// One connection with TLS from the first byte (implicit TLS), then `script`.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>, script: Vec<Step>) -> Self {
        Self::start_many(Some(tls), vec![script]).await
    }

    /// One connection per script, accepted one after another.
    pub async fn start_many(tls: Option<Arc<rustls::ServerConfig>>, scripts: Vec<Vec<Step>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let mut records = Vec::new();
            for script in scripts {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut steps = Vec::new();
                if let Some(tls) = &tls {
                    steps.push(Step::StartTls(Arc::clone(tls)));
                }
                steps.extend(script);
                records.push(run(Box::new(tcp), steps).await);
            }
            records
        });
        ScriptServer { addr, handle }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for every connection's script to end (the client must close or the script must finish).
    pub async fn finish(self) -> Record {
        self.finish_all().await.into_iter().next().expect("a connection")
    }

    pub async fn finish_all(self) -> Vec<Record> {
        tokio::time::timeout(Duration::from_secs(20), self.handle).await.expect("scripted server hung").unwrap()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn run(io: Box<dyn Io>, script: Vec<Step>) -> Record {
    let mut conn = BufReader::new(io);
    let mut received = Vec::new();
    let mut error = None;
    for step in script {
        let result = match step {
            Step::Close => break,
            Step::StartTls(config) => match start_tls(conn, config).await {
                Ok(tls) => {
                    conn = tls;
                    Ok(())
                }
                Err(e) => return Record { received: String::from_utf8_lossy(&received).into_owned(), error: Some(e) },
            },
            other => step_once(&mut conn, &mut received, other).await,
        };
        if let Err(e) = result {
            error = Some(e);
            break;
        }
    }
    Record { received: String::from_utf8_lossy(&received).into_owned(), error }
}

/// The server side of a TLS handshake; bytes the client sent early would be lost, so they are an error.
async fn start_tls(
    conn: BufReader<Box<dyn Io>>,
    config: Arc<rustls::ServerConfig>,
) -> Result<BufReader<Box<dyn Io>>, String> {
    if !conn.buffer().is_empty() {
        return Err("the client sent bytes before the TLS handshake".into());
    }
    let tls =
        tokio_rustls::TlsAcceptor::from(config).accept(conn.into_inner()).await.map_err(|e| format!("TLS: {e}"))?;
    Ok(BufReader::new(Box::new(tls)))
}

async fn step_once(conn: &mut BufReader<Box<dyn Io>>, received: &mut Vec<u8>, step: Step) -> Result<(), String> {
    match step {
        Step::Send(bytes) => conn.get_mut().write_all(bytes.as_bytes()).await.map_err(|e| format!("write: {e}")),
        Step::Expect(want) => check(&line(conn, received).await?, |l| l == want, &want),
        Step::ExpectPrefix(want) => check(&line(conn, received).await?, |l| l.starts_with(&want), &want),
        Step::Data => {
            while line(conn, received).await? != "." {}
            Ok(())
        }
        Step::Sleep(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Step::Drain => {
            let _ = conn.read_to_end(received).await;
            Ok(())
        }
        Step::Close | Step::StartTls(_) => unreachable!("handled by run"),
    }
}

fn check(line: &str, ok: impl Fn(&str) -> bool, want: &str) -> Result<(), String> {
    if ok(line) { Ok(()) } else { Err(format!("expected {want:?}, got {line:?}")) }
}

/// One line without its CRLF; EOF is an error.
async fn line(conn: &mut BufReader<Box<dyn Io>>, received: &mut Vec<u8>) -> Result<String, String> {
    let mut buf = Vec::new();
    conn.read_until(b'\n', &mut buf).await.map_err(|e| format!("read: {e}"))?;
    if buf.is_empty() {
        return Err("the client closed the connection".into());
    }
    received.extend_from_slice(&buf);
    let text = String::from_utf8_lossy(&buf);
    Ok(text.trim_end_matches('\n').trim_end_matches('\r').to_owned())
}

/// A client configuration for `server`: host `localhost` (the test leaf's name), the test CA trusted,
/// deadlines of a few seconds so a hung test fails instead of waiting minutes.
pub fn client_config(server: &ScriptServer, security: mailshot::smtp::Security) -> mailshot::smtp::ClientConfig {
    let mut config = mailshot::smtp::ClientConfig::new("localhost", server.port());
    config.security = security;
    config.ehlo_name = Some("localhost".into()); // transcripts stay the same on every machine
    config.extra_roots = vec![crate::smtp_pki::pki().ca.clone()];
    config.timeouts = timeouts(Duration::from_secs(5));
    config
}

pub fn timeouts(all: Duration) -> mailshot::smtp::Timeouts {
    mailshot::smtp::Timeouts {
        connect: all,
        tls: all,
        greeting: all,
        command: all,
        data: all,
        data_block: all,
        data_end: all,
    }
}
