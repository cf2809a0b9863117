//! A message a worker has taken, and its journal "committing" record.
//!
//! The record is appended when the message is about to go out: after the worker got its throttle slot and a
//! session, or — for the message pipelined behind another's final dot — when it is taken for that. A sync is
//! requested at once (on the runtime, at the end of its current turn, one request for every connection
//! served in it), so the `fdatasync` (group commit across connections) runs while the previous message
//! is on the wire; the gate before this message's final dot only checks the record's [`Ticket`].
//!
//! **The uncertain bound.** After a crash, a recipient is uncertain when its committing record is durable and
//! its outcome is not. A worker holds at most two messages with committing records and no outcome: the one
//! whose dot is on the wire and the one pipelined behind it; it appends the outcome of message *n* before
//! the committing record of *n + 2*, and the journal is written in order, so whatever the crash keeps of
//! *n + 2*'s record it keeps of *n*'s outcome. With a BDAT window of *w* (`[smtp] window`), a worker holds
//! *w* messages in flight and appends the oldest one's outcome before taking another; one more may be taken
//! (and recorded) for after the window, so *w + 1*. Messages rendered and queued, or waiting for the throttle,
//! have no record and come back as pending. Hence at most `(window + 1) × connections` uncertain per crash
//! ([`uncertain_bound`]), whatever the queue depth or the rate; a clean stop leaves none (a message taken
//! but not sent gets a `released` record).

use super::clock::now;
use super::journal::{Journal, JournalError, Record, Ticket};
use super::work::Work;

/// The most recipients one crash can leave uncertain with `connections` workers, each with up to `window`
/// BDAT transactions in flight (see the module docs; the README states it, the crash tests assert it per
/// kill). A window of 1 is DATA's current message and the one pipelined behind it; a wider window holds
/// `window` messages in flight and, while they drain, one taken for after them.
pub fn uncertain_bound(connections: usize, window: usize) -> usize {
    (window.max(1) + 1) * connections
}

pub struct Pending {
    pub work: Work,
    /// The committing record's ticket, or why it could not be written (then the gate fails: no dot).
    ticket: Option<Result<Ticket, String>>,
}

impl Pending {
    /// Counts the attempt. The committing record comes with [`Pending::committing`], once the message is
    /// really about to go out.
    pub fn take(mut work: Work) -> Pending {
        work.first_attempt.get_or_insert_with(now);
        work.attempts += 1;
        work.committing = false;
        Pending { ticket: None, work }
    }

    /// Appends the committing record (once) and asks the journal to sync it soon (`Journal::sync_soon`), so
    /// that the sync overlaps whatever comes before this message's final dot.
    pub fn committing(&mut self, journal: Option<&Journal>) {
        let Some(journal) = journal.filter(|_| self.ticket.is_none()) else { return };
        let record = committing(&self.work, self.work.attempts);
        let ticket = journal.append(record).map_err(|e| e.to_string());
        if let Ok(ticket) = ticket {
            journal.sync_soon(ticket);
            self.work.committing = true;
        }
        self.ticket = Some(ticket);
    }

    /// Resolves once the committing record is durable: the gate before this message's final dot. With a
    /// journal and no committing record it fails: no dot goes out unrecorded.
    pub fn durable(
        &self,
        journal: Option<&Journal>,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + 'static {
        let wait = match (&self.ticket, journal) {
            (Some(Ok(ticket)), Some(journal)) => Ok(Some(journal.durable(*ticket))),
            (Some(Err(message)), _) => Err(message.clone()),
            (None, Some(_)) => Err("no committing record was written before the final dot".to_owned()),
            (_, None) => Ok(None),
        };
        async move {
            match wait {
                Ok(Some(wait)) => wait.await,
                Ok(None) => Ok(()),
                Err(e) => Err(JournalError::Io { path: "the journal".into(), source: std::io::Error::other(e) }),
            }
        }
    }

    /// The message goes back unsent (the run stops before it began, or it must wait for another session):
    /// its attempt does not count, and if it had a committing record the journal learns it was not sent.
    pub fn release(mut self, journal: Option<&Journal>) -> Work {
        self.work.attempts -= 1;
        if self.work.attempts == 0 {
            self.work.first_attempt = None;
        }
        self.work.committing = false;
        if let (Some(Ok(_)), Some(journal)) = (self.ticket.take(), journal) {
            let work = &self.work;
            let _ = journal.append(Record::Released {
                key: work.message.key.clone(),
                date: work.date.timestamp(),
                at: now(),
            });
        }
        self.work
    }
}

/// The record written durably before a message's final dot; `attempt` counts this one.
pub fn committing(work: &Work, attempt: u32) -> Record {
    Record::Committing {
        key: work.message.key.clone(),
        row: work.message.row,
        email: work.email().to_owned(),
        message_id: work.message.message_id.clone(),
        date: work.date.timestamp(),
        attempt,
        at: now(),
    }
}
