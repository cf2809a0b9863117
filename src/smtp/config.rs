//! What a connection needs to know, independent of any job file: server, security, trust, identity,
//! credentials, per-phase timeouts and an optional transcript sink.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use super::auth::{Credentials, Mechanism};

/// How the connection is protected (RFC 8314 for implicit TLS, RFC 3207 for STARTTLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte.
    ImplicitTls,
    /// Plaintext greeting and EHLO, then STARTTLS, which is required.
    StartTls,
    /// No TLS at all (a local relay).
    None,
}

/// The network phases, each with its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    Tls,
    Greeting,
    /// Any command but DATA and the end of data (EHLO, AUTH, MAIL, RCPT, RSET, QUIT…).
    Command,
    /// Waiting for the 354 after DATA.
    Data,
    /// Writing one block of the body.
    DataBlock,
    /// Waiting for the reply to the final dot.
    DataEnd,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Tls => "TLS handshake",
            Phase::Greeting => "greeting",
            Phase::Command => "command reply",
            Phase::Data => "DATA reply",
            Phase::DataBlock => "data block write",
            Phase::DataEnd => "reply to the final dot",
        })
    }
}

/// Per-phase timeouts; the defaults are RFC 5321 §4.5.3.2's (connect and TLS are ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub tls: Duration,
    pub greeting: Duration,
    pub command: Duration,
    pub data: Duration,
    pub data_block: Duration,
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let mins = |m: u64| Duration::from_secs(m * 60);
        Timeouts {
            connect: Duration::from_secs(30),
            tls: Duration::from_secs(60),
            greeting: mins(5),
            command: mins(5),
            data: mins(2),
            data_block: mins(3),
            data_end: mins(10),
        }
    }
}

impl Timeouts {
    pub fn get(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Connect => self.connect,
            Phase::Tls => self.tls,
            Phase::Greeting => self.greeting,
            Phase::Command => self.command,
            Phase::Data => self.data,
            Phase::DataBlock => self.data_block,
            Phase::DataEnd => self.data_end,
        }
    }
}

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Client,
    Server,
}

/// Receives every line that crosses the wire, AUTH payloads already redacted; the body is summarised.
pub type TranscriptSink = Arc<dyn Fn(Direction, &str) + Send + Sync>;

#[derive(Clone)]
pub struct ClientConfig {
    /// Host to connect to; also the name the certificate must carry (a DNS name or an IP literal).
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Extra trust anchors, added to webpki-roots (a private relay's CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The name sent in EHLO.
    pub ehlo_name: String,
    pub credentials: Option<Credentials>,
    /// Force a mechanism; `None` picks PLAIN, then LOGIN, among those offered.
    pub mechanism: Option<Mechanism>,
    /// Allows AUTH on a connection without TLS (a local relay on loopback); off by default.
    pub allow_plaintext_auth: bool,
    pub timeouts: Timeouts,
    /// Pipeline commands when the server offers PIPELINING (RFC 2920); off forces lock-step, for a server
    /// that advertises it but mishandles it (and to measure what pipelining buys).
    pub pipelining: bool,
    pub transcript: Option<TranscriptSink>,
}

impl ClientConfig {
    /// Implicit TLS, no credentials, EHLO `localhost`, default timeouts.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ClientConfig {
            host: host.into(),
            port,
            security: Security::ImplicitTls,
            extra_roots: Vec::new(),
            ehlo_name: "localhost".to_owned(),
            credentials: None,
            mechanism: None,
            allow_plaintext_auth: false,
            timeouts: Timeouts::default(),
            pipelining: true,
            transcript: None,
        }
    }
}

/// By hand: the transcript sink has no `Debug`, and credentials print their own redacted form.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("extra_roots", &self.extra_roots.len())
            .field("ehlo_name", &self.ehlo_name)
            .field("credentials", &self.credentials)
            .field("mechanism", &self.mechanism)
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("timeouts", &self.timeouts)
            .field("pipelining", &self.pipelining)
            .field("transcript", &self.transcript.is_some())
            .finish()
    }
}
