//! What a connection needs to know, independent of any job file: server, security, trust, identity,
//! credentials, per-phase timeouts and an optional transcript sink.

use std::fmt;

use rustls_pki_types::CertificateDer;

use super::credentials::{Credentials, Mechanism};
use super::phase::Timeouts;
use super::transcript::{HintSink, LearnedSink, TranscriptSink};

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

/// How far commands are pipelined (RFC 2920) when the server offers PIPELINING.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pipelining {
    /// Every command waits for the reply to the one before (also what a server without PIPELINING gets).
    Off,
    /// MAIL, RCPT and DATA of a transaction in one write, but nothing after a final dot before its reply:
    /// for servers that refuse commands pipelined behind the dot as an SMTP-smuggling defence (Haraka).
    Envelope,
    /// The next transaction's commands go out right behind the final dot: one round trip per message.
    /// A session that sees them refused falls back to [`Pipelining::Envelope`] by itself.
    Full,
}

#[derive(Clone)]
pub struct ClientConfig {
    /// Host to connect to; also the name the certificate must carry (a DNS name or an IP literal).
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Extra trust anchors, added to webpki-roots (a private relay's CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The name sent in EHLO; `None`: the machine's name when it is fully qualified, else the address
    /// literal of our end of the connection (`[127.0.0.1]`, `[IPv6:::1]`), as RFC 5321 §4.1.4 asks.
    pub ehlo_name: Option<String>,
    pub credentials: Option<Credentials>,
    /// Force a mechanism; `None` picks PLAIN, then LOGIN, among those offered.
    pub mechanism: Option<Mechanism>,
    /// Allows AUTH on a connection without TLS (a local relay on loopback); off by default.
    pub allow_plaintext_auth: bool,
    pub timeouts: Timeouts,
    /// How far to pipeline when the server offers PIPELINING; `Off` forces lock-step, for a server that
    /// advertises it but mishandles it (and to measure what pipelining buys).
    pub pipelining: Pipelining,
    /// Transactions in flight at once on a session whose server offers CHUNKING (RFC 3030) with
    /// PIPELINING, under [`Pipelining::Full`]: each message is `MAIL`, `RCPT`, `BDAT size LAST` and its
    /// bytes, written without waiting for the replies of the ones before. 1 (the default) keeps DATA.
    pub window: usize,
    pub transcript: Option<TranscriptSink>,
    /// Where hints about a likely misconfiguration go; none are given without it.
    pub hints: Option<HintSink>,
    /// Told each fact the handshake learns as soon as it is known (for `probe`).
    pub learned: Option<LearnedSink>,
}

impl ClientConfig {
    /// Implicit TLS, no credentials, the default EHLO name, full pipelining, default timeouts.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ClientConfig {
            host: host.into(),
            port,
            security: Security::ImplicitTls,
            extra_roots: Vec::new(),
            ehlo_name: None,
            credentials: None,
            mechanism: None,
            allow_plaintext_auth: false,
            timeouts: Timeouts::default(),
            pipelining: Pipelining::Full,
            window: 1,
            transcript: None,
            hints: None,
            learned: None,
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
            .field("hints", &self.hints.is_some())
            .field("learned", &self.learned.is_some())
            .finish()
    }
}
