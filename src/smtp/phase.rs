//! The network phases of a conversation, each with its own deadline (RFC 5321 §4.5.3.2). Below everything
//! that does I/O, so the connection, AUTH and the configuration all name phases without importing each other.

use std::fmt;
use std::time::Duration;

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
