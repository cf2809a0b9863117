//! The one interpreter: a connection follows a list of [`Step`]s over any `AsyncRead + AsyncWrite`.
//!
//! Exact steps (send, expect a line, swallow data, start TLS, wait, close) pin a transcript; [`Step::Serve`]
//! hands the rest of the connection to a [`Mailbox`] that answers whatever comes, pipelined or not. What the
//! client sent is recorded byte for byte; a broken expectation ends the connection and is kept in the
//! [`Record`], so a test never passes on a script that did not run.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, duplex};
use tokio::task::JoinHandle;

use super::mailbox::Mailbox;
use super::serve::serve;

/// One step of a connection's script.
#[derive(Clone)]
pub enum Step {
    /// Write these bytes (CRLFs included) in one write.
    Send(String),
    /// Read one line; it must equal this followed by CRLF.
    Expect(String),
    /// Read one line; it must start with this.
    ExpectPrefix(String),
    /// Read message data through the final `.` line.
    Data,
    /// TLS handshake as the server, now (first thing for implicit TLS, or after a `220` to STARTTLS, so
    /// bytes can be injected before it). Bytes the client sent early are an error.
    StartTls(Arc<rustls::ServerConfig>),
    Sleep(Duration),
    /// Answer every command from here on by the mailbox's rules until QUIT, a fault or the client's close.
    Serve(Mailbox),
    /// Close the connection.
    Close,
    /// Say nothing more; read (and record) until the client closes.
    Drain,
}

pub fn send(bytes: impl Into<String>) -> Step {
    Step::Send(bytes.into())
}

pub fn expect(line: impl Into<String>) -> Step {
    Step::Expect(line.into())
}

pub fn expect_prefix(line: impl Into<String>) -> Step {
    Step::ExpectPrefix(line.into())
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
    vec![send("220 test.example ESMTP scripted\r\n"), expect("EHLO localhost"), send(ehlo_reply(capabilities))]
}

/// MAIL, RCPT, DATA and the data of one message, all accepted, one command at a time (no SIZE advertised).
pub fn accept_message(from: &str, to: &str, queue_id: &str) -> Vec<Step> {
    vec![
        expect(format!("MAIL FROM:<{from}>")),
        send("250 2.1.0 Ok\r\n"),
        expect(format!("RCPT TO:<{to}>")),
        send("250 2.1.5 Ok\r\n"),
        expect("DATA"),
        send("354 End data with <CR><LF>.<CR><LF>\r\n"),
        Step::Data,
        send(format!("250 2.0.0 Ok: queued as {queue_id}\r\n")),
    ]
}

/// What one connection saw.
#[derive(Debug)]
pub struct Record {
    /// Every byte the client sent (plaintext and decrypted).
    pub bytes: Vec<u8>,
    /// The same, lossily as text.
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

/// A stream the interpreter can own, whatever it is (a pipe, TCP, TLS over either).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Runs `script` on `io` to its end or its first failure.
pub async fn run(io: impl Io + 'static, script: Vec<Step>) -> Record {
    let mut conn = Conn { io: Box::new(io), buf: Vec::new(), received: Vec::new() };
    let mut error = None;
    for step in script {
        let result = match step {
            Step::Close => break,
            Step::StartTls(config) => conn.start_tls(config).await,
            other => conn.step(other).await,
        };
        if let Err(e) = result {
            error = Some(e);
            break;
        }
    }
    Record { received: String::from_utf8_lossy(&conn.received).into_owned(), bytes: conn.received, error }
}

/// Runs `script` against the client end of an in-memory pipe (tier 2); the handle yields every byte the
/// client sent, and panics (so the test fails) when the script broke.
pub fn peer(script: Vec<Step>) -> (DuplexStream, JoinHandle<Vec<u8>>) {
    let (client, server) = duplex(1 << 16);
    (client, tokio::spawn(async move { run(server, script).await.ok().bytes }))
}

/// The server's end of one connection: the stream, bytes read but not yet taken, and the record.
pub(super) struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    received: Vec<u8>,
}

impl Conn {
    async fn step(&mut self, step: Step) -> Result<(), String> {
        match step {
            Step::Send(bytes) => self.write(bytes.as_bytes()).await,
            Step::Expect(want) => check(&self.line().await?, |l| l == format!("{want}\r\n"), &want),
            Step::ExpectPrefix(want) => check(&self.line().await?, |l| l.starts_with(&want), &want),
            Step::Data => {
                while self.line().await? != ".\r\n" {}
                Ok(())
            }
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Step::Serve(mailbox) => serve(self, &mailbox).await,
            Step::Drain => {
                self.received.append(&mut self.buf);
                let _ = self.io.read_to_end(&mut self.received).await;
                Ok(())
            }
            Step::Close | Step::StartTls(_) => unreachable!("handled by run"),
        }
    }

    /// The server side of a TLS handshake on this connection.
    async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> Result<(), String> {
        if !self.buf.is_empty() {
            return Err("the client sent bytes before the TLS handshake".into());
        }
        let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::empty()));
        let tls = tokio_rustls::TlsAcceptor::from(config).accept(plain).await.map_err(|e| format!("TLS: {e}"))?;
        self.io = Box::new(tls);
        Ok(())
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.io.write_all(bytes).await.map_err(|e| format!("write: {e}"))?;
        self.io.flush().await.map_err(|e| format!("flush: {e}"))
    }

    /// One line, CRLF included, lossily as text; EOF is an error.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                self.received.extend_from_slice(&line);
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if !self.fill().await? {
                return Err("the client closed the connection".into());
            }
        }
    }

    /// Every whole line that has arrived, after reading once more if none had (RFC 2920: what the client
    /// sent in one flight, answered together); `None` when the client closed between lines.
    pub(super) async fn flight(&mut self) -> Result<Option<Vec<Vec<u8>>>, String> {
        while !self.buf.contains(&b'\n') {
            if !self.fill().await? {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err("the client closed the connection in the middle of a line".into()),
                };
            }
        }
        let end = self.buf.iter().rposition(|&b| b == b'\n').expect("a whole line") + 1;
        let lines: Vec<u8> = self.buf.drain(..end).collect();
        self.received.extend_from_slice(&lines);
        Ok(Some(lines.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()))
    }

    /// Reads what is there; false at EOF.
    async fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 8192];
        let n = self.io.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }
}

fn check(line: &str, ok: impl Fn(&str) -> bool, want: &str) -> Result<(), String> {
    if ok(line) { Ok(()) } else { Err(format!("expected {want:?}, got {line:?}")) }
}
