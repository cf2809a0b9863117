//! A finished handshake and the mail transactions sent over it (RFC 5321 §3.3): the session's state machine
//! for DATA in this file, and for several BDAT transactions in flight in its child [`window`](self::window)
//! (CHUNKING; it shares this state: nothing is in flight while a DATA transaction runs). The pure parts (a transaction's commands, what a reply means, the plan for a
//! message) are in [`transaction`](super::transaction); bytes and deadlines are the connection's.
//!
//! ```text
//!            open(m) ──► Idle ──[MAIL RCPT DATA → 354]──► Data ──commit(body, next)──► Idle …
//!                         │  └─[refused]─► Idle + Cleanup{dot?, rset}     │ (dot, and with Full pipelining
//!                         │                (sent first in the next group)  │  next's MAIL RCPT DATA behind it)
//!                         └─[421, lost, unexpected]──────────────────────► Closed ◄──┘
//! ```
//!
//! A negative reply is a value, not a broken session: [`Delivery::Rejected`] says at which stage and carries
//! the whole reply, and the session resets the transaction (§4.1.1.5) and serves the next message. `Err`
//! means the session is gone, and says whether the message may have been delivered: a connection lost (or a
//! `421`, §3.8) before the final dot is retryable; lost after the final dot was handed to the stream and
//! before its reply, it is *uncertain* ([`SessionError::is_uncertain`]), since the server may have accepted
//! it (RFC 1047's duplicate-message problem).
//!
//! ## Pipelining (RFC 2920)
//! [`Session::open`] queues `MAIL FROM`, `RCPT TO` and `DATA` as one group and reads their replies.
//! [`Session::commit`] then awaits the caller's gate and writes the body and its final dot; with
//! [`Pipelining::Full`] the same write carries a `RSET` *and the next message's* `MAIL`/`RCPT`/`DATA` (§3.1:
//! message content may be the first "command" of a group, RSET may appear anywhere, DATA last), so the
//! first message of a session costs two round trips and every later one a single one. The `RSET` behind
//! every dot costs a few bytes and no round trip; it is there because Postfix keeps the sender after its
//! end-of-data restrictions refuse a message (the next `MAIL` gets `503 nested MAIL command`), and the dot's
//! reply is not known when the next `MAIL` must already be written.
//!
//! Some servers refuse anything written behind a final dot before its reply (Haraka answers each such
//! command `503 5.5.0 Bad sequence of commands - pipelined after end of DATA`, an SMTP-smuggling defence).
//! A session that sees this switches itself to [`Pipelining::Envelope`] (nothing after a dot before its
//! reply; MAIL/RCPT/DATA still grouped), resets, and opens the refused transaction again at once: the caller
//! just gets that transaction's opening, and learns of the switch from [`Session::pipelining_rejected`].
//!
//! Every reply of a group is checked and mapped to its own message (§3.1 "MUST check ALL statuses"):
//! - a 4xx/5xx to one command refuses only its transaction; the later replies of that transaction (e.g. the
//!   `503`s after a refused `MAIL`) are read and dropped, its first refusal is the outcome. If `RCPT` was
//!   refused but `DATA` still got `354`, the data is ended with a lone dot (§3.1) and a RSET follows; both
//!   go at the front of the next group ([`Cleanup`]), costing no extra round trip;
//! - a `421` ends the session (RFC 5321 §3.8): the message it answered and every later one is retryable;
//! - the connection lost after the current dot was handed to the stream makes the current message
//!   *uncertain* and the next one retryable (its `DATA` never got content);
//! - a failed gate writes nothing, so no dot: the current message is not delivered, the next not begun.
//!
//! Deadlines stay per reply, but a server may hold a group's early replies until it has read the whole
//! group (Postfix flushes only when its input is drained), so a slow `RCPT` can time out as the `MAIL` reply.
//! Deadlock (§3.1 on window size): a group's replies are a few short lines, far below what the server's
//! socket buffer holds, so the server never blocks writing replies while we are still writing the group.
//!
//! The gate and a journal: the gate of message *n+1* is awaited inside *its* `commit`, after the 354, before
//! its dot. To keep the `fdatasync` off the critical path, a caller writes *n+1*'s committing record when it
//! passes *n+1* as `next` (mailshot's `send` does, and requests the sync at once) and passes "that record is
//! durable" as *n+1*'s gate: the sync then runs during *n*'s round trip. The price is that a crash can leave
//! the pipelined message committed but never sent, which a journal must then treat as uncertain.
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

