//! Acting on the policy's verdict: settle the message for this run (journal, recorder) or put it back in
//! line for a retry.

use std::time::Duration;

use chrono::TimeDelta;
use tokio::time::Instant;

use super::Worker;
use crate::job::clock::now;
use crate::job::journal::{Record, Settled};
use crate::job::policy::{self, Disposition, Verdict};
use crate::job::progress::Retry;
use crate::job::settlement::{Settlement, Status};
use crate::job::work::{Event, Work};

impl Worker {
    /// Acts on the policy's verdict for a message that was attempted.
    pub(super) async fn apply(&mut self, work: Work, verdict: Verdict) {
        #[cfg(debug_assertions)]
        test_panic(work.message.row);
        let shared = self.shared.clone();
        match verdict.disposition.clone() {
            Disposition::Delivered => {
                shared.throttle.accepted();
                self.finish(work, Status::Delivered, verdict).await;
            }
            Disposition::Failed => self.finish(work, Status::Failed, verdict).await,
            Disposition::Uncertain => {
                // No journal record: the committing record without an outcome *is* "uncertain".
                self.settle(settlement(&work, Status::Uncertain, verdict)).await;
            }
            Disposition::Abort => {
                // An abort verdict means this message did not go out (refused sender, failed journal).
                self.journal(Record::Released {
                    key: work.message.key.clone(),
                    date: work.date.timestamp(),
                    at: now(),
                });
                shared.halt(Some(verdict.text.clone()));
                self.settle(settlement(&work, Status::NotSent, verdict)).await;
            }
            Disposition::Retry { after, throttled, .. } => self.retry(work, verdict, after, throttled).await,
        }
    }

    /// A retry later in this run, unless attempts or time ran out (then the next run retries it).
    async fn retry(&mut self, mut work: Work, verdict: Verdict, after: Option<Duration>, throttled: bool) {
        let shared = self.shared.clone();
        if throttled {
            shared.throttle.throttled();
        }
        let wait = after.unwrap_or_else(|| policy::backoff(work.attempts, shared.retry.initial(), shared.retry.max()));
        // Out of attempts, stopping, or the server asks for longer than `max_delay`: the next run
        // retries it (a cron run must not sit idle for hours holding the job's lock).
        if work.attempts >= shared.retry.attempts() || shared.stop.is_set() || wait > shared.retry.max() {
            return self.finish(work, Status::Deferred, verdict).await;
        }
        self.journal(outcome_record(&work, Settled::Deferred, &verdict));
        let due = now() + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
        let retry = Retry {
            row: work.message.row,
            email: work.email().to_owned(),
            attempt: work.attempts + 1,
            attempts: shared.retry.attempts(),
            due,
            reason: verdict.text.clone(),
        };
        let _ = shared.events.send(Event::Retrying(retry)).await;
        work.last = Some(settlement(&work, Status::Deferred, verdict));
        work.first_attempt.get_or_insert_with(now);
        shared.queue.retry_at(work, Instant::now() + wait);
    }

    /// Settles the message for this run and journals the outcome.
    async fn finish(&self, work: Work, status: Status, verdict: Verdict) {
        let settled = match status {
            Status::Delivered => Settled::Delivered,
            Status::Failed => Settled::Failed,
            _ => Settled::Deferred,
        };
        self.journal(outcome_record(&work, settled, &verdict));
        self.settle(settlement(&work, status, verdict)).await;
    }

    /// The message is settled for this run: off the queue, to the recorder (waiting for room, never dropped).
    pub(super) async fn settle(&self, settlement: Settlement) {
        self.shared.queue.finished();
        let _ = self.shared.events.send(Event::Settled { settlement, carried: false }).await;
    }

    fn journal(&self, record: Record) {
        if let Some(journal) = &self.shared.journal
            && let Err(e) = journal.append(record)
        {
            self.shared.halt(Some(e.to_string()));
        }
    }
}

fn outcome_record(work: &Work, status: Settled, verdict: &Verdict) -> Record {
    Record::Outcome {
        key: work.message.key.clone(),
        row: work.message.row,
        email: work.email().to_owned(),
        status,
        code: verdict.code,
        enhanced: verdict.enhanced.clone(),
        reply: verdict.text.clone(),
        attempt: work.attempts,
        date: work.date.timestamp(),
        at: now(),
        copies: verdict.copies.clone(),
    }
}

/// The verdict's texts move into the settlement (the journal's record took copies first).
fn settlement(work: &Work, status: Status, verdict: Verdict) -> Settlement {
    Settlement {
        code: verdict.code,
        enhanced: verdict.enhanced,
        last_attempt: Some(now()),
        copies: verdict.copies,
        ..work.settlement(status, verdict.text)
    }
}

/// Tests only (debug builds): `MAILSHOT_TEST_PANIC_ROW=N` makes the worker that is about to settle CSV row `N`
/// panic, its committing record written and its outcome not, as a bug there would; the tests show that the
/// run still ends, with exit 70, a complete report and a run-end record. Release builds have no such hook.
#[cfg(debug_assertions)]
fn test_panic(row: u64) {
    static ROW: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let wanted = ROW.get_or_init(|| std::env::var("MAILSHOT_TEST_PANIC_ROW").ok()?.parse().ok());
    if *wanted == Some(row) {
        panic!("MAILSHOT_TEST_PANIC_ROW: a worker panics at row {row}");
    }
}
