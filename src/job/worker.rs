//! One worker: owns at most one SMTP session, takes messages from the queue, sends each under the shared
//! throttle, and lets the policy decide what the reply means. A session is reused for up to
//! `max_messages_per_connection` messages (or fewer, once the server showed its own limit), then closed with
//! QUIT and replaced.
//!
//! A worker that cannot open a session while others are open puts its message back and waits (the pool
//! shrinks); the job stops only when no session at all can be opened after [`CONNECT_ATTEMPTS`]. A message
//! that never reached the server's data (a session limit at MAIL FROM, a refused post-dot pipeline, a
//! connection lost before its reply) goes back in line at once and does not count as an attempt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::clock::now;
use super::journal::{Journal, Record, Settled};
use super::pending::Pending;
use super::policy::{self, ConnectVerdict, Disposition, Verdict};
use super::pool::{Pool, PooledSession};
use super::progress::Retry;
use super::queue::WorkQueue;
use super::settlement::{Settlement, Status};
use super::throttle::Throttle;
use super::work::{Event, Lost, Work};
use crate::config::RetrySection;
use crate::smtp::{Delivery, Message, Opened, SessionError};

/// Attempts in a row to open a session, while none is open, before the job stops.
pub const CONNECT_ATTEMPTS: u32 = 5;
/// The longest wait between two attempts to open a session.
const CONNECT_MAX_WAIT: Duration = Duration::from_secs(60);

/// What every worker shares.
pub struct WorkerContext {
    pub queue: WorkQueue<Work>,
    pub throttle: Throttle,
    pub events: mpsc::Sender<Event>,
    pub journal: Option<Journal>,
    pub pool: Arc<Pool>,
    pub retry: RetrySection,
    pub stop: Stop,
    /// Per-connection progress lines are shown (bars on a terminal); otherwise no status is built at all.
    pub show_connections: bool,
    /// Messages whose worker (or the producer) panicked; the run reports them.
    pub lost: Arc<Lost>,
}

impl WorkerContext {
    /// Stops the run: no worker takes new work from now on (Ctrl-C, or a reason that stops the job).
    pub fn halt(&self, reason: Option<String>) {
        self.stop.set(reason);
        self.queue.stop_soon();
    }
}

/// Stop taking new work: Ctrl-C, or an error that would hit every recipient (`reason` says which).
#[derive(Default)]
pub struct Stop {
    flag: AtomicBool,
    notify: Notify,
    reason: Mutex<Option<String>>,
}

impl Stop {
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

enum Lookahead {
    /// Goes out in the same write as the current message's final dot.
    Pipeline(Pending),
    /// Taken, but the throttle says wait: it starts a new transaction after the current one.
    Hold(Pending),
    Nothing,
}

/// Whether a worker has a session to send on.
enum Readiness {
    Ready,
    /// No session now, but others carry on: put the message back and try again after this.
    Later(Duration),
    /// The run stops (interrupted, or the job cannot go on).
    Stop,
}

struct Worker {
    id: usize,
    shared: Arc<WorkerContext>,
    session: Option<PooledSession>,
    sent_on_session: u32,
    /// Messages the current session delivered: the evidence that a later 4xx at MAIL FROM is its limit.
    delivered_on_session: u32,
    /// Failed attempts to open a session since the last success (the backoff grows with them) …
    failures: u32,
    /// … and those of them made while no other session was open (these can stop the job).
    failures_alone: u32,
}

pub async fn run(id: usize, shared: Arc<WorkerContext>) {
    let mut worker = Worker {
        id,
        shared,
        session: None,
        sent_on_session: 0,
        delivered_on_session: 0,
        failures: 0,
        failures_alone: 0,
    };
    let mut held = None;
    loop {
        let pending = match held.take() {
            Some(pending) => pending,
            None => match worker.next().await {
                Some(work) => Pending::take(work),
                None => break,
            },
        };
        held = worker.transmit(pending).await;
    }
    worker.close("done").await;
}

impl Worker {
    /// The next message; while none is at hand the connection's line says it is idle, not the last
    /// recipient it sent to.
    async fn next(&self) -> Option<Work> {
        if let Some(work) = self.shared.queue.try_next() {
            return Some(work);
        }
        self.status(|| match self.session {
            Some(_) => "idle (session open)".into(),
            None => "idle".into(),
        });
        self.shared.queue.next().await
    }

