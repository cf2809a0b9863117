//! One worker: owns at most one SMTP session, takes messages from the queue, sends each under the shared
//! throttle, and lets the policy decide what the reply means. A session is reused for up to
//! `max_messages_per_connection` messages (or fewer, once the server showed its own limit), then closed with
//! QUIT and replaced.
//!
//! A worker that cannot open a session while others are open puts its message back and waits (the pool
//! shrinks); the job stops only when no session at all can be opened after [`CONNECT_ATTEMPTS`]. A message
//! that never reached the server's data (a session limit at MAIL FROM, a refused post-dot pipeline, a
//! connection lost before its reply) goes back in line at once and does not count as an attempt.
//!
//! A worker's turn, one file per step: [`connect`] (a session and a throttle slot) ─► [`transmit`] (open,
//! commit, pipelining the next message) ─► [`settle`] (the policy's verdict: journal and recorder, or retry).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::journal::Journal;
use super::pending::Pending;
use super::pool::{Pool, PooledSession};
use super::queue::WorkQueue;
use super::settlement::Status;
use super::throttle::Throttle;
use super::work::{Event, Lost, Work};
use crate::config::RetrySection;
use crate::smtp::Message;

mod connect;
mod settle;
mod transmit;
mod window;

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

    /// A message taken but never begun goes back in line at once, its attempt not counted.
    async fn put_back(&self, pending: Pending) {
        let work = pending.release(self.shared.journal.as_ref());
        if self.shared.stop.is_set() {
            self.settle(work.settlement(Status::NotSent, "not sent: the run stopped")).await;
        } else {
            self.shared.queue.retry_at(work, Instant::now());
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

/// A connection's line while a message is on its way.
fn sending(work: &Work) -> String {
    format!("→ row {} {}", work.message.row, work.email())
}

fn message(work: &Work) -> Message<'_> {
    Message { envelope: &work.envelope, body: &work.message.bytes }
}
