//! Streams the CSV on its own thread, decides per recipient what this run does (send, carry an earlier
//! outcome, skip), renders the ones to send and hands them to the workers through a bounded channel, so
//! memory stays flat and the network tasks never wait on a render.
//!
//! When the channel is full the producer waits for [`refill`] free places, not one: each place freed would
//! otherwise wake its thread (a futex call and a context switch per message sent).
//!
//! The channel bounds the queue in messages (`[limits] queue_messages`); [`QueueBytes`](super::queue_bytes::QueueBytes) bounds in bytes all
//! the rendered messages the run holds — queued, being sent, or waiting for a retry — so that large
//! messages cannot add up to gigabytes (`[limits] queue_bytes`). Each message carries its [`Charge`](super::queue_bytes::Charge) and
//! gives the bytes back when it is dropped, whichever way its run ends.

use std::sync::Arc;
use std::thread::JoinHandle;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::journal::{JournalState, Replayed, Settled};
use super::progress::Planned;
use super::queue_bytes::QueueBytes;
use super::settlement::{Settlement, Status};
use super::shard::Shard;
use super::spool::Spool;
use super::work::{Event, Lost, Work};
use super::worker::WorkerContext;
use crate::jobdef::Job;
use crate::recipients::{Entry, Recipient, RowError};
use crate::smtp;

/// What the producer is asked to do: which job, what the journal already settled, how many to send.
pub struct ProducerPlan {
    pub job: Arc<Job>,
    pub journal: Option<Arc<Replayed>>,
    pub resend_uncertain: bool,
    /// At most this many messages go out in this run (`--limit`, the daily budget).
    pub limit: Option<u64>,
    /// The limit is the daily budget (the rest waits for tomorrow), not `--limit`.
    pub by_budget: bool,
    pub now: DateTime<Utc>,
    /// Only this shard's recipients are this run's; the others are passed over without a word (another
    /// process settles them). Duplicates are still found over the whole CSV.
    pub shard: Option<Shard>,
    /// The messages the check already built (see `spool`): taken instead of rendering them again.
    pub spool: Option<Spool>,
    /// What the run does, as the check counted it (see `run::start`); `None`: [`count`] reads the CSV.
    pub planned: Option<Planned>,
}

/// How the production ended.
#[derive(Debug, Default, Clone, Copy)]
pub struct Produced {
    pub sent: u64,
    /// The limit left recipients pending.
    pub limited: bool,
    pub by_budget: bool,
}

/// The producer's stack: Tera renders recursively, and templates are only bounded to what fits in the main
/// thread's 8 MiB (`check` renders there), while a spawned thread gets 2 MiB by default.
const STACK_BYTES: usize = 8 << 20;

/// Starts the producer on its own thread.
pub fn spawn(
    plan: ProducerPlan,
    work: mpsc::Sender<Work>,
    events: mpsc::Sender<Event>,
    shared: Arc<WorkerContext>,
) -> JoinHandle<Produced> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("producer".into())
        .stack_size(STACK_BYTES)
        .spawn(move || produce(plan, work, events, shared, &runtime))
        .expect("a thread for the producer")
}

/// Rendered messages waiting for a worker: enough that every worker finds its next message at hand for
/// pipelining (measured against the sink with 4 connections: 16c+4 ran ~1.6× faster than 2c+4). They have
/// no journal record yet (see `pending`), so a crash leaves them pending, not uncertain.
pub fn queue_depth(connections: usize) -> usize {
    connections * 16 + 4
}

/// How many places a full queue must have free before the producer goes on: a quarter of it, at most 16
/// (the workers still find plenty at hand), so that it is woken once per that many messages.
pub fn refill(capacity: usize) -> usize {
    (capacity / 4).clamp(1, 16)
}

/// How many rendered messages may wait for the connections: `[limits] queue_messages`, by default
/// [`queue_depth`].
pub fn queue_capacity(job: &Job, connections: usize) -> usize {
    job.limits.queue_messages.map_or_else(|| queue_depth(connections), |n| n as usize)
}