    /// Sends `first` and, while the queue has more at hand, the messages after it on the same session,
    /// each one's body and final dot in one write with the next one's envelope (RFC 2920). Returns a
    /// message taken but not begun (the throttle said wait, or the session must be replaced).
    async fn transmit(&mut self, first: Pending) -> Option<Pending> {
        let shared = self.shared.clone();
        let ready = match shared.stop.is_set() {
            true => Readiness::Stop,
            false => tokio::select! {
                biased;
                _ = shared.stop.wait() => Readiness::Stop,
                ready = self.ready() => ready,
            },
        };
        match ready {
            Readiness::Ready if !shared.stop.is_set() => {}
            Readiness::Later(wait) => {
                self.put_back(first).await;
                shared.pool.wait_for_room(wait, shared.stop.wait()).await;
                return None;
            }
            Readiness::Ready | Readiness::Stop => {
                let work = first.release(shared.journal.as_ref());
                self.settle(work.settlement(Status::NotSent, "not sent: the run stopped")).await;
                return None;
            }
        }
        let mut current = first;
        // Throttle slot and session in hand: from here on the message may reach its final dot.
        current.committing(shared.journal.as_ref());
        self.status(|| sending(&current.work));
        let session = self.session.as_mut().expect("ready means a session");
        let mut opened = session.open(message(&current.work)).await;
        self.sent_on_session += 1;
        loop {
            let ready = match opened {
                Ok(Opened::Ready(ready)) => ready,
                Ok(Opened::Done(delivery)) => return self.settled_before_data(current, Ok(delivery)).await,
                Err(error) => return self.settled_before_data(current, Err(error)).await,
            };
            let (next, held) = match self.lookahead() {
                Lookahead::Pipeline(next) => (Some(next), None),
                Lookahead::Hold(held) => (None, Some(held)),
                Lookahead::Nothing => (None, None),
            };
            let session = self.session.as_mut().expect("a transaction is open");
            let gate = current.durable(shared.journal.as_ref());
            let following = next.as_ref().map(|p| message(&p.work));
            let committed = session.commit(ready, &current.work.message.bytes, gate, following).await;
            let lesson = session.pipelining_rejected().and_then(|reply| shared.pool.learn_past_dot(reply));
            if matches!(committed.current, Ok(Delivery::Accepted(_))) {
                self.delivered_on_session += 1;
            }
            if committed.current.is_err() || !session.is_open() {
                self.session = None;
            }
            if let Some(line) = lesson {
                self.log(line);
            }
            let verdict = policy::classify(&committed.current);
            self.apply(current.work, verdict).await;
            let Some(next) = next else { return held };
            let next_opened = committed.next.expect("commit answers for the next message it was given");
            if matches!(&next_opened, Err(e) if e.reply().is_none()) {
                // The connection went with the current message and the next one never got a reply: it goes
                // back in line at once, its attempt not counted. (A reply, e.g. a 421, is judged as usual.)
                self.put_back(next).await;
                return None;
            }
            self.sent_on_session += 1;
            self.status(|| sending(&next.work));
            (current, opened) = (next, next_opened);
        }
    }

    /// The next message to pipeline behind the current one, if one is at hand right now. It is held back
    /// (sent after the current one, once the throttle allows) when the throttle says wait.
    fn lookahead(&self) -> Lookahead {
        let shared = &self.shared;
        if shared.stop.is_set() || self.sent_on_session >= shared.pool.per_session() {
            return Lookahead::Nothing;
        }
        let Some(work) = shared.queue.try_next() else { return Lookahead::Nothing };
        let mut pending = Pending::take(work);
        match shared.throttle.try_acquire() {
            Ok(()) => {
                pending.committing(shared.journal.as_ref());
                Lookahead::Pipeline(pending)
            }
            Err(_) => Lookahead::Hold(pending),
        }
    }

