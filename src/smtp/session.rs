//! A finished handshake and the mail transactions sent over it (RFC 5321 §3.3), one after another.
//!
//! A negative reply is a value, not a broken session: [`Delivery::Rejected`] says at which stage and
//! carries the whole reply, and the session has already sent RSET (§4.1.1.5) and serves the next message.
//! `Err` means the session is gone, and says whether the message may have been delivered: a connection lost
//! (or a `421`, §3.8) before the final dot is retryable; lost after the final dot was handed to the stream
//! and before its reply, it is *uncertain* ([`SessionError::is_uncertain`]), since the server may have
//! accepted it (RFC 1047's duplicate-message problem). [`Session::send_gated`] awaits the caller's future
//! after the `354` and before the body, so a "committing" record can be durable before the dot leaves.

use std::convert::Infallible;
use std::error::Error as StdError;

use tokio::io::{AsyncRead, AsyncWrite};

use super::auth::AuthOutcome;
use super::capabilities::Capabilities;
use super::command::{Command, MailParams};
use super::config::{Direction, Phase};
use super::connection::{Connection, ConnectionError};
use super::data;
use super::envelope::Envelope;
pub use super::outcome::{Delivery, Refusal, SessionError, Stage, Trial};
use super::reply::{Reply, Severity};
use super::tls::TlsInfo;

/// Data goes out in blocks of this size, each under the data-block deadline (RFC 5321 §4.5.3.2.5).
const DATA_BLOCK: usize = 64 * 1024;

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

/// A refused step of the transaction (before RSET).
struct Rejection {
    stage: Stage,
    reply: Reply,
}

pub struct Session<S> {
    conn: Connection<S>,
    info: ServerInfo,
    open: bool,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("info", &self.info).field("open", &self.open).finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Only the connector builds sessions, after a finished handshake.
    pub(super) fn new(conn: Connection<S>, info: ServerInfo) -> Self {
        Session { conn, info, open: true }
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.info.capabilities
    }

    /// False once an error ended the session (or a RSET after a rejection failed).
    pub fn is_open(&self) -> bool {
        self.open
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
        if !self.open {
            return Err(SessionError::Closed);
        }
        let wire = data::encode(body);
        if let Some(refusal) = self.refusal(envelope, body, &wire) {
            return Ok(Delivery::Refused(refusal));
        }
        let result = self.transaction(envelope, body, &wire, gate).await;
        self.open &= result.is_ok();
        result
    }

    /// MAIL FROM and RCPT TO for `envelope`, then RSET: does the server take this sender and recipients?
    pub async fn try_envelope(&mut self, envelope: &Envelope) -> Result<Trial, SessionError> {
        if !self.open {
            return Err(SessionError::Closed);
        }
        let result = self.trial(envelope).await;
        self.open &= result.is_ok();
        result
    }

    /// QUIT (RFC 5321 §4.1.1.10) and close.
    pub async fn quit(mut self) -> Result<Reply, ConnectionError> {
        let reply = self.conn.command(&Command::Quit, Phase::Command).await;
        self.conn.shutdown().await;
        reply
    }