/// Streams the CSV: each row is settled here (skipped, carried from an earlier run, not sent, not
/// renderable) or rendered and queued for the workers. `runtime` runs the waits for room in the queue.
pub fn produce(
    plan: ProducerPlan,
    work: mpsc::Sender<Work>,
    events: mpsc::Sender<Event>,
    shared: Arc<WorkerContext>,
    runtime: &tokio::runtime::Handle,
) -> Produced {
    let produced = Produced { by_budget: plan.by_budget, ..Produced::default() };
    if let Some(counted) = plan.planned.or_else(|| count(&plan)) {
        let _ = events.blocking_send(Event::Planned(counted));
    }
    let job = plan.job.clone();
    let reader = match job.recipients() {
        Ok(reader) => reader,
        Err(problems) => {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let _ = events.blocking_send(Event::Log(format!("cannot read the recipients: {}", text.join("; "))));
            return produced;
        }
    };
    let queue_bytes = QueueBytes::new(plan.job.limits.queue_bytes);
    let refill = refill(work.max_capacity());
    let mut producer = Producer { plan, work, refill, runtime, events, shared, queue_bytes, produced };
    let shard = producer.plan.shard;
    for entry in reader.filter(|entry| takes(shard, entry)) {
        if !producer.take(entry) {
            break;
        }
    }
    producer.produced
}

/// The producer thread's state while it streams the CSV.
struct Producer<'r> {
    plan: ProducerPlan,
    work: mpsc::Sender<Work>,
    /// Free places a full queue must have before the producer goes on ([`refill`]).
    refill: usize,
    runtime: &'r tokio::runtime::Handle,
    events: mpsc::Sender<Event>,
    shared: Arc<WorkerContext>,
    queue_bytes: Arc<QueueBytes>,
    produced: Produced,
}

impl Producer<'_> {
    /// One CSV record, settled or queued; `false` when the run is gone (its channels closed).
    fn take(&mut self, entry: Result<Entry, RowError>) -> bool {
        let recipient = match entry {
            Err(error) => return self.settle(bare(error.row, "", Status::Skipped, format!("skipped: {error}")), false),
            Ok(Entry::Duplicate { row, first_row, address }) => {
                let text = format!("duplicate of row {first_row}, sent once");
                return self.settle(bare(row, &address, Status::Skipped, text), false);
            }
            Ok(Entry::Suppressed { row, address, file }) => {
                let text = format!("suppressed by {}", file.display());
                return self.settle(bare(row, &address, Status::Suppressed, text), false);
            }
            Ok(Entry::Recipient(recipient)) => recipient,
        };
        let not_sent = |status, text: String| bare(recipient.row, &recipient.mailbox.envelope(), status, text);
        match decide(&self.plan, &recipient) {
            Decision::Carry(status, copies_rejected) => {
                let mut carried = not_sent(status, format!("{status} in an earlier run"));
                if copies_rejected {
                    carried.copies = "some rejected in an earlier run (see its report)".to_owned();
                }
                self.settle(carried, true)
            }
            Decision::Send(_) if self.shared.stop.is_set() => {
                self.settle(not_sent(Status::NotSent, "not sent: the run stopped".into()), false)
            }
            Decision::Send(_) if self.plan.limit.is_some_and(|l| self.produced.sent >= l) => {
                self.produced.limited = true;
                let reason = if self.plan.by_budget { "the daily budget is used up" } else { "--limit reached" };
                self.settle(not_sent(Status::NotSent, format!("not sent: {reason}")), false)
            }
            Decision::Send(date) => match render(&mut self.plan, &recipient, date, &self.shared.lost) {
                Ok(item) => self.queue(item),
                Err(text) => self.settle(not_sent(Status::Failed, text), false),
            },
        }
    }

    /// Hands a rendered message to the workers once its bytes fit under `[limits] queue_bytes`.
    fn queue(&mut self, mut item: Work) -> bool {
        self.produced.sent += 1;
        let bytes = item.message.bytes.len() as u64;
        let shared = &self.shared;
        item.charge = Some(self.queue_bytes.charge(bytes, || shared.stop.is_set()));
        match self.work.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(item)) => self.send_when_room(item),
        }
    }

    /// The queue is full: waits until [`refill`] places are free (one wakeup for all of them), takes one.
    fn send_when_room(&self, item: Work) -> bool {
        match self.runtime.block_on(self.work.reserve_many(self.refill)) {
            Ok(mut places) => {
                places.next().expect("refill is at least 1").send(item);
                true
            }
            Err(_) => false,
        }
    }

    fn settle(&self, settlement: Settlement, carried: bool) -> bool {
        self.events.blocking_send(Event::Settled { settlement, carried }).is_ok()
    }
}