    /// The transaction ended before any data: refused at MAIL/RCPT/DATA, or the session died. Either way it
    /// was an attempt, and the policy decides as for any other reply, except for a 4xx at MAIL FROM on a
    /// session that already delivered messages: the server's limit per session, not this message's fault.
    /// (A session whose every MAIL was refused proves no limit: a sender refused for now is a deferral.)
    async fn settled_before_data(
        &mut self,
        pending: Pending,
        result: Result<Delivery, SessionError>,
    ) -> Option<Pending> {
        let carried = self.delivered_on_session;
        if let Some(reply) = policy::session_quota_reply(&result).filter(|_| carried > 0) {
            if policy::is_throttling(reply) {
                self.shared.throttle.throttled();
            }
            let lesson =
                policy::speaks_of_a_session_limit(reply).then(|| self.shared.pool.learn_per_session(carried, reply));
            if let Some(line) = lesson.flatten() {
                self.log(line);
            }
            match result.is_ok() {
                true => self.close("reconnecting (the server's limit per session)").await,
                false => self.session = None,
            }
            self.put_back(pending).await;
            return None;
        }
        if result.is_err() || !self.session.as_ref().is_some_and(|s| s.is_open()) {
            self.session = None;
        }
        let verdict = policy::classify(&result);
        self.apply(pending.work, verdict).await;
        None
    }

    /// A message taken but never begun goes back in line at once, its attempt not counted.
    async fn put_back(&self, pending: Pending) {
        let work = pending.release(self.shared.journal.as_ref());
        if self.shared.stop.is_set() {
            self.settle(work.settlement(Status::NotSent, "not sent: the run stopped")).await;
        } else {
            self.shared.queue.retry_at(work, Instant::now());
        }
    }

    /// Makes sure a usable session is there, then waits for the throttle. (The other way round, workers
    /// waiting for room under a session cap would use up the run's pace.)
    async fn ready(&mut self) -> Readiness {
        if self.session.is_some() && self.sent_on_session >= self.shared.pool.per_session() {
            self.close("reconnecting (message limit per connection)").await;
        }
        if self.session.is_none() {
            match self.connect().await {
                Readiness::Ready => {}
                other => return other,
            }
        }
        if self.shared.throttle.try_acquire().is_err() {
            self.status(|| "waiting for the rate limit".into());
            self.shared.throttle.acquire().await;
        }
        Readiness::Ready
    }

    /// Opens a session, backing off on transient failures. While other sessions are open (or being opened)
    /// a failure only shrinks the pool, and teaches it the server's cap; with none, [`CONNECT_ATTEMPTS`]
    /// failures in a row, with no session opened anywhere meanwhile, stop the job, as does any failure the
    /// policy calls fatal.
    async fn connect(&mut self) -> Readiness {
        let pool = self.shared.pool.clone();
        let mut streak_since = pool.opened_so_far();
        loop {
            if pool.at_cap() {
                self.status(|| "waiting: the server allows no more sessions".into());
                return Readiness::Later(CONNECT_MAX_WAIT);
            }
            self.status(|| "connecting".into());
            let error = match pool.open().await {
                Ok(session) => {
                    self.session = Some(session);
                    (self.sent_on_session, self.delivered_on_session, self.failures, self.failures_alone) =
                        (0, 0, 0, 0);
                    self.status(|| "connected".into());
                    return Readiness::Ready;
                }
                Err(error) => error,
            };
            if policy::connect_failure(&error, pool.ever_connected()) == ConnectVerdict::Abort {
                self.shared.halt(Some(error.to_string()));
                return Readiness::Stop;
            }
            let others = pool.others_alive();
            self.failures += 1;
            if others > 0 {
                self.failures_alone = 0;
                let lesson = policy::rejects_more_sessions(&error).then(|| pool.learn_session_cap(others, &error));
                if let Some(line) = lesson.flatten() {
                    self.log(line);
                }
                let wait = policy::backoff(self.failures, Duration::from_secs(1), CONNECT_MAX_WAIT);
                self.status(|| format!("waiting {wait:.0?} to reconnect ({others} other sessions open)"));
                return Readiness::Later(wait);
            }
            if pool.opened_so_far() != streak_since {
                // Another worker opened a session since this streak began: the server is there.
                (streak_since, self.failures_alone) = (pool.opened_so_far(), 0);
            }
            self.failures_alone += 1;
            if self.failures_alone >= CONNECT_ATTEMPTS {
                self.shared.halt(Some(error.to_string()));
                return Readiness::Stop;
            }
            let wait = policy::backoff(self.failures_alone, Duration::from_secs(1), CONNECT_MAX_WAIT);
            self.log(format!("connection {}: {error}; trying again in {:.0?}", self.id + 1, wait));
            self.status(|| format!("waiting {wait:.0?} to reconnect"));
            tokio::time::sleep(wait).await;
        }
    }

