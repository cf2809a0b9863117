//! A transaction's envelope on the wire and the mapping of its replies (RFC 5321 §3.3, RFC 2920 §3.1).
//!
//! Pipelined, the group is `[. ] [RSET] MAIL RCPT… [DATA]`: a clean-up left by an earlier refused
//! transaction, then this one. The replies come back in the same order and are read in full even after a
//! refusal, so the next group starts in step; the first refusal is the transaction's outcome. In lock-step,
//! the first refusal stops the transaction and RSET follows at once.

use tokio::io::{AsyncRead, AsyncWrite};

use super::command::Command;
use super::config::Phase;
use super::envelope::Envelope;
use super::outcome::{Delivery, Opened, Ready, SessionError, Stage};
use super::pipeline::{Judgement, Plan, judge, transaction};
use super::reply::Reply;
use super::session::{Cleanup, Session, State};

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

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Queues the pending clean-up and the transaction's commands; returns the clean-up that was queued.
    /// A refused argument queues nothing (the envelope validated its addresses, so this is a last guard).
    pub(super) fn queue_opening(&mut self, env: &Envelope, plan: &Plan) -> Result<Cleanup, SessionError> {
        let mark = self.conn.queued();
        let cleanup = self.queue_cleanup();
        for (stage, command, _) in transaction(env, plan.params, plan.grouped_data) {
            if let Err(e) = self.conn.queue(&command) {
                self.conn.truncate(mark);
                self.cleanup = cleanup;
                return Err(SessionError::Connection { stage, source: e.into() });
            }
        }
        Ok(cleanup)
    }

    /// Queues the pending lone dot and RSET, if any, and forgets them.
    pub(super) fn queue_cleanup(&mut self) -> Cleanup {
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
    /// the session before the transaction behind them began.
    pub(super) async fn read_cleanup(&mut self, cleanup: Cleanup) -> Result<(), SessionError> {
        let lost = |source| SessionError::Connection { stage: Stage::Mail, source };
        if cleanup.dot {
            let reply = self.conn.read_reply(Phase::DataEnd).await.map_err(lost)?;
            if reply.code() == 421 {
                return Err(SessionError::ServiceClosing { stage: Stage::Mail, reply });
            }
        }
        if cleanup.rset {
            let reply = self.conn.read_reply(Phase::Command).await.map_err(lost)?;
            if !reply.is_positive() {
                return Err(SessionError::ResetRefused { reply });
            }
        }
        Ok(())
    }

    /// Reads the replies to a group queued by [`queue_opening`](Self::queue_opening), every one of them.
    pub(super) async fn read_opening(
        &mut self,
        env: &Envelope,
        plan: &Plan,
        cleanup: Cleanup,
    ) -> Result<Opened, SessionError> {
        self.read_cleanup(cleanup).await?;
        let mut first: Option<Rejection> = None;
        let (mut in_data, mut accepted) = (false, false);
        for (stage, _, phase) in transaction(env, plan.params, plan.grouped_data) {
            let reply = match self.conn.read_reply(phase).await {
                Ok(reply) => reply,
                Err(source) => return self.ended(first, SessionError::Connection { stage, source }),
            };
            match judge(stage, &reply) {
                Judgement::Wanted => (in_data, accepted) = (stage == Stage::Data, accepted || stage == Stage::Rcpt),
                Judgement::Refused if first.is_none() => first = Some(Rejection { stage, reply }),
                Judgement::Refused => {} // e.g. 503 to RCPT after a refused MAIL: the first refusal says why
                Judgement::Closing => return self.ended(first, SessionError::ServiceClosing { stage, reply }),
                Judgement::Unexpected => return self.ended(first, SessionError::Protocol { stage, reply }),
            }
        }
        match first {
            // A recipient was taken although the transaction was refused (a server keeping an earlier
            // transaction's state): a dot would deliver an empty message to it, so only closing is safe.
            Some(rejection) if in_data && accepted => self.ended(Some(rejection), SessionError::Closed),
            Some(rejection) => {
                self.cleanup = Cleanup { dot: in_data, rset: true };
                Ok(Opened::Done(rejection.into()))
            }
            None if plan.grouped_data => Ok(self.ready(plan)),
            None => self.data_step(plan).await,
        }
    }

    /// The session ended in the middle of a group's replies. A refusal already read still stands (the
    /// message was answered), though the session is closed; otherwise the message gets the error.
    fn ended(&mut self, first: Option<Rejection>, error: SessionError) -> Result<Opened, SessionError> {
        self.state = State::Closed;
        match first {
            Some(rejection) => Ok(Opened::Done(rejection.into())),
            None => Err(error),
        }
    }

    /// Without PIPELINING: each command, then its reply; the first refusal stops and is followed by RSET.
    pub(super) async fn open_lock_step(&mut self, env: &Envelope, plan: &Plan) -> Result<Opened, SessionError> {
        for (stage, command, phase) in transaction(env, plan.params, true) {
            let reply = self.conn.command(&command, phase).await;
            let reply = reply.map_err(|source| SessionError::Connection { stage, source })?;
            match judge(stage, &reply) {
                Judgement::Wanted => {}
                Judgement::Refused => {
                    self.after_refusal(false).await;
                    return Ok(Opened::Done(Rejection { stage, reply }.into()));
                }
                Judgement::Closing => return Err(SessionError::ServiceClosing { stage, reply }),
                Judgement::Unexpected => return Err(SessionError::Protocol { stage, reply }),
            }
        }
        Ok(self.ready(plan))
    }

    /// DATA on its own, after every RCPT of a several-recipient envelope was accepted (pipelining).
    async fn data_step(&mut self, plan: &Plan) -> Result<Opened, SessionError> {
        let stage = Stage::Data;
        let reply = self.conn.command(&Command::Data, Phase::Data).await;
        let reply = reply.map_err(|source| SessionError::Connection { stage, source })?;
        match judge(stage, &reply) {
            Judgement::Wanted => Ok(self.ready(plan)),
            Judgement::Refused => {
                self.after_refusal(false).await;
                Ok(Opened::Done(Rejection { stage, reply }.into()))
            }
            Judgement::Closing => Err(SessionError::ServiceClosing { stage, reply }),
            Judgement::Unexpected => Err(SessionError::Protocol { stage, reply }),
        }
    }

    /// RSET after a refusal: pending for the next group when pipelining, at once in lock-step.
    async fn after_refusal(&mut self, rset_queued: bool) {
        if rset_queued {
            return;
        }
        if self.pipelining {
            self.cleanup.rset = true;
        } else {
            self.reset().await;
        }
    }

    fn ready(&mut self, plan: &Plan) -> Opened {
        self.state = State::Data;
        Opened::Ready(Ready { session: self.id, wire_len: plan.wire_len })
    }

    /// The reply to the final dot (RFC 5321 §4.1.1.4). The transaction is over whatever it says, but a
    /// refusal is still followed by RSET: RFC 5321 says the server cleared its buffers, yet Postfix keeps the
    /// sender after its end-of-data restrictions refuse (the next MAIL gets `503 nested MAIL command`).
    /// `rset_queued`: a RSET already went out behind the dot (pipelining), so none is needed.
    pub(super) async fn end_of_data(&mut self, rset_queued: bool) -> Result<Delivery, SessionError> {
        let result = match self.conn.read_reply(Phase::DataEnd).await {
            Err(source) => Err(SessionError::Uncertain { source }),
            Ok(reply) => match judge(Stage::DataEnd, &reply) {
                Judgement::Wanted => Ok(Delivery::Accepted(reply)),
                Judgement::Refused => {
                    self.after_refusal(rset_queued).await;
                    Ok(Delivery::Rejected { stage: Stage::DataEnd, reply })
                }
                Judgement::Closing => Err(SessionError::ServiceClosing { stage: Stage::DataEnd, reply }),
                Judgement::Unexpected => Err(SessionError::Protocol { stage: Stage::DataEnd, reply }),
            },
        };
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }
}