use std::convert::Infallible;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};

use super::auth::AuthOutcome;
use super::capabilities::Capabilities;
use super::command::{Command, MailParams};
use super::config::Pipelining;
use super::connection::{Connection, ConnectionError, WriteError};
use super::delivery::{Committed, Delivery, Opened, Ready, Refusal, RejectedCopy, SessionError, Stage, Trial};
use super::envelope::Envelope;
use super::phase::Phase;
use super::reply::Reply;
use super::tls::TlsInfo;
use super::transaction::{Copies, Judgement, Message, TransactionPlan, commands, judge, rejects_pipelining};

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
enum SessionState {
    /// No transaction, or a refused one whose clean-up waits in [`Cleanup`].
    Idle,
    /// The server said `354` and reads message data: only `commit` may follow.
    Data,
    Closed,
}

/// What a refused transaction left behind, sent at the front of the next command group (RFC 2920 §3.1:
/// message content may open a group and RSET may appear anywhere in one). Only ever set when pipelining.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cleanup {
    /// DATA got `354` although RCPT was refused: a lone dot ends the (recipient-less) data.
    dot: bool,
    rset: bool,
}

/// A refused step of the transaction (before RSET).
struct Rejection {
    stage: Stage,
    reply: Reply,
}

impl From<Rejection> for Delivery {
    fn from(Rejection { stage, reply }: Rejection) -> Delivery {
        Delivery::Rejected { stage, reply }
    }
}

