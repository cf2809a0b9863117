//! The one interpreter: a connection follows a list of [`Step`]s over any `AsyncRead + AsyncWrite`.
//!
//! Exact steps (send, expect a line, swallow data, start TLS, wait, close) pin a transcript; [`Step::Serve`]
//! hands the rest of the connection to a [`Mailbox`] that answers whatever comes, pipelined or not. What the
//! client sent is recorded byte for byte; a broken expectation ends the connection and is kept in the
//! [`Record`], so a test never passes on a script that did not run.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{DuplexStream, duplex};
use tokio::task::JoinHandle;

use super::conn::{Conn, Io};
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
    /// Read exactly this many bytes: a BDAT chunk (RFC 3030), whatever lines it holds.
    Chunk(usize),
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

/// Runs `script` on `io` to its end or its first failure.
pub async fn run(io: impl Io + 'static, script: Vec<Step>) -> Record {
    let mut conn = Conn::new(Box::new(io));
    let mut error = None;
    for step in script {
        let result = match step {
            Step::Close => break,
            Step::StartTls(config) => conn.start_tls(config).await,
            other => take_step(&mut conn, other).await,
        };
        if let Err(e) = result {
            error = Some(e);
            break;
        }
    }
    let received = conn.into_received();
    Record { received: String::from_utf8_lossy(&received).into_owned(), bytes: received, error }
}

/// Runs `script` against the client end of an in-memory pipe (tier 2); the handle yields every byte the
/// client sent, and panics (so the test fails) when the script broke.
pub fn peer(script: Vec<Step>) -> (DuplexStream, JoinHandle<Vec<u8>>) {
    let (client, server) = duplex(1 << 16);
    (client, tokio::spawn(async move { run(server, script).await.ok().bytes }))
}

/// One exact step (or the rest of the connection, for [`Step::Serve`]).
async fn take_step(conn: &mut Conn, step: Step) -> Result<(), String> {
    match step {
        Step::Send(bytes) => conn.write(bytes.as_bytes()).await,
        Step::Expect(want) => check(&conn.line().await?, |l| l == format!("{want}\r\n"), &want),
        Step::ExpectPrefix(want) => check(&conn.line().await?, |l| l.starts_with(&want), &want),
        Step::Data => {
            while conn.line().await? != ".\r\n" {}
            Ok(())
        }
        Step::Chunk(size) => conn.bytes(size).await.map(drop),
        Step::Sleep(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Step::Serve(mailbox) => serve(conn, &mailbox).await,
        Step::Drain => {
            conn.drain().await;
            Ok(())
        }
        Step::Close | Step::StartTls(_) => unreachable!("handled by run"),
    }
}

fn check(line: &str, ok: impl Fn(&str) -> bool, want: &str) -> Result<(), String> {
    if ok(line) { Ok(()) } else { Err(format!("expected {want:?}, got {line:?}")) }
}
