//! Pipelined sending (RFC 2920): one round trip per message for a worker with a stream of messages.
//!
//! [`Session::open`] queues `MAIL FROM`, `RCPT TO` and `DATA` as one group and reads their replies.
//! [`Session::commit`] then awaits the caller's gate, and writes the body, its final dot, a `RSET` *and the
//! next message's* `MAIL`/`RCPT`/`DATA` in one write (§3.1: message content may be the first "command" of
//! a group, RSET may appear anywhere, DATA last), then reads the dot's reply and the next envelope's
//! replies. So the first message of a session costs two round trips and every later one a single one.
//! The `RSET` behind every dot costs a few bytes and no round trip; it is there because Postfix keeps the
//! sender after its end-of-data restrictions refuse a message (seen in the lab: the next `MAIL` gets `503
//! nested MAIL command`), and the dot's reply is not known when the next `MAIL` must already be written.
//!
//! Every reply of a group is checked and mapped to its own message (§3.1 "MUST check ALL statuses"):
//! - a 4xx/5xx to one command refuses only its transaction; the later replies of that transaction (e.g. the
//!   `503`s after a refused `MAIL`) are read and dropped, its first refusal is the outcome. If `RCPT` was
//!   refused but `DATA` still got `354`, the data is ended with a lone dot (§3.1) and a RSET follows; both
//!   go at the front of the next group ([`Cleanup`](super::session::Cleanup)), costing no extra round trip;
//! - a `421` ends the session (RFC 5321 §3.8): the message it answered and every later one is retryable;
//! - the connection lost after the current dot was handed to the stream makes the current message
//!   *uncertain* and the next one retryable (its `DATA` never got content);
//! - a failed gate writes nothing, so no dot: the current message is not delivered, the next not begun.
//!
//! Envelopes with several recipients keep `DATA` out of the group: once `DATA` got `354` the only way out is
//! a dot, which would deliver an empty message to the recipients that were accepted, so `DATA` waits until
//! every `RCPT` was (one more round trip, and delivery stays all or nothing). Without PIPELINING (or with
//! [`ClientConfig::pipelining`](super::ClientConfig::pipelining) off) every command is its own round trip,
//! through the same API with the same results.
//!
//! Deadlines stay per reply, but a server may hold a group's early replies until it has read the whole
//! group (Postfix flushes only when its input is drained), so a slow `RCPT` can time out as the `MAIL` reply.
//! Deadlock (§3.1 on window size): a group's replies are a few short lines, far below what the server's
//! socket buffer holds, so the server never blocks writing replies while we are still writing the group.
//!
//! The gate and a journal: the gate of message *n+1* is awaited inside *its* `commit`, after the 354, before
//! its dot. To keep the `fdatasync` off the critical path, a caller writes *n+1*'s committing record early
//! (mailshot's `send` does it when the message is queued) and passes "that record is durable" as *n+1*'s
//! gate: the sync then runs while earlier messages are on the wire. The price is that a crash can leave
//! messages committed but never sent, which a journal must then treat as uncertain.
//!
//! ```no_run
//! # async fn demo(session: &mut mailshot::smtp::TcpSession, queue: Vec<(mailshot::smtp::Envelope, Vec<u8>)>)
//! # -> Result<(), mailshot::smtp::SessionError> {
//! use mailshot::smtp::{Message, Opened};
//! let message = |i: usize| queue.get(i).map(|(envelope, body)| Message { envelope, body });
//! let Some(first) = message(0) else { return Ok(()) };
//! let (mut i, mut opened) = (0, session.open(first).await);
//! loop {
//!     let next = match opened? {
//!         Opened::Done(delivery) => match message(i + 1) {
//!             // record `delivery` for message i …
//!             Some(next) => session.open(next).await,
//!             None => break,
//!         },
//!         Opened::Ready(ready) => {
//!             let gate = async { Ok::<(), std::io::Error>(()) }; // e.g. the journal's "committing" ack
//!             let committed = session.commit(ready, &queue[i].1, gate, message(i + 1)).await;
//!             // record `committed.current` for message i (an Err ends the session) …
//!             match committed.next {
//!                 Some(next) => next,
//!                 None => break,
//!             }
//!         }
//!     };
//!     (i, opened) = (i + 1, next);
//! }
//! # Ok(()) }
//! ```