    async fn apply(&mut self, mut work: Work, verdict: Verdict) {
        #[cfg(debug_assertions)]
        test_panic(work.message.row);
        let shared = self.shared.clone();
        match verdict.disposition.clone() {
            Disposition::Delivered => {
                shared.throttle.accepted();
                self.finish(work, Status::Delivered, &verdict).await;
            }
            Disposition::Failed => self.finish(work, Status::Failed, &verdict).await,
            Disposition::Uncertain => {
                // No journal record: the committing record without an outcome *is* "uncertain".
                self.settle(settlement(&work, Status::Uncertain, &verdict)).await;
            }
            Disposition::Abort => {
                // An abort verdict means this message did not go out (refused sender, failed journal).
                self.journal(Record::Released {
                    key: work.message.key.clone(),
                    date: work.date.timestamp(),
                    at: now(),
                });
                shared.halt(Some(verdict.text.clone()));
                self.settle(settlement(&work, Status::NotSent, &verdict)).await;
            }
            Disposition::Retry { after, throttled, .. } => {
                if throttled {
                    shared.throttle.throttled();
                }
                let wait =
                    after.unwrap_or_else(|| policy::backoff(work.attempts, shared.retry.initial(), shared.retry.max()));
                // Out of attempts, stopping, or the server asks for longer than `max_delay`: the next run
                // retries it (a cron run must not sit idle for hours holding the job's lock).
                if work.attempts >= shared.retry.attempts() || shared.stop.is_set() || wait > shared.retry.max() {
                    return self.finish(work, Status::Deferred, &verdict).await;
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
                work.last = Some(settlement(&work, Status::Deferred, &verdict));
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
        self.settle(settlement(&work, status, verdict)).await;
    }

    /// The message is settled for this run: off the queue, to the recorder (waiting for room, never dropped).
    async fn settle(&self, settlement: Settlement) {
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

    async fn close(&mut self, why: &str) {
        if let Some(session) = self.session.take() {
            self.status(|| format!("QUIT ({why})"));
            session.quit().await;
        }
        self.status(|| why.to_owned());
    }

    /// A connection's state for its progress line; built only when there are bars to show it.
    fn status(&self, state: impl FnOnce() -> String) {
        if self.shared.show_connections {
            let _ = self.shared.events.try_send(Event::Connection { worker: self.id, state: state() });
        }
    }

    fn log(&self, line: String) {
        let _ = self.shared.events.try_send(Event::Log(line));
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

fn settlement(work: &Work, status: Status, verdict: &Verdict) -> Settlement {
    Settlement {
        code: verdict.code,
        enhanced: verdict.enhanced.clone(),
        last_attempt: Some(now()),
        ..work.settlement(status, verdict.text.clone())
    }
}

/// A connection's line while a message is on its way.
fn sending(work: &Work) -> String {
    format!("→ row {} {}", work.message.row, work.email())
}

fn message(work: &Work) -> Message<'_> {
    Message { envelope: &work.envelope, body: &work.message.bytes }
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
