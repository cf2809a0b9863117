//! A finished handshake and the mail transactions sent over it (RFC 5321 §3.3), one after another.
//!
//! A negative reply is a value, not a broken session: [`Delivery::Rejected`] says at which stage and
//! carries the whole reply, and the session resets the transaction (§4.1.1.5) and serves the next message.
//! `Err` means the session is gone, and says whether the message may have been delivered: a connection lost
//! (or a `421`, §3.8) before the final dot is retryable; lost after the final dot was handed to the stream
//! and before its reply, it is *uncertain* ([`SessionError::is_uncertain`]), since the server may have
//! accepted it (RFC 1047's duplicate-message problem).
//!
//! [`Session::send`] and [`Session::send_gated`] are one message at a time, built on the pipelined pair
//! [`Session::open`] / [`Session::commit`] (see [`pipeline`](super::pipeline)): with PIPELINING a message
//! costs two round trips through them, and one in a stream of messages through `commit`'s `next`.
//! `send_gated` awaits the caller's future after the `354` and before the body, so a "committing" record can
//! be durable before the dot leaves.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};

use super::auth::AuthOutcome;
use super::capabilities::Capabilities;
use super::command::{Command, MailParams};
use super::config::Phase;
use super::connection::{Connection, ConnectionError};
use super::envelope::Envelope;
pub use super::outcome::{Delivery, Opened, Refusal, SessionError, Stage, Trial};
use super::pipeline::{Judgement, Message, judge, transaction};
use super::reply::Reply;
use super::tls::TlsInfo;

/// What the handshake learned, for `probe` and for deciding MAIL parameters.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub greeting: Reply,
    /// The last EHLO (or HELO) reply: after STARTTLS, the one sent over TLS.
    pub ehlo: Reply,
    pub capabilities: Capabilities,
    pub tls: Option<TlsInfo>,
    pub auth: Option<AuthOutcome>,
}

/// Where the conversation stands between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// No transaction, or a refused one whose clean-up waits in [`Cleanup`].
    Idle,
    /// The server said `354` and reads message data: only `commit` may follow.
    Data,
    Closed,
}

/// What a refused transaction left behind, sent at the front of the next command group (RFC 2920 §3.1:
/// message content may open a group and RSET may appear anywhere in one). Only ever set when pipelining.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Cleanup {
    /// DATA got `354` although RCPT was refused: a lone dot ends the (recipient-less) data.
    pub dot: bool,
    pub rset: bool,
}

