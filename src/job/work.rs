//! What travels between the producer, the workers and the recorder.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::clock::now;

use super::progress::{Planned, Retry};
use super::settlement::{Settlement, Status};
use crate::message::OutgoingMessage;
use crate::smtp;

/// One message on its way: rendered once, retried as the same bytes.
#[derive(Debug)]
pub struct Work {
    pub message: OutgoingMessage,
    pub envelope: smtp::Envelope,
    /// The Date the message was rendered with (kept in the journal so a later retry is byte-identical).
    pub date: DateTime<Utc>,
    pub attempts: u32,
    pub first_attempt: Option<DateTime<Utc>>,
    /// How the last attempt ended, while a retry waits: what the report says if the retry never comes.
    pub last: Option<Settlement>,
    /// This attempt's committing record is in the journal (see `pending`): its final dot may go out.
    pub committing: bool,
    /// Where this message is reported if the thread holding it panics (see the `Drop` below).
    pub lost: Arc<Lost>,
    /// This message's bytes, counted against `[limits] queue_bytes` until it is dropped.
    pub charge: Option<super::queue_bytes::Charge>,
}

/// Messages whose holder panicked (a bug in a worker or the producer), for the run to report.
///
/// A panic unwinds through the task that held the message and drops it there (the task's locals, those
/// kept across an `.await` included, are dropped while the thread is still panicking), so `Work`'s `Drop`
/// can leave its outcome here: *uncertain* when its committing record is in the journal (its dot may have
/// gone out; the journal, with no outcome after that record, says the same on the next run), else
/// *skipped* (no record: the next run sends it). Without this the message would vanish from the report,
/// and the queue, still counting it in flight, would keep the other workers waiting for ever.
#[derive(Debug, Default)]
pub struct Lost(Mutex<Vec<Settlement>>);

impl Lost {
    /// Everything lost so far.
    pub fn take(&self) -> Vec<Settlement> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        // Nothing here may panic: a second panic while unwinding aborts the process.
        let settlement = match self.committing {
            true => self.settlement(Status::Uncertain, "internal error while it was being sent: maybe delivered"),
            false => self.settlement(Status::NotSent, "not sent: the run stopped (internal error)"),
        };
        self.lost.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(settlement);
    }
}

impl Work {
    pub fn email(&self) -> &str {
        self.message.envelope.to.first().map_or("", String::as_str)
    }

    /// A settlement for this message with no server reply behind it.
    pub fn settlement(&self, status: Status, reply: impl Into<String>) -> Settlement {
        Settlement {
            row: self.message.row,
            email: self.email().to_owned(),
            status,
            code: None,
            enhanced: None,
            reply: reply.into(),
            attempts: self.attempts,
            message_id: self.message.message_id.clone(),
            first_attempt: self.first_attempt,
            last_attempt: self.first_attempt.map(|_| now()),
            copies: String::new(),
        }
    }
}

/// What the recorder hears about.
#[derive(Debug)]
pub enum Event {
    /// A worker's connection changed state (for its progress line).
    Connection { worker: usize, state: String },
    /// A recipient is settled for this run. `carried`: settled in an earlier run, nothing done now.
    Settled { settlement: Settlement, carried: bool },
    /// The producer's count of what this run will do, sent before anything else it sends.
    Planned(Planned),
    /// A message was refused for now and goes back in line until its retry is due.
    Retrying(Retry),
    /// A line for the person (through the one terminal owner).
    Log(String),
}
