//! A message a worker has taken, with its journal "committing" record already on its way to disk.
//!
//! The record is appended well before the final dot: by the producer when it queues a fresh message, or
//! here when a retry is taken. So the `fdatasync` (~180 µs here, longer than a loopback round trip) runs
//! while earlier messages are on the wire, and one sync covers many records (group commit); the gate before
//! the dot only checks the record's [`Ticket`]. The price is a bound, documented in the README: after a crash
//! the messages queued or in flight (at most `run::uncertain_bound`) may be uncertain. A message that
//! is then not sent gets a `released` record, so a clean stop leaves nothing uncertain.

use super::clock::now;
use super::journal::{Journal, JournalError, Record, Ticket};
use super::work::Work;

pub struct Pending {
    pub work: Work,
    /// The committing record's ticket, or why it could not be written (then the gate fails: no dot).
    ticket: Option<Result<Ticket, String>>,
}

impl Pending {
    /// Counts the attempt; its committing record is appended here unless the producer already did.
    pub fn take(mut work: Work, journal: Option<&Journal>) -> Pending {
        work.first_attempt.get_or_insert_with(now);
        let ticket = journal.map(|journal| match work.ticket.take() {
            Some(ticket) => Ok(ticket),
            None => journal.append(committing(&work, work.attempts + 1)).map_err(|e| e.to_string()),
        });
        work.attempts += 1;
        Pending { ticket, work }
    }

    /// Resolves once the committing record is durable: the gate before this message's final dot.
    pub fn durable(
        &self,
        journal: Option<&Journal>,
    ) -> impl Future<Output = Result<(), JournalError>> + Send + 'static {
        let wait = match (&self.ticket, journal) {
            (Some(Ok(ticket)), Some(journal)) => Ok(Some(journal.durable(*ticket))),
            (Some(Err(message)), _) => Err(std::io::Error::other(message.clone())),
            _ => Ok(None),
        };
        async move {
            match wait {
                Ok(Some(wait)) => wait.await,
                Ok(None) => Ok(()),
                Err(e) => Err(JournalError::Io { path: "the journal".into(), source: e }),
            }
        }
    }

    /// The message goes back unsent (the run stops before it began): its attempt does not count, and the
    /// journal learns it was not sent.
    pub fn release(mut self, journal: Option<&Journal>) -> Work {
        self.work.attempts -= 1;
        if self.work.attempts == 0 {
            self.work.first_attempt = None;
        }
        self.work.ticket = self.ticket.take().and_then(Result::ok);
        release_untaken(self.work, journal)
    }
}

/// A queued message that no worker took: if its committing record was written ahead, it is released.
pub fn release_untaken(mut work: Work, journal: Option<&Journal>) -> Work {
    if let (Some(_), Some(journal)) = (work.ticket.take(), journal) {
        let _ =
            journal.append(Record::Released { key: work.message.key.clone(), date: work.date.timestamp(), at: now() });
    }
    work
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