pub struct Session<S> {
    pub(super) conn: Connection<S>,
    pub(super) info: ServerInfo,
    pub(super) state: State,
    pub(super) cleanup: Cleanup,
    /// Ties a [`Ready`](super::outcome::Ready) to the session that issued it.
    pub(super) id: u64,
    /// The server offers PIPELINING and the configuration allows it.
    pub(super) pipelining: bool,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("info", &self.info).field("state", &self.state).finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Only the connector builds sessions, after a finished handshake.
    pub(super) fn new(conn: Connection<S>, info: ServerInfo, pipelining: bool) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        Session { conn, info, state: State::Idle, cleanup: Cleanup::default(), id, pipelining }
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.info.capabilities
    }

    /// True when commands are pipelined (offered by the server and allowed by the configuration).
    pub fn is_pipelining(&self) -> bool {
        self.pipelining
    }

    /// False once an error ended the session (or a RSET after a rejection failed).
    pub fn is_open(&self) -> bool {
        self.state != State::Closed
    }

    /// Sends one message (`body` is the message as built, any line ends; it is canonicalised here).
    pub async fn send(&mut self, envelope: &Envelope, body: &[u8]) -> Result<Delivery, SessionError> {
        self.send_gated(envelope, body, std::future::ready(Ok::<(), Infallible>(()))).await
    }

    /// As [`send`](Self::send), awaiting `gate` after the server's `354` and before the body and the final
    /// dot are written. If the gate fails, the session is dropped without the dot: nothing is delivered.
    pub async fn send_gated<G, E>(
        &mut self,
        envelope: &Envelope,
        body: &[u8],
        gate: G,
    ) -> Result<Delivery, SessionError>
    where
        G: Future<Output = Result<(), E>>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        match self.open(Message { envelope, body }).await? {
            Opened::Done(delivery) => Ok(delivery),
            Opened::Ready(ready) => self.commit(ready, body, gate, None).await.current,
        }
    }

    /// MAIL FROM and RCPT TO for `envelope`, then RSET: does the server take this sender and recipients?
    pub async fn try_envelope(&mut self, envelope: &Envelope) -> Result<Trial, SessionError> {
        self.check_idle()?;
        let result = self.trial(envelope).await;
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// QUIT (RFC 5321 §4.1.1.10) and close. A lone dot pending from a refused transaction goes first, as
    /// the server still reads data; in the middle of a transaction's data (a `Ready` never committed) there
    /// is no clean way out, and the connection is just closed.
    pub async fn quit(mut self) -> Result<Reply, ConnectionError> {
        if self.state == State::Data {
            self.conn.shutdown().await;
            return Err(ConnectionError::Closed { phase: Phase::Command });
        }
        let reply = self.quit_exchange().await;
        self.conn.shutdown().await;
        reply
    }

    async fn quit_exchange(&mut self) -> Result<Reply, ConnectionError> {
        let dot = self.cleanup.dot;
        if dot {
            self.conn.queue_data(b"");
        }
        self.conn.queue(&Command::Quit)?;
        self.conn.flush().await?;
        if dot {
            self.conn.read_reply(Phase::DataEnd).await?;
        }
        self.conn.read_reply(Phase::Command).await
    }

    /// Refuses to start a transaction unless the session is idle. A session left in DATA (a `Ready` that
    /// was dropped) can only end: the server reads everything as message data until a dot.
    pub(super) fn check_idle(&mut self) -> Result<(), SessionError> {
        match self.state {
            State::Idle => Ok(()),
            State::Data | State::Closed => {
                self.state = State::Closed;
                Err(SessionError::Closed)
            }
        }
    }

    async fn trial(&mut self, env: &Envelope) -> Result<Trial, SessionError> {
        self.settle().await?;
        let params = MailParams { smtputf8: env.smtputf8() && self.info.capabilities.smtputf8, ..Default::default() };
        let (mut mail, mut rcpt) = (None, Vec::with_capacity(env.to().len()));
        let mut trial = None;
        for (stage, command, phase) in transaction(env, params, false) {
            let reply = self.conn.command(&command, phase).await;
            let reply = reply.map_err(|source| SessionError::Connection { stage, source })?;
            match judge(stage, &reply) {
                Judgement::Wanted if stage == Stage::Mail => mail = Some(reply),
                Judgement::Wanted => rcpt.push(reply),
                Judgement::Refused => {
                    trial = Some(Trial::Rejected { stage, reply });
                    break;
                }
                Judgement::Closing => return Err(SessionError::ServiceClosing { stage, reply }),
                Judgement::Unexpected => return Err(SessionError::Protocol { stage, reply }),
            }
        }
        self.reset().await;
        Ok(trial.unwrap_or_else(|| Trial::Accepted { mail: mail.expect("MAIL comes first"), rcpt }))
    }

    /// Sends a pending clean-up on its own (before a lock-step exchange such as a trial).
    async fn settle(&mut self) -> Result<(), SessionError> {
        if self.cleanup == Cleanup::default() {
            return Ok(());
        }
        let queued = self.queue_cleanup();
        self.conn.flush().await.map_err(|source| SessionError::Connection { stage: Stage::Mail, source })?;
        self.read_cleanup(queued).await
    }

    /// RSET now (lock-step). If it fails the refusal still stands, but the session is closed.
    pub(super) async fn reset(&mut self) {
        match self.conn.command(&Command::Rset, Phase::Command).await {
            Ok(reply) if reply.is_positive() => {}
            _ => self.state = State::Closed,
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
