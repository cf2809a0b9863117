//! Several transactions in flight on one session: CHUNKING (RFC 3030) with PIPELINING (RFC 2920).
//!
//! With DATA every message waits a round trip for its `354` or for its dot's reply before the next one's
//! data may follow, so a session moves at most one message per round trip. `BDAT size LAST` frames the
//! message by its size: no `354`, no dot-stuffing, no final dot to smuggle past (a bare CR or LF still
//! becomes CRLF, as for DATA). So [`queue_chunked`](Session::queue_chunked) puts a whole transaction —
//! `RSET` (from the second on), `MAIL`, `RCPT`, `BDAT size LAST` and the bytes — into the write buffer, and
//! up to the window's worth of them go out before the first reply is read. Replies come back in order
//! (RFC 2920 §3.1) and [`next_windowed`](Session::next_windowed) maps them to their message, oldest first.
//!
//! Only envelopes with one recipient go in a window: with copies the data would leave before the server
//! said whether it takes the main recipient, and a refused main recipient with an accepted copy would mail
//! the copy alone (the DATA path keeps DATA back for those; the caller sends them that way).
//!
//! What a reply, or its absence, means for a message whose bytes went out:
//! - the `BDAT` reply decides: 2xx delivered, 4xx/5xx refused (the first refusal of the transaction, e.g.
//!   at `RCPT`, is the one reported);
//! - a `421` ends the session: that message and every later one is retryable, since a server that sent it
//!   read nothing more (replies are in order);
//! - the connection lost, or a reply that makes no sense: every message whose bytes were handed to the
//!   stream and not answered is *uncertain*; one whose bytes never left is retryable. This is why a window
//!   widens the crash bound: up to `window` messages per connection can be in flight when it breaks;
//! - our write timed out (the peer stopped reading): the replies that came before are still taken, without
//!   waiting for more; from the first one missing on, as for a lost connection;
//! - before a window goes out on a session with no reply due, a connection the server already closed, or a
//!   reply nobody asked for (every later reply would be taken for the wrong message), ends the session:
//!   the window, never written, is retryable;
//! - a `503` to the `RSET` or `MAIL` of a transaction written behind another's chunk (a server refusing
//!   pipelined commands after message data, as Haraka does after a dot) is [`Windowed::Again`]: never
//!   begun, to be sent again; the session drops to [`Pipelining::Envelope`], which turns windows off.

use super::super::command::Command;
use super::super::config::Pipelining;
use super::super::connection::{ConnectionError, WriteError};
use super::super::delivery::{Delivery, SessionError, Stage};
use super::super::phase::Phase;
use super::super::reply::Reply;
use super::super::transaction::{Judgement, Message, TransactionPlan, judge, rejects_pipelining};
use super::{Rejection, Session, SessionState};
use tokio::io::{AsyncRead, AsyncWrite};

/// One transaction written (or queued to be written) and not yet answered.
pub(super) struct InFlight {
    /// A lone dot (an earlier DATA transaction's clean-up) and a RSET went before its MAIL.
    dot: bool,
    rset: bool,
    /// Written while an earlier transaction's replies were still due: a `503` then refuses pipelining.
    behind: bool,
    /// The write buffer's length after its chunk, until the buffer was flushed.
    data_end: usize,
    /// Its bytes were handed to the stream (all of them): no reply means it may have been delivered.
    handed: bool,
}

/// How a session with transactions in flight ended: what each unanswered one is told.
pub(super) enum WindowEnd {
    /// A `421`: the server read nothing after it.
    Closing,
    /// Our write failed because the peer closed or reset the connection: the replies it sent before are
    /// still read (a `421` that explains the close, the outcomes of the messages before it), until a read
    /// fails too.
    WriteFailed,
    /// The connection failed (or the server made no sense): unanswered data may have been delivered.
    Lost(ConnectionError),
    /// Our write timed out (the peer stopped reading): the replies already received are still read, without
    /// waiting; the first one missing ends the session as lost for the messages from there on.
    Stalled(ConnectionError),
    /// A reply came while none was due, before anything in flight was written: the replies are out of step.
    Unsolicited(Reply),
}

/// The outcome of one message sent in a window.
#[derive(Debug)]
pub enum Windowed {
    /// As for any message: a delivery, a refusal, or the error that ended the session.
    Done(Result<Delivery, SessionError>),
    /// Refused because it was pipelined behind another message's data; nothing was begun. Send it again:
    /// this session now sends one message at a time (see [`Session::pipelining_rejected`]).
    Again,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// How many transactions may be in flight at once: the configured window where the server offers
    /// CHUNKING and commands are fully pipelined, else 1 (and then [`open`](Self::open)/[`commit`](Self::commit)).
    pub fn window(&self) -> usize {
        let chunking = self.info.capabilities.chunking && self.pipelining == Pipelining::Full;
        if chunking && self.is_open() { self.window_size } else { 1 }
    }

