//! A message a worker has taken, with its journal "committing" record already on its way to disk.
//!
//! The record is started the moment the message is taken, one message ahead of its final dot, so the
//! `fdatasync` (~165 µs here, longer than a loopback round trip) overlaps the previous message's round trip
//! instead of stalling the pipeline, and one sync covers the records of every worker (group commit). The
//! price is a bound, documented in the README: after a crash at most two messages per connection (the one in
//! flight and the one taken next) are uncertain. A taken message that is then not sent gets a `released`
//! record, so a clean stop leaves nothing uncertain.

use tokio::task::JoinHandle;

use super::clock::now;
use super::journal::{Journal, JournalError, Record};
use super::work::Work;

pub struct Pending {
    pub work: Work,
    commit: Option<JoinHandle<Result<(), JournalError>>>,
}

impl Pending {
    /// Counts the attempt and starts making its committing record durable.
    pub fn take(mut work: Work, journal: Option<&Journal>) -> Pending {
        work.attempts += 1;
        work.first_attempt.get_or_insert_with(now);
        let commit = journal.map(|j| {
            let (journal, record) = (j.clone(), committing(&work));
            tokio::spawn(async move { journal.commit(record).await })
        });
        Pending { work, commit }
    }

    /// Resolves once the committing record is durable: the gate before this message's final dot.
    pub fn durable(&mut self) -> impl Future<Output = Result<(), JournalError>> + 'static {
        let commit = self.commit.take();
        async move {
            match commit {
                Some(handle) => handle.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
                None => Ok(()),
            }
        }
    }

    /// The message goes back unsent (the session died before its data, or the run stops): its attempt does
    /// not count, and the journal learns it was not sent.
    pub fn release(mut self, journal: Option<&Journal>) -> Work {
        self.work.attempts -= 1;
        if let Some(journal) = journal {
            let w = &self.work;
            let _ = journal.append(Record::Released { key: w.message.key.clone(), date: w.date.timestamp(), at: now() });
        }
        self.work
    }
}

fn committing(work: &Work) -> Record {
    Record::Committing {
        key: work.message.key.clone(),
        row: work.message.row,
        email: work.email().to_owned(),
        message_id: work.message.message_id.clone(),
        date: work.date.timestamp(),
        attempt: work.attempts,
        at: now(),
    }
}
