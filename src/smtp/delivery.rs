//! What became of a message: a [`Delivery`] when the session survived, a [`SessionError`] when it did not.
//!
//! The split is the contract with the send layer: a negative reply is data to classify (retry, fail),
//! an error ends the session, and [`SessionError::is_uncertain`] singles out the one case where the message
//! may have been delivered although no reply said so (the connection was lost after the final dot).
//!
//! For pipelined sending ([`Session::open`](super::Session::open), [`Session::commit`](super::Session::commit))
//! a transaction is first [`Opened`] (MAIL, RCPT, DATA answered: [`Ready`] for its body, or already done),
//! then committed; [`Committed`] carries one result per message whose replies came in that round trip.

use std::error::Error as StdError;
use std::fmt;

use super::connection::ConnectionError;
use super::reply::Reply;

/// Where in a transaction a reply or failure came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
    /// The reply to the final dot.
    DataEnd,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::DataEnd => "end of data",
        })
    }
}

/// What became of one message when the session survived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The final reply (`250 2.0.0 Ok: queued as …`), every line, and the copies (see
    /// [`Envelope::with_copies`](super::Envelope::with_copies)) the server rejected at `RCPT TO`: the message
    /// went to the main recipient and every other copy, not to these.
    Accepted { reply: Reply, rejected_copies: Vec<RejectedCopy> },
    /// A 4xx/5xx reply at `stage`; nothing was delivered to anyone. Before the data, the session resets the
    /// transaction (RSET, at the front of the next command group when pipelining); after the final dot there
    /// is nothing to reset (RFC 5321 §4.1.1.4). With several recipients the first refused one stops the
    /// transaction, so delivery is all or nothing; an envelope's copies
    /// ([`Envelope::with_copies`](super::Envelope::with_copies)) are the exception: only the main recipient's
    /// rejection (or MAIL's, DATA's, the dot's) is a `Rejected`.
    Rejected { stage: Stage, reply: Reply },
    /// Refused here before MAIL, nothing sent: the server could not take this message.
    Refused(Refusal),
}

/// A copy's address and the server's negative reply to its `RCPT TO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedCopy {
    pub address: String,
    pub reply: Reply,
}

impl fmt::Display for RejectedCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.address, self.reply)
    }
}

/// Why a message was not even offered to the server. A value, not an error: the session is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooLarge { size: u64, limit: u64 },
    SmtpUtf8NotOffered,
    EightBitNotOffered,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooLarge { size, limit } => {
                write!(f, "the message is {size} bytes; the server takes at most {limit} (SIZE)")
            }
            Refusal::SmtpUtf8NotOffered => f.write_str("an address needs SMTPUTF8, which the server does not offer"),
            Refusal::EightBitNotOffered => {
                f.write_str("the body has 8-bit bytes and the server does not offer 8BITMIME")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the server is closing the session at {stage}: {reply}")]
    ServiceClosing { stage: Stage, reply: Reply },
    #[error("{stage}: {source}")]
    Connection { stage: Stage, source: ConnectionError },
    #[error("the message may have been delivered: the final dot was sent but no reply came ({source})")]
    Uncertain { source: ConnectionError },
    #[error("unexpected reply at {stage}: {reply}")]
    Protocol { stage: Stage, reply: Reply },
    #[error("the message was not sent: the caller's commit step failed before the final dot: {source}")]
    Gate { source: Box<dyn StdError + Send + Sync> },
    /// A RSET (cleaning up after an earlier message's refusal) was refused: the session ended before this
    /// message's transaction began.
    #[error("the server refused RSET: {reply}")]
    ResetRejected { reply: Reply },
    #[error("the session is closed")]
    Closed,
}

impl SessionError {
    /// The final dot went out and no usable reply came: the message may or may not have been delivered.
    pub fn is_uncertain(&self) -> bool {
        matches!(self, SessionError::Uncertain { .. } | SessionError::Protocol { stage: Stage::DataEnd, .. })
    }

    /// The message was certainly not delivered and may be sent again on a new session.
    pub fn is_retryable(&self) -> bool {
        !self.is_uncertain()
    }

    /// What the same end of the session means for the message after this one, whose commands went out
    /// behind this one's final dot (or never went out): it was never given data, so it is retryable.
    /// (A `421` to the current message is not the next one's reply: the next gets "the server closed the
    /// connection", so that nothing mistakes it for a refusal of its own MAIL.)
    pub(super) fn for_next(&self) -> SessionError {
        match self {
            SessionError::ServiceClosing { .. } => SessionError::Connection {
                stage: Stage::Mail,
                source: ConnectionError::Closed { phase: super::phase::Phase::Command },
            },
            SessionError::Connection { source, .. } | SessionError::Uncertain { source } => {
                SessionError::Connection { stage: Stage::Mail, source: source.duplicate() }
            }
            _ => SessionError::Closed,
        }
    }

    /// The server's reply, when the session ended on one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            SessionError::ServiceClosing { reply, .. }
            | SessionError::Protocol { reply, .. }
            | SessionError::ResetRejected { reply } => Some(reply),
            _ => None,
        }
    }
}

/// The result of [`Session::try_envelope`]: MAIL and RCPT without DATA, then RSET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trial {
    Accepted { mail: Reply, rcpt: Vec<Reply> },
    Rejected { stage: Stage, reply: Reply },
}

/// The result of [`Session::open`](super::Session::open): the transaction's envelope is answered.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a Ready transaction must be committed: the server is waiting for its data"]
pub enum Opened {
    /// The server said `354`: hand this to `commit` with the message's body.
    Ready(Ready),
    /// Over before any data: refused here, or rejected by the server (which the session will RSET).
    Done(Delivery),
}

/// Proof that the session's current transaction got its `354`; only `commit` takes it, once.
#[derive(Debug, PartialEq, Eq)]
pub struct Ready {
    pub(super) session: u64,
    /// The wire size the `MAIL FROM` announced, to catch a different body being committed.
    pub(super) wire_len: usize,
    /// Copies the server rejected while the main recipient was accepted, for the delivery's report.
    pub(super) rejected_copies: Vec<RejectedCopy>,
}

/// What one [`Session::commit`](super::Session::commit) round trip settled.
#[derive(Debug)]
#[must_use = "the committed message's outcome and the next message's opening must be recorded"]
pub struct Committed {
    /// The committed message's own result: its data is gone, so an `Err` here may be uncertain.
    pub current: Result<Delivery, SessionError>,
    /// The next message's opening, when one was given; an `Err` here is always retryable (no data was sent).
    pub next: Option<Result<Opened, SessionError>>,
}