    /// True when `message` can go in a window on this session (one recipient: see the module docs).
    pub fn fits_window(&self, message: Message<'_>) -> bool {
        self.window() > 1 && message.envelope.to().len() == 1
    }

    /// Transactions written (or queued) and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Queues `message`'s whole transaction; nothing is written until [`flush_window`](Self::flush_window).
    /// `None`: queued, its outcome comes from [`next_windowed`](Self::next_windowed) in turn. `Some`: settled
    /// now, nothing queued (refused here, or the session is already gone).
    ///
    /// Its bytes may reach the server from the flush on: await the journal's gate before calling this.
    pub fn queue_chunked(&mut self, message: Message<'_>) -> Option<Result<Delivery, SessionError>> {
        if self.state != SessionState::Idle || self.window_end.is_some() || !self.fits_window(message) {
            return Some(Err(SessionError::Closed));
        }
        let plan = match TransactionPlan::new(message, &self.info.capabilities, true) {
            Ok(plan) => plan,
            Err(refusal) => return Some(Ok(Delivery::Refused(refusal))),
        };
        let mark = self.conn.queued();
        let cleanup = self.queue_cleanup();
        let size = super::super::data::chunk_len(message.body);
        let env = message.envelope;
        let commands = [
            (Stage::Mail, Command::Mail { from: env.from(), params: plan.params }),
            (Stage::Rcpt, Command::Rcpt { to: &env.to()[0] }),
            (Stage::DataEnd, Command::BdatLast { size }),
        ];
        for (stage, command) in &commands {
            if let Err(e) = self.conn.queue(command) {
                self.conn.truncate(mark);
                self.cleanup = cleanup;
                return Some(Err(SessionError::Connection { stage: *stage, source: e.into() }));
            }
        }
        let data_end = self.conn.queue_chunk(message.body);
        // Whatever this one's replies will be, the next transaction starts clean.
        self.cleanup.rset = true;
        let behind = !self.in_flight.is_empty();
        self.in_flight.push_back(InFlight { dot: cleanup.dot, rset: cleanup.rset, behind, data_end, handed: false });
        None
    }

    /// Writes every queued transaction in one write (in blocks, each under the data-block deadline). A
    /// failure is not returned here: each transaction in flight learns it from `next_windowed`.
    pub async fn flush_window(&mut self) {
        if self.conn.queued() == 0 || self.window_end.is_some() {
            return;
        }
        if self.in_flight.iter().all(|t| !t.handed) && self.ended_while_idle().await {
            return;
        }
        let result = self.conn.flush_data().await;
        let handed = match &result {
            Ok(()) => usize::MAX,
            Err(WriteError { handed, .. }) => *handed,
        };
        for t in self.in_flight.iter_mut().filter(|t| !t.handed) {
            t.handed = t.data_end <= handed;
            t.data_end = 0;
        }
        match result {
            Ok(()) => {}
            // A stalled peer: what it said before it stopped reading is read, nothing is waited for.
            Err(WriteError { source: source @ ConnectionError::Timeout { .. }, .. }) => {
                self.state = SessionState::Closed;
                self.window_end = Some(WindowEnd::Stalled(source));
            }
            Err(WriteError { .. }) => {
                self.state = SessionState::Closed;
                self.window_end = Some(WindowEnd::WriteFailed);
            }
        }
    }

    /// Before a window goes out on a session with no reply due: did the server close it, or say something
    /// nobody asked for? Either ends the session; the window, never written, is retryable.
    ///
    /// With DATA the MAIL's reply would find out. Here the data leaves with the commands: on a session
    /// closed while idle (a timeout, a load balancer) it would be unanswered and so uncertain although the
    /// server never read it; behind an extra reply every later one would be taken for the message before
    /// its own (a refused message read as delivered).
    async fn ended_while_idle(&mut self) -> bool {
        if self.conn.peer_closed() {
            self.lose(ConnectionError::Closed { phase: Phase::Command }, false);
            return true;
        }
        if self.conn.buffered() == 0 {
            return false;
        }
        let reply = match self.conn.read_reply(Phase::Command).await {
            Ok(reply) => reply,
            Err(source) => {
                self.lose(source, false);
                return true;
            }
        };
        self.state = SessionState::Closed;
        let end = if reply.code() == 421 { WindowEnd::Closing } else { WindowEnd::Unsolicited(reply) };
        self.window_end = Some(end);
        true
    }

    /// The outcome of the oldest transaction in flight, its replies read; `None` when none is in flight.
    pub async fn next_windowed(&mut self) -> Option<Windowed> {
        if self.in_flight.back().is_some_and(|t| !t.handed) {
            self.flush_window().await; // never wait for replies to bytes still in our buffer
        }
        let t = self.in_flight.pop_front()?;
        match &self.window_end {
            None | Some(WindowEnd::WriteFailed | WindowEnd::Stalled(_)) => {}
            Some(end) => return Some(Windowed::Done(Err(unanswered(end, t.handed)))),
        }
        let outcome = self.read_windowed(&t).await;
        if self.window_end.is_some() {
            self.state = SessionState::Closed;
        }
        Some(outcome)
    }