use std::error::Error as StdError;

use tokio::io::{AsyncRead, AsyncWrite};

use super::command::{Command, MailParams};
use super::config::Phase;
use super::connection::WriteError;
use super::data;
use super::envelope::Envelope;
use super::outcome::{Committed, Delivery, Opened, Ready, Refusal, SessionError, Stage};
use super::reply::{Reply, Severity};
use super::session::{Cleanup, Session, State};

/// One message to send: its envelope and its body as built (any line ends; canonicalised on the wire).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub envelope: &'a Envelope,
    pub body: &'a [u8],
}

/// What a reply means at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Judgement {
    /// 2xx (354 to DATA): go on.
    Wanted,
    /// 4xx/5xx: this transaction is refused, the session lives.
    Refused,
    /// 421: the server is closing the session.
    Closing,
    /// Anything else (a 3xx to MAIL, a 2xx to DATA): the session cannot be trusted any more.
    Unexpected,
}

pub(super) fn judge(stage: Stage, reply: &Reply) -> Judgement {
    let wanted = if stage == Stage::Data { reply.code() == 354 } else { reply.is_positive() };
    match reply.severity() {
        _ if wanted => Judgement::Wanted,
        _ if reply.code() == 421 => Judgement::Closing,
        Severity::Transient | Severity::Permanent => Judgement::Refused,
        Severity::Positive | Severity::Intermediate => Judgement::Unexpected,
    }
}

/// A transaction's commands in order, with the stage and deadline of each reply.
pub(super) fn transaction(
    env: &Envelope,
    params: MailParams,
    data: bool,
) -> impl Iterator<Item = (Stage, Command<'_>, Phase)> {
    let mail = (Stage::Mail, Command::Mail { from: env.from(), params }, Phase::Command);
    let rcpt = env.to().iter().map(|to| (Stage::Rcpt, Command::Rcpt { to }, Phase::Command));
    std::iter::once(mail).chain(rcpt).chain(data.then_some((Stage::Data, Command::Data, Phase::Data)))
}