/// What this run is going to do, with the decisions [`produce`] makes, counted before it starts (one pass
/// over the CSV that renders nothing), for the progress display's first line and its ETA. `None` when the
/// CSV cannot be read (the run then says so and sends nothing).
pub fn count(plan: &ProducerPlan) -> Option<Planned> {
    let mut counted = Planned::default();
    let reader = plan.job.recipients().ok()?;
    for entry in reader.filter(|entry| takes(plan.shard, entry)) {
        counted.recipients += 1;
        let Ok(Entry::Recipient(recipient)) = entry else { continue };
        match decide(plan, &recipient) {
            Decision::Carry(Status::Uncertain, _) => counted.uncertain_earlier += 1,
            Decision::Carry(..) => counted.settled_earlier += 1,
            Decision::Send(_) if plan.limit.is_some_and(|l| counted.to_send >= l) => {}
            Decision::Send(_) => counted.to_send += 1,
        }
    }
    Some(counted)
}

/// Whether this run settles a CSV record: all of them, or its shard's.
fn takes(shard: Option<Shard>, entry: &Result<Entry, RowError>) -> bool {
    shard.is_none_or(|shard| shard.takes(entry))
}

enum Decision {
    /// Settled earlier: this status, and whether some of the row's copies were rejected then.
    Carry(Status, bool),
    /// Send, with this Date (the journal's, for a retry, so the bytes are the same).
    Send(DateTime<Utc>),
}

fn decide(plan: &ProducerPlan, recipient: &Recipient) -> Decision {
    let Some(entry) = plan.journal.as_ref().and_then(|j| j.get(&recipient.key)) else {
        return Decision::Send(plan.now);
    };
    let earlier = Utc.timestamp_opt(entry.date, 0).single().unwrap_or(plan.now);
    match entry.state {
        JournalState::Settled(Settled::Delivered) => Decision::Carry(Status::Delivered, entry.copies_rejected),
        JournalState::Settled(Settled::Failed) => Decision::Carry(Status::Failed, false),
        JournalState::Uncertain if !plan.resend_uncertain => Decision::Carry(Status::Uncertain, false),
        JournalState::Uncertain | JournalState::Released | JournalState::Settled(Settled::Deferred) => {
            Decision::Send(earlier)
        }
    }
}

fn render(
    plan: &mut ProducerPlan,
    recipient: &Recipient,
    date: DateTime<Utc>,
    lost: &Arc<Lost>,
) -> Result<Work, String> {
    let job = &plan.job;
    let message = match plan.spool.as_mut().and_then(|spool| spool.take(recipient.row, &recipient.key, date)) {
        Some(kept) => job.from_built(recipient, kept.bytes, kept.return_path.as_deref()),
        None => job.render(recipient, date),
    };
    let message = message.map_err(|e| format!("not sent: {e}"))?;
    let e = &message.envelope;
    let to = e.to.first().cloned().unwrap_or_default();
    let copies = e.copies.iter().map(|c| c.address.clone());
    let envelope = smtp::Envelope::with_copies(e.from.clone(), to, copies).map_err(|e| format!("not sent: {e}"))?;
    let envelope = if e.smtputf8 { envelope.with_smtputf8() } else { envelope };
    let (attempts, first_attempt, last, committing, lost, charge) = (0, None, None, false, lost.clone(), None);
    Ok(Work { message, envelope, date, attempts, first_attempt, last, committing, lost, charge })
}

fn bare(row: u64, email: &str, status: Status, reply: impl Into<String>) -> Settlement {
    Settlement {
        row,
        email: email.to_owned(),
        status,
        code: None,
        enhanced: None,
        reply: reply.into(),
        attempts: 0,
        message_id: String::new(),
        first_attempt: None,
        last_attempt: None,
        copies: String::new(),
    }
}

#[cfg(test)]
mod tests {
    /// The producer waits for a quarter of the queue, at most 16 places, and never for more than it holds.
    #[test]
    fn refill_is_a_quarter_of_the_queue_between_1_and_16() {
        for (capacity, refill) in [(1, 1), (2, 1), (8, 2), (36, 9), (68, 16), (100_000, 16)] {
            assert_eq!(super::refill(capacity), refill, "capacity {capacity}");
        }
    }
}