    /// Every reply of one transaction (RSET, MAIL, RCPT, BDAT), then what they mean together.
    async fn read_windowed(&mut self, t: &InFlight) -> Windowed {
        let mut first: Option<Rejection> = None;
        let steps = [
            (t.dot.then_some(Stage::Mail), Phase::DataEnd, true),
            (t.rset.then_some(Stage::Mail), Phase::Command, true),
            (Some(Stage::Mail), Phase::Command, false),
            (Some(Stage::Rcpt), Phase::Command, false),
            (Some(Stage::DataEnd), Phase::DataEnd, false),
        ];
        for (stage, phase, is_rset) in steps {
            let Some(stage) = stage else { continue };
            let reply = match self.read_in_window(phase).await {
                Ok(reply) => reply,
                Err(source) => {
                    let lost = self.lose(source, t.handed);
                    // A refusal already read stands: a refused MAIL or RCPT delivers nothing.
                    return Windowed::Done(first.map_or(Err(lost), |r| Ok(r.into())));
                }
            };
            if is_rset {
                // The clean-up says nothing of this message unless it closes the session. A server refusing
                // pipelining refuses the MAIL behind it too, and that refusal decides (see below); one that
                // refused only the RSET and took the rest delivered the message.
                if reply.code() == 421 {
                    return self.closing(stage, reply);
                }
                continue;
            }
            match judge(stage, &reply) {
                Judgement::Wanted if stage == Stage::DataEnd && first.is_none() => {
                    return Windowed::Done(Ok(Delivery::Accepted { reply, rejected_copies: Vec::new() }));
                }
                Judgement::Wanted => {}
                Judgement::Rejected if first.is_none() => first = Some(Rejection { stage, reply }),
                Judgement::Rejected => {} // e.g. 554 to BDAT after a refused RCPT: the first refusal says why
                Judgement::Closing => return self.closing(stage, reply),
                Judgement::Unexpected => {
                    let source = ConnectionError::Closed { phase };
                    self.lose(source, t.handed);
                    return Windowed::Done(Err(SessionError::Protocol { stage: Stage::DataEnd, reply }));
                }
            }
        }
        let rejection = first.expect("a transaction without a 2xx to BDAT was refused somewhere");
        if t.behind && rejection.stage == Stage::Mail && rejects_pipelining(&rejection.reply) {
            self.pipelining = Pipelining::Envelope;
            self.pipelining_rejected.get_or_insert(rejection.reply);
            return Windowed::Again;
        }
        Windowed::Done(Ok(rejection.into()))
    }

    /// The next reply; after a stalled write only one already received (else the stall's timeout).
    async fn read_in_window(&mut self, phase: Phase) -> Result<Reply, ConnectionError> {
        match &self.window_end {
            Some(WindowEnd::Stalled(stall)) => {
                let stall = stall.duplicate();
                self.conn.reply_at_hand(phase)?.ok_or(stall)
            }
            _ => self.conn.read_reply(phase).await,
        }
    }

    /// A `421`: this message is retryable, and so is every later one in flight.
    fn closing(&mut self, stage: Stage, reply: Reply) -> Windowed {
        self.window_end = Some(WindowEnd::Closing);
        Windowed::Done(Err(SessionError::ServiceClosing { stage, reply }))
    }

    /// The connection is gone: the session is closed, and what is still in flight learns why. Returns the
    /// error for the message concerned: uncertain when its bytes were handed over.
    fn lose(&mut self, source: ConnectionError, handed: bool) -> SessionError {
        self.state = SessionState::Closed;
        let end = WindowEnd::Lost(source);
        let error = unanswered(&end, handed);
        if !matches!(self.window_end, Some(WindowEnd::Closing)) {
            self.window_end = Some(end);
        }
        error
    }
}

/// What a transaction still in flight is told when the session ended before its replies.
fn unanswered(end: &WindowEnd, handed: bool) -> SessionError {
    match end {
        WindowEnd::Closing => {
            SessionError::Connection { stage: Stage::Mail, source: ConnectionError::Closed { phase: Phase::Command } }
        }
        WindowEnd::Lost(source) if handed => SessionError::Uncertain { source: source.duplicate() },
        WindowEnd::Lost(source) => SessionError::Connection { stage: Stage::Mail, source: source.duplicate() },
        WindowEnd::Unsolicited(reply) => SessionError::Protocol { stage: Stage::Mail, reply: reply.clone() },
        WindowEnd::WriteFailed | WindowEnd::Stalled(_) => unreachable!("replies are still read after a failed write"),
    }
}