/// What is decided about a message before any of its commands is written.
pub(super) struct Plan {
    pub params: MailParams,
    pub wire_len: usize,
    /// DATA goes in the same group as MAIL and RCPT (pipelining, one recipient).
    pub grouped_data: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Starts a transaction for `message`: MAIL, RCPT and DATA (one group with PIPELINING), and their
    /// replies. [`Opened::Ready`] means the server waits for the body: pass it to [`commit`](Self::commit).
    pub async fn open(&mut self, message: Message<'_>) -> Result<Opened, SessionError> {
        self.check_idle()?;
        let plan = match self.plan(message) {
            Ok(plan) => plan,
            Err(refusal) => return Ok(Opened::Done(Delivery::Refused(refusal))),
        };
        let result = self.start(message.envelope, &plan).await;
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// Finishes the transaction `ready` stands for: awaits `gate` (e.g. a journal's durable "committing"
    /// record), then writes `body` (the same body given to `open`) with its final dot, followed in the same
    /// write by `next`'s MAIL, RCPT and DATA when pipelining; then reads the dot's reply and `next`'s.
    ///
    /// [`Committed::current`] is the committed message's result; [`Committed::next`] is `next`'s opening
    /// (`Some` exactly when `next` was given): `Ready` to be committed in turn, `Done`, or a retryable `Err`.
    /// A `ready` this session did not just issue (another session's, or after the session ended) writes
    /// nothing and gives `Err(Closed)`, ending the session.
    pub async fn commit<G, E>(&mut self, ready: Ready, body: &[u8], gate: G, next: Option<Message<'_>>) -> Committed
    where
        G: Future<Output = Result<(), E>>,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        if self.state != State::Data || ready.session != self.id {
            return self.end(SessionError::Closed, next.map(|m| self.plan(m)));
        }
        let plan = next.map(|m| self.plan(m));
        if let Err(e) = gate.await {
            return self.end(SessionError::Gate { source: e.into() }, plan);
        }
        let dot_end = self.conn.queue_data(body);
        debug_assert_eq!(dot_end, ready.wire_len, "commit got a different body than open");
        let grouped = match (&plan, next) {
            (Some(Ok(plan)), Some(m)) if self.pipelining => {
                // Whatever the dot's reply will be, the next transaction starts clean (see `end_of_data`).
                self.cleanup.rset = true;
                Some(self.queue_opening(m.envelope, plan))
            }
            _ => None,
        };
        if let Err(WriteError { handed, source }) = self.conn.flush_data().await {
            let lost = if handed >= dot_end { SessionError::Uncertain { source } } else { data_lost(source) };
            return self.end(lost, plan);
        }
        self.state = State::Idle;
        let current = self.end_of_data(matches!(grouped, Some(Ok(_)))).await;
        let next = match (plan, next, &current) {
            (None, ..) | (_, None, _) => None,
            (Some(Err(refusal)), ..) => Some(Ok(Opened::Done(Delivery::Refused(refusal)))),
            (Some(Ok(_)), _, Err(e)) => Some(Err(e.for_next())),
            (Some(Ok(_)), ..) if self.state == State::Closed => Some(Err(SessionError::Closed)),
            (Some(Ok(plan)), Some(m), Ok(_)) => Some(self.continue_opening(m.envelope, &plan, grouped).await),
        };
        Committed { current, next }
    }

    /// The session is gone before the current dot's reply; `next` (if any) gets a retryable error.
    fn end(&mut self, error: SessionError, next: Option<Result<Plan, Refusal>>) -> Committed {
        self.state = State::Closed;
        let next = next.map(|plan| match plan {
            Ok(_) => Err(error.for_next()),
            Err(refusal) => Ok(Opened::Done(Delivery::Refused(refusal))),
        });
        Committed { current: Err(error), next }
    }

    /// Reads the replies of a next transaction queued behind the dot, or runs it now in lock-step.
    async fn continue_opening(
        &mut self,
        env: &Envelope,
        plan: &Plan,
        grouped: Option<Result<Cleanup, SessionError>>,
    ) -> Result<Opened, SessionError> {
        let result = match grouped {
            Some(Ok(cleanup)) => self.read_opening(env, plan, cleanup).await,
            Some(Err(refused_command)) => return Err(refused_command),
            None => self.start(env, plan).await,
        };
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// A transaction from scratch: grouped when pipelining, else lock-step.
    async fn start(&mut self, env: &Envelope, plan: &Plan) -> Result<Opened, SessionError> {
        if !self.pipelining {
            return self.open_lock_step(env, plan).await;
        }
        let cleanup = self.queue_opening(env, plan)?;
        self.conn.flush().await.map_err(|source| SessionError::Connection { stage: Stage::Mail, source })?;
        self.read_opening(env, plan, cleanup).await
    }

    /// Size, 8-bit and SMTPUTF8 checks against what the server offered (RFC 1870 §6, RFC 6152 §3,
    /// RFC 6531 §3.4), and the MAIL parameters.
    fn plan(&self, Message { envelope, body }: Message<'_>) -> Result<Plan, Refusal> {
        let caps = &self.info.capabilities;
        let wire_len = data::wire_len(body);
        let size = (wire_len as u64).saturating_sub(3); // RFC 1870 counts the data without `.` CRLF
        let eight_bit = data::is_eight_bit(body);
        match caps.size_limit() {
            Some(limit) if size > limit => return Err(Refusal::TooLarge { size, limit }),
            _ if envelope.smtputf8() && !caps.smtputf8 => return Err(Refusal::SmtpUtf8NotOffered),
            _ if eight_bit && !caps.eight_bit_mime => return Err(Refusal::EightBitNotOffered),
            _ => {}
        }
        let params = MailParams { size: caps.size.map(|_| size), eight_bit, smtputf8: envelope.smtputf8() };
        let grouped_data = self.pipelining && envelope.to().len() == 1;
        Ok(Plan { params, wire_len, grouped_data })
    }
}

/// The connection failed before the final dot's last byte was handed over: not delivered.
fn data_lost(source: super::connection::ConnectionError) -> SessionError {
    SessionError::Connection { stage: Stage::Data, source }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "pipeline_fault_tests.rs"]
mod fault_tests;
