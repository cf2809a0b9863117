//! One worker: owns at most one SMTP session, takes messages from the queue, sends each under the shared
//! throttle, and lets the policy decide what the reply means. A session is reused for up to
//! `max_messages_per_connection` messages, then closed with QUIT and replaced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::clock::now;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::journal::{Journal, Record, Settled};
use super::outcome::{Outcome, Status};
use super::policy::{self, ConnectVerdict, Disposition, Verdict};
use super::queue::WorkQueue;
use super::throttle::Throttle;
use super::work::{Event, Work};
use crate::config::RetrySection;
use crate::smtp::{self, TcpSession};

/// Attempts to connect before a worker gives up (once the server was reachable earlier in the run).
const CONNECT_ATTEMPTS: u32 = 5;

/// What every worker shares.
pub struct Shared {
    pub queue: WorkQueue<Work>,
    pub throttle: Throttle,
    pub events: mpsc::Sender<Event>,
    pub journal: Option<Journal>,
    pub client: smtp::ClientConfig,
    pub max_per_connection: u32,
    pub retry: RetrySection,
    pub stop: Stop,
    pub ever_connected: AtomicBool,
}

/// Stop taking new work: Ctrl-C, or an error that would hit every recipient (`reason` says which).
#[derive(Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    notify: Notify,
    reason: Mutex<Option<String>>,
}

impl Stop {
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The first abort reason wins; `None` is an interruption (Ctrl-C).
    pub fn set(&self, reason: Option<String>) {
        if let Some(reason) = reason {
            self.reason.lock().expect("stop lock").get_or_insert(reason);
        }
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn abort_reason(&self) -> Option<String> {
        self.reason.lock().expect("stop lock").clone()
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        if !self.is_set() {
            notified.await;
        }
    }
}

struct Worker {
    id: usize,
    shared: Arc<Shared>,
    session: Option<TcpSession>,
    sent_on_session: u32,
}

pub async fn run(id: usize, shared: Arc<Shared>) {
    let mut worker = Worker { id, shared, session: None, sent_on_session: 0 };
    while let Some(work) = worker.shared.queue.next().await {
        worker.handle(work).await;
    }
    worker.close("done").await;
}

impl Worker {
    async fn handle(&mut self, mut work: Work) {
        let shared = self.shared.clone();
        let ready = tokio::select! {
            ready = self.ready() => ready,
            _ = shared.stop.wait() => false,
        };
        if !ready {
            return self.settle(work.outcome(Status::Skipped, "not sent: the run stopped")).await;
        }
        self.status(format!("→ {}", work.email()));
        work.attempts += 1;
        work.first_attempt.get_or_insert_with(now);
        let session = self.session.as_mut().expect("ready means a session");
        let result = match &shared.journal {
            Some(journal) => {
                let commit = journal.commit(committing(&work));
                session.send_gated(&work.envelope, &work.message.bytes, commit).await
            }
            None => session.send(&work.envelope, &work.message.bytes).await,
        };
        self.sent_on_session += 1;
        if result.is_err() || !session.is_open() {
            self.session = None;
        }
        let verdict = policy::classify(&result);
        self.apply(work, verdict).await;
    }

    /// Waits for the throttle and makes sure a usable session is there.
    async fn ready(&mut self) -> bool {
        self.shared.throttle.acquire().await;
        if self.session.is_some() && self.sent_on_session >= self.shared.max_per_connection {
            self.close("reconnecting (message limit per connection)").await;
        }
        if self.session.is_none() {
            self.session = self.connect().await;
            self.sent_on_session = 0;
        }
        self.session.is_some()
    }