    async fn transaction<G, E>(&mut self, env: &Envelope, body: &[u8], wire: &[u8], gate: G) -> SendResult
    where
        G: Future<Output = Result<(), E>>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let params = self.mail_params(env, body, wire);
        if let Err(rejection) = self.envelope(env, params).await? {
            return Ok(self.rejected(rejection).await);
        }
        let positive = |r: &Reply| r.code() == 354;
        if let Err(rejection) = self.step(Stage::Data, &Command::Data, Phase::Data, positive).await? {
            return Ok(self.rejected(rejection).await);
        }
        gate.await.map_err(|e| SessionError::Gate { source: e.into() })?;
        self.write_data(wire).await?;
        self.end_of_data().await
    }

    async fn trial(&mut self, env: &Envelope) -> Result<Trial, SessionError> {
        let params = MailParams { smtputf8: env.smtputf8() && self.info.capabilities.smtputf8, ..Default::default() };
        let trial = match self.envelope(env, params).await? {
            Ok((mail, rcpt)) => Trial::Accepted { mail, rcpt },
            Err(Rejection { stage, reply }) => Trial::Rejected { stage, reply },
        };
        self.reset().await;
        Ok(trial)
    }

    /// MAIL, then each RCPT; the first refusal stops (all or nothing).
    async fn envelope(&mut self, env: &Envelope, params: MailParams) -> StepResult<(Reply, Vec<Reply>)> {
        let mail = Command::Mail { from: env.from(), params };
        let mail = match self.step(Stage::Mail, &mail, Phase::Command, Reply::is_positive).await? {
            Ok(reply) => reply,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let mut rcpt = Vec::with_capacity(env.to().len());
        for to in env.to() {
            match self.step(Stage::Rcpt, &Command::Rcpt { to }, Phase::Command, Reply::is_positive).await? {
                Ok(reply) => rcpt.push(reply),
                Err(rejection) => return Ok(Err(rejection)),
            }
        }
        Ok(Ok((mail, rcpt)))
    }

    /// One command and its reply: the wanted reply, a rejection (4xx/5xx), or the end of the session.
    async fn step(
        &mut self,
        stage: Stage,
        cmd: &Command<'_>,
        phase: Phase,
        wanted: fn(&Reply) -> bool,
    ) -> StepResult<Reply> {
        let reply = self.conn.command(cmd, phase).await.map_err(|source| SessionError::Connection { stage, source })?;
        match reply.severity() {
            _ if wanted(&reply) => Ok(Ok(reply)),
            _ if reply.code() == 421 => Err(SessionError::ServiceClosing { stage, reply }),
            Severity::Transient | Severity::Permanent => Ok(Err(Rejection { stage, reply })),
            Severity::Positive | Severity::Intermediate => Err(SessionError::Protocol { stage, reply }),
        }
    }

    /// The body and the final dot. A failure before every byte was handed over is retryable; after, uncertain.
    async fn write_data(&mut self, wire: &[u8]) -> Result<(), SessionError> {
        self.conn.log(Direction::Client, &format!("<message data: {} bytes, ending with the final dot>", wire.len()));
        for block in wire.chunks(DATA_BLOCK) {
            self.conn
                .write_block(block)
                .await
                .map_err(|source| SessionError::Connection { stage: Stage::Data, source })?;
        }
        self.conn.flush_data().await.map_err(|source| SessionError::Uncertain { source })
    }

    /// The reply to the final dot (RFC 5321 §4.1.1.4); the transaction is over whatever it says.
    async fn end_of_data(&mut self) -> SendResult {
        let reply = self.conn.read_reply(Phase::DataEnd).await.map_err(|source| SessionError::Uncertain { source })?;
        let stage = Stage::DataEnd;
        match reply.severity() {
            Severity::Positive => Ok(Delivery::Accepted(reply)),
            _ if reply.code() == 421 => Err(SessionError::ServiceClosing { stage, reply }),
            Severity::Transient | Severity::Permanent => Ok(self.rejected(Rejection { stage, reply }).await),
            Severity::Intermediate => Err(SessionError::Protocol { stage, reply }),
        }
    }

    async fn rejected(&mut self, Rejection { stage, reply }: Rejection) -> Delivery {
        self.reset().await;
        Delivery::Rejected { stage, reply }
    }

    /// RSET after a refusal. If it fails the refusal still stands, but the session is closed.
    async fn reset(&mut self) {
        match self.conn.command(&Command::Rset, Phase::Command).await {
            Ok(reply) if reply.is_positive() => {}
            _ => self.open = false,
        }
    }

    fn mail_params(&self, env: &Envelope, body: &[u8], wire: &[u8]) -> MailParams {
        let caps = &self.info.capabilities;
        MailParams {
            size: caps.size.map(|_| message_size(wire)),
            eight_bit: data::is_eight_bit(body),
            smtputf8: env.smtputf8(),
        }
    }

    /// What the server told us it cannot take (RFC 1870 §6, RFC 6152 §3, RFC 6531 §3.4).
    fn refusal(&self, env: &Envelope, body: &[u8], wire: &[u8]) -> Option<Refusal> {
        let caps = &self.info.capabilities;
        let size = message_size(wire);
        match caps.size_limit() {
            Some(limit) if size > limit => Some(Refusal::TooLarge { size, limit }),
            _ if env.smtputf8() && !caps.smtputf8 => Some(Refusal::SmtpUtf8NotOffered),
            _ if data::is_eight_bit(body) && !caps.eight_bit_mime => Some(Refusal::EightBitNotOffered),
            _ => None,
        }
    }
}

type SendResult = Result<Delivery, SessionError>;
type StepResult<T> = Result<Result<T, Rejection>, SessionError>;

/// The message's size as RFC 1870 counts it: the data without the final `.` CRLF.
fn message_size(wire: &[u8]) -> u64 {
    (wire.len() as u64).saturating_sub(3)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