pub struct Session<S> {
    conn: Connection<S>,
    info: ServerInfo,
    state: SessionState,
    cleanup: Cleanup,
    /// Ties a [`Ready`] to the session that issued it.
    id: u64,
    /// What the server offers and the configuration allows; lowered to `Envelope` by a post-dot refusal.
    pipelining: Pipelining,
    /// The server's reply that refused commands pipelined behind a final dot, once seen.
    pipelining_rejected: Option<Reply>,
    /// BDAT transactions written and not yet answered, oldest first (see [`window`](self::window)).
    in_flight: std::collections::VecDeque<window::InFlight>,
    /// How many may be in flight when the server offers CHUNKING and PIPELINING (as configured).
    window_size: usize,
    /// Why the connection ended with transactions still in flight: each of them is answered by this.
    window_end: Option<window::WindowEnd>,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("info", &self.info).field("state", &self.state).finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Only the connector builds sessions, after a finished handshake. `pipelining`: as configured; a
    /// server that does not offer PIPELINING gets lock-step whatever it says.
    /// `window`: BDAT transactions in flight at once where the server offers CHUNKING (1: DATA, as ever).
    pub(super) fn new(conn: Connection<S>, info: ServerInfo, pipelining: Pipelining, window: usize) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        let pipelining = if info.capabilities.pipelining { pipelining } else { Pipelining::Off };
        Session {
            conn,
            info,
            state: SessionState::Idle,
            cleanup: Cleanup::default(),
            id,
            pipelining,
            pipelining_rejected: None,
            in_flight: std::collections::VecDeque::new(),
            window_size: window.max(1),
            window_end: None,
        }
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.info.capabilities
    }

    /// True when commands are pipelined (offered by the server and allowed by the configuration).
    pub fn is_pipelining(&self) -> bool {
        self.pipelining != Pipelining::Off
    }

    /// How far commands are pipelined now.
    pub fn pipelining(&self) -> Pipelining {
        self.pipelining
    }

    /// Lowers how far commands are pipelined, never raises it: e.g. to `Envelope` for a server already known
    /// to refuse commands behind a dot.
    pub fn limit_pipelining(&mut self, at_most: Pipelining) {
        self.pipelining = self.pipelining.min(at_most);
    }

    /// The reply with which the server refused commands written behind a final dot, if it did: the session
    /// then went on with [`Pipelining::Envelope`], and so should any later session to this server.
    pub fn pipelining_rejected(&self) -> Option<&Reply> {
        self.pipelining_rejected.as_ref()
    }

    /// False once an error ended the session (or a RSET after a rejection failed).
    pub fn is_open(&self) -> bool {
        self.state != SessionState::Closed
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
            self.state = SessionState::Closed;
        }
        result
    }

    /// Finishes the transaction `ready` stands for: awaits `gate` (e.g. a journal's durable "committing"
    /// record), then writes `body` (the same body given to `open`) with its final dot, followed in the same
    /// write by `next`'s MAIL, RCPT and DATA with [`Pipelining::Full`]; then reads the dot's reply and
    /// `next`'s (or, without `Full`, opens `next` after the dot's reply).
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
        if self.state != SessionState::Data || ready.session != self.id {
            return self.end(SessionError::Closed, next.map(|m| self.plan(m)));
        }
        let plan = next.map(|m| self.plan(m));
        if let Err(e) = gate.await {
            return self.end(SessionError::Gate { source: e.into() }, plan);
        }
        let dot_end = self.conn.queue_data(body);
        debug_assert_eq!(dot_end, ready.wire_len, "commit got a different body than open");
        let behind_dot = match (&plan, next) {
            (Some(Ok(plan)), Some(m)) if self.pipelining == Pipelining::Full => {
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
        self.state = SessionState::Idle;
        let current = self.end_of_data(matches!(behind_dot, Some(Ok(_))), ready.rejected_copies).await;
        let next = match (plan, next, &current) {
            (None, ..) | (_, None, _) => None,
            (Some(Err(refusal)), ..) => Some(Ok(Opened::Done(Delivery::Refused(refusal)))),
            (Some(Ok(_)), _, Err(e)) => Some(Err(e.for_next())),
            (Some(Ok(_)), ..) if self.state == SessionState::Closed => Some(Err(SessionError::Closed)),
            (Some(Ok(plan)), Some(m), Ok(_)) => Some(self.continue_opening(m.envelope, &plan, behind_dot).await),
        };
        Committed { current, next }
    }

    /// MAIL FROM and RCPT TO for `envelope`, then RSET: does the server take this sender and recipients?
    pub async fn try_envelope(&mut self, envelope: &Envelope) -> Result<Trial, SessionError> {
        self.check_idle()?;
        let result = self.trial(envelope).await;
        if result.is_err() {
            self.state = SessionState::Closed;
        }
        result
    }

    /// QUIT (RFC 5321 §4.1.1.10) and close. A lone dot pending from a refused transaction goes first, as
    /// the server still reads data; in the middle of a transaction's data (a `Ready` never committed) there
    /// is no clean way out, and the connection is just closed.
    pub async fn quit(mut self) -> Result<Reply, ConnectionError> {
        if self.state == SessionState::Data {
            self.conn.shutdown().await;
            return Err(ConnectionError::Closed { phase: Phase::Command });
        }
        let reply = self.quit_exchange().await;
        self.conn.shutdown().await;
        reply
    }

    // ── Transitions out of Idle ─────────────────────────────────────────────────────────────────────────

    /// Refuses to start a transaction unless the session is idle. A session left in DATA (a `Ready` that
    /// was dropped) can only end: the server reads everything as message data until a dot.
    fn check_idle(&mut self) -> Result<(), SessionError> {
        match self.state {
            SessionState::Idle if self.in_flight.is_empty() => Ok(()),
            SessionState::Idle => Err(SessionError::Closed),
            SessionState::Data | SessionState::Closed => {
                self.state = SessionState::Closed;
                Err(SessionError::Closed)
            }
        }
    }

    fn plan(&self, message: Message<'_>) -> Result<TransactionPlan, Refusal> {
        TransactionPlan::new(message, &self.info.capabilities, self.is_pipelining())
    }

    /// A transaction from scratch: grouped when pipelining, else lock-step.
    async fn start(&mut self, env: &Envelope, plan: &TransactionPlan) -> Result<Opened, SessionError> {
        if !self.is_pipelining() {
            return self.open_lock_step(env, plan).await;
        }
        if self.pipelining == Pipelining::Envelope && self.cleanup.dot {
            // A lone dot followed by commands in one write is pipelining behind a dot: send it alone.
            self.settle().await?;
        }
        let cleanup = self.queue_opening(env, plan)?;
        self.conn.flush().await.map_err(|source| SessionError::Connection { stage: Stage::Mail, source })?;
        self.read_opening(env, plan, cleanup, false).await
    }

    /// Queues the pending clean-up and the transaction's commands; returns the clean-up that was queued.
    /// A refused argument queues nothing (the envelope validated its addresses, so this is a last guard).
    fn queue_opening(&mut self, env: &Envelope, plan: &TransactionPlan) -> Result<Cleanup, SessionError> {
        let mark = self.conn.queued();
        let cleanup = self.queue_cleanup();
        for (stage, command, _) in commands(env, plan.params, plan.grouped_data) {
            if let Err(e) = self.conn.queue(&command) {
                self.conn.truncate(mark);
                self.cleanup = cleanup;
                return Err(SessionError::Connection { stage, source: e.into() });
            }
        }
        Ok(cleanup)
    }

    /// Queues the pending lone dot and RSET, if any, and forgets them.
    fn queue_cleanup(&mut self) -> Cleanup {
        let cleanup = std::mem::take(&mut self.cleanup);
        if cleanup.dot {
            self.conn.queue_data(b"");
        }
        if cleanup.rset {
            self.conn.queue(&Command::Rset).expect("RSET has no argument");
        }
        cleanup
    }

    /// The clean-up's replies. They decide nothing about any message, but a `421` or a refused RSET ends
    /// the session before the transaction behind them began, unless the RSET was written behind a dot and
    /// refused for that: then the refusal is returned (see [`pipelining_rejected`](Self::pipelining_rejected)).
    async fn read_cleanup(&mut self, cleanup: Cleanup, behind_dot: bool) -> Result<Option<Reply>, SessionError> {
        let lost = |source| SessionError::Connection { stage: Stage::Mail, source };
        if cleanup.dot {
            let reply = self.conn.read_reply(Phase::DataEnd).await.map_err(lost)?;
            if reply.code() == 421 {
                return Err(SessionError::ServiceClosing { stage: Stage::Mail, reply });
            }
        }
        if cleanup.rset {
            let reply = self.conn.read_reply(Phase::Command).await.map_err(lost)?;
            if behind_dot && rejects_pipelining(&reply) {
                return Ok(Some(reply));
            }
            if reply.code() == 421 {
                return Err(SessionError::ServiceClosing { stage: Stage::Mail, reply });
            }
            if !reply.is_positive() {
                return Err(SessionError::ResetRejected { reply });
            }
        }
        Ok(None)
    }

    /// Reads the replies to a group queued by [`queue_opening`](Self::queue_opening), every one of them.
    /// `behind_dot`: the group went out behind the previous message's final dot.
    async fn read_opening(
        &mut self,
        env: &Envelope,
        plan: &TransactionPlan,
        cleanup: Cleanup,
        behind_dot: bool,
    ) -> Result<Opened, SessionError> {
        let mut refused_pipelining = self.read_cleanup(cleanup, behind_dot).await?;
        let mut first: Option<Rejection> = None;
        let (mut in_data, mut accepted) = (false, false);
        let (mut recipients, mut rejected_copies) = (Copies::of(env), Vec::new());
        for (stage, _, phase) in commands(env, plan.params, plan.grouped_data) {
            let copy = recipients.copy_at(stage);
            let reply = match self.conn.read_reply(phase).await {
                Ok(reply) => reply,
                Err(source) => return self.ended(first, SessionError::Connection { stage, source }),
            };
            match judge(stage, &reply) {
                Judgement::Wanted => (in_data, accepted) = (stage == Stage::Data, accepted || stage == Stage::Rcpt),
                // Every reply of the group is read before deciding: a copy's rejection is noted and the
                // transaction goes on, unless the main recipient (or MAIL) was rejected too.
                Judgement::Rejected
                    if first.is_none()
                        && let Some(address) = copy =>
                {
                    rejected_copies.push(RejectedCopy { address: address.to_owned(), reply })
                }
                Judgement::Rejected if first.is_none() => first = Some(Rejection { stage, reply }),
                Judgement::Rejected => {} // e.g. 503 to RCPT after a refused MAIL: the first refusal says why
                Judgement::Closing => return self.ended(first, SessionError::ServiceClosing { stage, reply }),
                Judgement::Unexpected => return self.ended(first, SessionError::Protocol { stage, reply }),
            }
        }
        if behind_dot && refused_pipelining.is_none() {
            refused_pipelining = first.as_ref().filter(|r| rejects_pipelining(&r.reply)).map(|r| r.reply.clone());
        }
        if let Some(reply) = refused_pipelining {
            return self.reopen_without_pipelining_past_dot(env, plan, reply, in_data).await;
        }
        match first {
            // A recipient was taken although the transaction was refused (a server keeping an earlier
            // transaction's state): a dot would deliver an empty message to it, so only closing is safe.
            Some(rejection) if in_data && accepted => self.ended(Some(rejection), SessionError::Closed),
            Some(rejection) => {
                self.cleanup = Cleanup { dot: in_data, rset: true };
                Ok(Opened::Done(rejection.into()))
            }
            None if plan.grouped_data => Ok(self.ready(plan, rejected_copies)),
            None => self.data_step(plan, rejected_copies).await,
        }
    }

    /// The server refused the commands written behind a dot. From now on nothing follows a dot before its
    /// reply; the refused transaction is reset (lock-step) and opened again at once. It was never begun, so
    /// it is the same transaction, not a retry. If DATA had got `354` there is no clean way back: the session
    /// ends and the message is retryable (no reply concerned it).
    async fn reopen_without_pipelining_past_dot(
        &mut self,
        env: &Envelope,
        plan: &TransactionPlan,
        reply: Reply,
        in_data: bool,
    ) -> Result<Opened, SessionError> {
        self.pipelining = Pipelining::Envelope;
        self.pipelining_rejected.get_or_insert(reply);
        self.cleanup = Cleanup::default();
        if in_data {
            self.state = SessionState::Closed;
            return Err(SessionError::Closed);
        }
        self.reset().await;
        if self.state == SessionState::Closed {
            return Err(SessionError::Closed);
        }
        Box::pin(self.start(env, plan)).await
    }

    /// The session ended in the middle of a group's replies. A refusal already read still stands (the
    /// message was answered), though the session is closed; otherwise the message gets the error.
    fn ended(&mut self, first: Option<Rejection>, error: SessionError) -> Result<Opened, SessionError> {
        self.state = SessionState::Closed;
        match first {
            Some(rejection) => Ok(Opened::Done(rejection.into())),
            None => Err(error),
        }
    }

    /// Without PIPELINING: each command, then its reply; the first refusal stops and is followed by RSET,
    /// except a copy's, which is noted (the main recipient's `RCPT` went first and was accepted).
    async fn open_lock_step(&mut self, env: &Envelope, plan: &TransactionPlan) -> Result<Opened, SessionError> {
        let (mut recipients, mut rejected_copies) = (Copies::of(env), Vec::new());
        for (stage, command, phase) in commands(env, plan.params, true) {
            let copy = recipients.copy_at(stage);
            let reply = self.conn.command(&command, phase).await;
            let reply = reply.map_err(|source| SessionError::Connection { stage, source })?;
            match judge(stage, &reply) {
                Judgement::Wanted => {}
                Judgement::Rejected if let Some(address) = copy => {
                    rejected_copies.push(RejectedCopy { address: address.to_owned(), reply })
                }
                Judgement::Rejected => {
                    self.after_rejection(false).await;
                    return Ok(Opened::Done(Rejection { stage, reply }.into()));
                }
                Judgement::Closing => return Err(SessionError::ServiceClosing { stage, reply }),
                Judgement::Unexpected => return Err(SessionError::Protocol { stage, reply }),
            }
        }
        Ok(self.ready(plan, rejected_copies))
    }

    /// DATA on its own, after every RCPT of a several-recipient envelope was accepted (pipelining).
    async fn data_step(
        &mut self,
        plan: &TransactionPlan,
        rejected_copies: Vec<RejectedCopy>,
    ) -> Result<Opened, SessionError> {
        let stage = Stage::Data;
        let reply = self.conn.command(&Command::Data, Phase::Data).await;
        let reply = reply.map_err(|source| SessionError::Connection { stage, source })?;
        match judge(stage, &reply) {
            Judgement::Wanted => Ok(self.ready(plan, rejected_copies)),
            Judgement::Rejected => {
                self.after_rejection(false).await;
                Ok(Opened::Done(Rejection { stage, reply }.into()))
            }
            Judgement::Closing => Err(SessionError::ServiceClosing { stage, reply }),
            Judgement::Unexpected => Err(SessionError::Protocol { stage, reply }),
        }
    }

    /// Idle → Data.
    fn ready(&mut self, plan: &TransactionPlan, rejected_copies: Vec<RejectedCopy>) -> Opened {
        self.state = SessionState::Data;
        Opened::Ready(Ready { session: self.id, wire_len: plan.wire_len, rejected_copies })
    }

    // ── Transitions out of Data ─────────────────────────────────────────────────────────────────────────

    /// The session is gone before the current dot's reply; `next` (if any) gets a retryable error.
    fn end(&mut self, error: SessionError, next: Option<Result<TransactionPlan, Refusal>>) -> Committed {
        self.state = SessionState::Closed;
        let next = next.map(|plan| match plan {
            Ok(_) => Err(error.for_next()),
            Err(refusal) => Ok(Opened::Done(Delivery::Refused(refusal))),
        });
        Committed { current: Err(error), next }
    }

    /// The reply to the final dot (RFC 5321 §4.1.1.4). The transaction is over whatever it says, but a
    /// refusal is still followed by RSET: RFC 5321 says the server cleared its buffers, yet Postfix keeps the
    /// sender after its end-of-data restrictions refuse (the next MAIL gets `503 nested MAIL command`).
    /// `rset_queued`: a RSET already went out behind the dot (pipelining), so none is needed.
    async fn end_of_data(
        &mut self,
        rset_queued: bool,
        rejected_copies: Vec<RejectedCopy>,
    ) -> Result<Delivery, SessionError> {
        let result = match self.conn.read_reply(Phase::DataEnd).await {
            Err(source) => Err(SessionError::Uncertain { source }),
            Ok(reply) => match judge(Stage::DataEnd, &reply) {
                Judgement::Wanted => Ok(Delivery::Accepted { reply, rejected_copies }),
                Judgement::Rejected => {
                    self.after_rejection(rset_queued).await;
                    Ok(Delivery::Rejected { stage: Stage::DataEnd, reply })
                }
                Judgement::Closing => Err(SessionError::ServiceClosing { stage: Stage::DataEnd, reply }),
                Judgement::Unexpected => Err(SessionError::Protocol { stage: Stage::DataEnd, reply }),
            },
        };
        if result.is_err() {
            self.state = SessionState::Closed;
        }
        result
    }

    /// Reads the replies of a next transaction queued behind the dot, or runs it now.
    async fn continue_opening(
        &mut self,
        env: &Envelope,
        plan: &TransactionPlan,
        behind_dot: Option<Result<Cleanup, SessionError>>,
    ) -> Result<Opened, SessionError> {
        let result = match behind_dot {
            Some(Ok(cleanup)) => self.read_opening(env, plan, cleanup, true).await,
            Some(Err(refused_command)) => return Err(refused_command),
            None => self.start(env, plan).await,
        };
        if result.is_err() {
            self.state = SessionState::Closed;
        }
        result
    }

    // ── Clean-up and the lock-step exchanges ────────────────────────────────────────────────────────────

    /// RSET after a refusal: pending for the next group when pipelining, at once in lock-step.
    async fn after_rejection(&mut self, rset_queued: bool) {
        if rset_queued {
            return;
        }
        if self.is_pipelining() {
            self.cleanup.rset = true;
        } else {
            self.reset().await;
        }
    }

    /// Sends a pending clean-up on its own (before a lock-step exchange such as a trial).
    async fn settle(&mut self) -> Result<(), SessionError> {
        if self.cleanup == Cleanup::default() {
            return Ok(());
        }
        let queued = self.queue_cleanup();
        self.conn.flush().await.map_err(|source| SessionError::Connection { stage: Stage::Mail, source })?;
        self.read_cleanup(queued, false).await.map(drop)
    }

    /// RSET now (lock-step). If it fails the refusal still stands, but the session is closed.
    async fn reset(&mut self) {
        match self.conn.command(&Command::Rset, Phase::Command).await {
            Ok(reply) if reply.is_positive() => {}
            _ => self.state = SessionState::Closed,
        }
    }

    async fn trial(&mut self, env: &Envelope) -> Result<Trial, SessionError> {
        self.settle().await?;
        let params = MailParams { smtputf8: env.smtputf8() && self.info.capabilities.smtputf8, ..Default::default() };
        let (mut mail, mut rcpt) = (None, Vec::with_capacity(env.to().len()));
        let mut trial = None;
        for (stage, command, phase) in commands(env, params, false) {
            let reply = self.conn.command(&command, phase).await;
            let reply = reply.map_err(|source| SessionError::Connection { stage, source })?;
            match judge(stage, &reply) {
                Judgement::Wanted if stage == Stage::Mail => mail = Some(reply),
                Judgement::Wanted => rcpt.push(reply),
                Judgement::Rejected => {
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
}

/// The connection failed before the final dot's last byte was handed over: not delivered.
fn data_lost(source: ConnectionError) -> SessionError {
    SessionError::Connection { stage: Stage::Data, source }
}

#[path = "window.rs"]
mod window;
pub use window::Windowed;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod pipeline_tests;

#[cfg(test)]
#[path = "pipeline_fault_tests.rs"]
mod pipeline_fault_tests;

#[cfg(test)]
#[path = "pipeline_fallback_tests.rs"]
mod pipeline_fallback_tests;

#[cfg(test)]
#[path = "copies_tests.rs"]
mod copies_tests;

#[cfg(test)]
#[path = "window_tests.rs"]
mod window_tests;

#[cfg(test)]
#[path = "window_fault_tests.rs"]
mod window_fault_tests;