    async fn connect(&self) -> Option<TcpSession> {
        let shared = &self.shared;
        for attempt in 1..=CONNECT_ATTEMPTS {
            self.status("connecting".into());
            let error = match smtp::connect(&shared.client).await {
                Ok(session) => {
                    shared.ever_connected.store(true, Ordering::SeqCst);
                    self.status("connected".into());
                    return Some(session);
                }
                Err(error) => error,
            };
            let ever = shared.ever_connected.load(Ordering::SeqCst);
            if policy::connect_failure(&error, ever) == ConnectVerdict::Abort || attempt == CONNECT_ATTEMPTS {
                shared.stop.set(Some(error.to_string()));
                return None;
            }
            let wait = policy::backoff(attempt, Duration::from_secs(1), Duration::from_secs(30));
            self.log(format!("connection {}: {error}; trying again in {:.0?}", self.id + 1, wait));
            self.status(format!("waiting {wait:.0?} to reconnect"));
            tokio::time::sleep(wait).await;
        }
        None
    }

    async fn apply(&mut self, mut work: Work, verdict: Verdict) {
        let shared = self.shared.clone();
        match verdict.disposition.clone() {
            Disposition::Delivered => {
                shared.throttle.accepted();
                self.finish(work, Status::Delivered, &verdict).await;
            }
            Disposition::Failed => self.finish(work, Status::Failed, &verdict).await,
            Disposition::Uncertain => {
                // No journal record: the committing record without an outcome *is* "uncertain".
                self.settle(outcome(&work, Status::Uncertain, &verdict)).await;
            }
            Disposition::Abort => {
                shared.stop.set(Some(verdict.text.clone()));
                self.settle(outcome(&work, Status::Skipped, &verdict)).await;
            }
            Disposition::Retry { after, throttled, .. } => {
                if throttled {
                    shared.throttle.throttled();
                }
                if work.attempts >= shared.retry.attempts() || shared.stop.is_set() {
                    return self.finish(work, Status::Deferred, &verdict).await;
                }
                self.journal(outcome_record(&work, Settled::Deferred, &verdict));
                let wait =
                    after.unwrap_or_else(|| policy::backoff(work.attempts, shared.retry.initial(), shared.retry.max()));
                self.log(format!(
                    "row {} {} deferred ({}), retrying in {wait:.0?}",
                    work.message.row,
                    work.email(),
                    verdict.text
                ));
                work.first_attempt.get_or_insert_with(now);
                shared.queue.retry_at(work, Instant::now() + wait);
            }
        }
    }

    /// Settles the message for this run and journals the outcome.
    async fn finish(&self, work: Work, status: Status, verdict: &Verdict) {
        let settled = match status {
            Status::Delivered => Settled::Delivered,
            Status::Failed => Settled::Failed,
            _ => Settled::Deferred,
        };
        self.journal(outcome_record(&work, settled, verdict));
        self.settle(outcome(&work, status, verdict)).await;
    }

    /// The message is settled for this run: off the queue, to the recorder (waiting for room, never dropped).
    async fn settle(&self, outcome: Outcome) {
        self.shared.queue.finished();
        let _ = self.shared.events.send(Event::Settled { outcome, carried: false }).await;
    }

    fn journal(&self, record: Record) {
        if let Some(journal) = &self.shared.journal
            && let Err(e) = journal.append(record)
        {
            self.shared.stop.set(Some(e.to_string()));
        }
    }

    async fn close(&mut self, why: &str) {
        if let Some(session) = self.session.take() {
            self.status(format!("QUIT ({why})"));
            let _ = session.quit().await;
        }
        self.status(why.to_owned());
    }

    fn status(&self, state: String) {
        let _ = self.shared.events.try_send(Event::Connection { worker: self.id, state });
    }

    fn log(&self, line: String) {
        let _ = self.shared.events.try_send(Event::Log(line));
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
    }
}

fn outcome(work: &Work, status: Status, verdict: &Verdict) -> Outcome {
    Outcome {
        code: verdict.code,
        enhanced: verdict.enhanced.clone(),
        last_attempt: Some(now()),
        ..work.outcome(status, verdict.text.clone())
    }
}
