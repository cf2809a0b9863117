//! The hand-off from the workers to the journal's writer thread: a queue that wakes the writer only when it
//! has something to do now.
//!
//! A channel wakes its receiver on every message. On a 2-core machine whose other core serves the network,
//! each wake-up is a futex call and a context switch, since the writer preempts the runtime that woke it:
//! `perf` put a tenth of a loopback run's CPU in the channel's wake-ups, two or three per message. Only a sync
//! someone waits for, a finish, the last handle going away or a long backlog needs the writer at once. Other
//! records ride along with the next wake-up. The writer [`Wait::Dozes`] for the journal's `SYNC_DELAY` after
//! activity, so a record nobody waits for is still synced within that delay. It sleeps for good
//! ([`Wait::Sleeps`]) only after a doze that brought nothing, and then the first record wakes it.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::record::Record;

/// What the writer is handed.
pub(super) enum Command {
    Record(Record),
    /// Someone waits for this record, not durable yet: sync now, unless a sync covered it meanwhile.
    Sync(u64),
    /// The process is about to quit without closing the writer (a second signal): sync everything and leave
    /// the file as a close would (no zeros after the records), then say so.
    Finish(tokio::sync::oneshot::Sender<()>),
}

/// Queued records that wake the writer even though nobody asked for a sync: bounds the queue's memory and
/// the writer's batch.
const BACKLOG: usize = 1024;

pub(super) struct Queue {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    commands: Vec<Command>,
    /// The ticket of the last record queued: tickets follow the order records are written.
    last_ticket: u64,
    /// Every handle is gone: the writer drains, syncs and stops.
    closed: bool,
    /// The writer stopped (after an error): nothing more is taken.
    writer_gone: bool,
    /// Something queued needs the writer now (a sync request, a finish, a long backlog).
    urgent: bool,
    /// The highest ticket a sync was asked for.
    requested: u64,
    /// The highest ticket a sync is wanted for, to be asked for by [`Queue::ask_wanted`].
    wanted: u64,
    /// An `ask_wanted` is on its way.
    asking: bool,
    /// How the writer waits right now (None: it is not waiting).
    waiting: Option<Waiting>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Until a deadline: only what is urgent wakes it earlier.
    Dozing,
    /// With no deadline: any record wakes it.
    Sleeping,
}

/// How long [`Queue::take`] may wait when nothing is queued.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wait {
    /// Until this instant; records queued meanwhile wait for it too, unless something urgent comes.
    Dozes(Instant),
    /// For as long as it takes; the first record queued wakes the writer.
    Sleeps,
}

/// Why [`Queue::take`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Empty {
    /// The doze ended.
    Timeout,
    /// Every handle is gone and nothing is left.
    Closed,
}

impl Queue {
    pub(super) fn new() -> Queue {
        let state = State {
            commands: Vec::new(),
            last_ticket: 0,
            closed: false,
            writer_gone: false,
            urgent: false,
            requested: 0,
            wanted: 0,
            asking: false,
            waiting: None,
        };
        Queue { state: Mutex::new(state), wake: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a record and returns its ticket; None once the writer is gone.
    pub(super) fn record(&self, record: Record) -> Option<u64> {
        let mut state = self.lock();
        if state.writer_gone {
            return None;
        }
        state.commands.push(Command::Record(record));
        state.last_ticket += 1;
        let ticket = state.last_ticket;
        state.urgent |= state.commands.len() >= BACKLOG;
        let wake = state.urgent || state.waiting == Some(Waiting::Sleeping);
        self.wake_if(state, wake);
        Some(ticket)
    }

    /// Asks for a sync covering `ticket`, unless one was asked for already: a queued request is always
    /// answered (the writer syncs, or fails and says so to every waiter), so a second one would only wake
    /// the writer for nothing.
    pub(super) fn sync(&self, ticket: u64) {
        let mut state = self.lock();
        if state.writer_gone || ticket <= state.requested {
            return;
        }
        state.requested = ticket;
        state.commands.push(Command::Sync(ticket));
        state.urgent = true;
        self.wake_if(state, true);
    }

    /// Notes that a sync covering `ticket` is wanted; true if the caller must now call [`Queue::ask_wanted`]
    /// (soon: requests noted meanwhile ride on that one).
    pub(super) fn want(&self, ticket: u64) -> bool {
        let mut state = self.lock();
        if ticket <= state.requested.max(state.wanted) {
            return false;
        }
        state.wanted = ticket;
        !std::mem::replace(&mut state.asking, true)
    }

    /// Asks for a sync covering every ticket [`Queue::want`] noted.
    pub(super) fn ask_wanted(&self) {
        let wanted = {
            let mut state = self.lock();
            state.asking = false;
            state.wanted
        };
        self.sync(wanted);
    }

    /// Asks the writer to sync everything now and leave the file as a close would; false once it is gone.
    pub(super) fn finish(&self, done: tokio::sync::oneshot::Sender<()>) -> bool {
        let mut state = self.lock();
        if state.writer_gone {
            return false;
        }
        state.commands.push(Command::Finish(done));
        state.urgent = true;
        self.wake_if(state, true);
        true
    }

    /// The ticket of the last record queued so far.
    pub(super) fn last_ticket(&self) -> u64 {
        self.lock().last_ticket
    }

    /// The last handle is gone: the writer drains what is queued, syncs and stops.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.wake_if(state, true);
    }

    /// The writer stopped: later commands are refused, and those queued are dropped (a finish waiting for
    /// its answer hears that it will not come).
    pub(super) fn writer_gone(&self) {
        let mut state = self.lock();
        state.writer_gone = true;
        state.commands.clear();
    }

    fn wake_if(&self, mut state: MutexGuard<'_, State>, wake: bool) {
        // A futex wake is a system call even with nobody waiting: only when the writer waits.
        if wake && state.waiting.is_some() {
            state.waiting = None;
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Moves everything queued into `into` (in order), waiting as `wait` says until something is ready:
    /// anything urgent, anything at all once a doze is over or while sleeping. True if a doze ended.
    pub(super) fn take(&self, wait: Wait, into: &mut Vec<Command>) -> Result<bool, Empty> {
        let mut state = self.lock();
        loop {
            let doze_over = matches!(wait, Wait::Dozes(until) if Instant::now() >= until);
            let ready = state.urgent || state.closed || doze_over || matches!(wait, Wait::Sleeps);
            if ready && !state.commands.is_empty() {
                state.urgent = false;
                into.append(&mut state.commands);
                shrink(&mut state.commands);
                return Ok(doze_over);
            }
            if state.closed {
                return Err(Empty::Closed);
            }
            if doze_over {
                return Err(Empty::Timeout);
            }
            state = match wait {
                Wait::Sleeps => {
                    state.waiting = Some(Waiting::Sleeping);
                    self.wake.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner())
                }
                Wait::Dozes(until) => {
                    state.waiting = Some(Waiting::Dozing);
                    let left = until.saturating_duration_since(Instant::now());
                    self.wake.wait_timeout(state, left).unwrap_or_else(|poisoned| poisoned.into_inner()).0
                }
            };
            state.waiting = None;
        }
    }

    /// The highest ticket a sync was asked for (tests: whether a request went out).
    #[cfg(test)]
    pub(super) fn requested(&self) -> u64 {
        self.lock().requested
    }

    /// What the queue's buffer holds room for (tests: a backlog's memory is given back).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.lock().commands.capacity()
    }

    /// Moves everything queued into `into` without waiting.
    pub(super) fn take_now(&self, into: &mut Vec<Command>) {
        let mut state = self.lock();
        state.urgent = false;
        into.append(&mut state.commands);
        shrink(&mut state.commands);
    }
}

/// Gives back what a backlog grew a buffer to (a disk stall can queue many records; the channel before this
/// queue freed them as it went).
pub(super) fn shrink(buffer: &mut Vec<Command>) {
    if buffer.capacity() > 4 * BACKLOG {
        buffer.shrink_to(BACKLOG);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    use chrono::Utc;

    use super::*;

    fn record(n: usize) -> Record {
        Record::Released { key: format!("r{n}@x"), date: 0, at: Utc::now() }
    }

    /// What a batch holds, in order: `r<n>` for a record, `sync <t>`, `finish`.
    fn names(batch: &[Command]) -> Vec<String> {
        batch
            .iter()
            .map(|c| match c {
                Command::Record(Record::Released { key, .. }) => key.trim_end_matches("@x").to_owned(),
                Command::Record(other) => format!("{other:?}"),
                Command::Sync(t) => format!("sync {t}"),
                Command::Finish(_) => "finish".into(),
            })
            .collect()
    }

    /// What `take_now` hands over, named.
    fn taken_now(queue: &Queue) -> Vec<String> {
        let mut batch = Vec::new();
        queue.take_now(&mut batch);
        names(&batch)
    }

    /// `take` on a thread of its own, as the writer calls it; its result arrives on the receiver.
    fn taker(queue: &Arc<Queue>, wait: Wait) -> mpsc::Receiver<(Result<bool, Empty>, Vec<String>)> {
        let (tx, rx) = mpsc::channel();
        let queue = queue.clone();
        std::thread::spawn(move || {
            let mut batch = Vec::new();
            let result = queue.take(wait, &mut batch);
            let _ = tx.send((result, names(&batch)));
        });
        rx
    }

    /// Long enough for a writer that was wrongly woken to have returned.
    const SETTLE: Duration = Duration::from_millis(100);
    /// A liveness bound, not a speed goal.
    const LIVENESS: Duration = Duration::from_secs(20);

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    /// A record queued while the writer dozes waits for the next wake-up; a sync request is that wake-up,
    /// and the batch keeps the order the commands were queued in.
    #[test]
    fn a_dozing_writer_is_woken_by_a_sync_request_not_by_a_record() {
        let queue = Arc::new(Queue::new());
        let taken = taker(&queue, Wait::Dozes(far()));
        std::thread::sleep(SETTLE);
        assert_eq!(queue.record(record(1)), Some(1));
        assert!(taken.recv_timeout(SETTLE).is_err(), "a record woke a dozing writer");
        assert_eq!(queue.record(record(2)), Some(2));
        queue.sync(2);
        let (result, batch) = taken.recv_timeout(LIVENESS).expect("the sync request woke the writer");
        assert_eq!(result, Ok(false));
        assert_eq!(batch, ["r1", "r2", "sync 2"]);
    }

    /// A writer asleep (no deadline) must hear the first record, or a record nobody waits for would never
    /// be synced.
    #[test]
    fn a_sleeping_writer_is_woken_by_the_first_record() {
        let queue = Arc::new(Queue::new());
        let taken = taker(&queue, Wait::Sleeps);
        std::thread::sleep(SETTLE);
        queue.record(record(1));
        let (result, batch) = taken.recv_timeout(LIVENESS).expect("the record woke the sleeping writer");
        assert_eq!((result, batch), (Ok(false), vec!["r1".to_owned()]));
    }

    /// A sync request queued while the writer was busy (nobody to wake) is taken by its next `take` at
    /// once, not at the end of a doze.
    #[test]
    fn a_request_queued_while_the_writer_is_busy_is_taken_at_once() {
        let queue = Arc::new(Queue::new());
        queue.record(record(1));
        queue.sync(1);
        let taken = taker(&queue, Wait::Dozes(far()));
        let (result, batch) = taken.recv_timeout(LIVENESS).expect("taken without waiting for the doze");
        assert_eq!((result, batch), (Ok(false), vec!["r1".to_owned(), "sync 1".to_owned()]));
    }

    /// A doze that ends hands over what came during it (true: those records have waited long enough), or
    /// times out if nothing came.
    #[test]
    fn a_doze_ends_with_what_came_or_times_out() {
        let queue = Queue::new();
        let mut batch = Vec::new();
        assert_eq!(
            queue.take(Wait::Dozes(Instant::now() + Duration::from_millis(20)), &mut batch),
            Err(Empty::Timeout)
        );
        queue.record(record(1));
        assert_eq!(queue.take(Wait::Dozes(Instant::now() + Duration::from_millis(20)), &mut batch), Ok(true));
        assert_eq!(names(&batch), ["r1"]);
    }

    /// A second request for a ticket already asked for, or an older one, adds nothing: the first is always
    /// answered.
    #[test]
    fn a_request_for_a_ticket_already_asked_for_is_not_queued() {
        let queue = Queue::new();
        for ticket in [3, 1, 3, 2, 5, 5] {
            queue.sync(ticket);
        }
        assert_eq!(taken_now(&queue), ["sync 3", "sync 5"]);
    }

    /// Wanted syncs noted before the ask goes out become one request, for the highest ticket; only the
    /// first `want` of a round needs to ask, and a ticket already asked for is not wanted again.
    #[test]
    fn wanted_syncs_become_one_request_for_the_highest_ticket() {
        let queue = Queue::new();
        assert!(queue.want(2), "the first want of a round asks");
        assert!(!queue.want(4), "an ask is on its way");
        assert!(!queue.want(3), "covered by a higher one");
        queue.ask_wanted();
        assert!(!queue.want(4), "asked for already");
        assert!(queue.want(5), "a new round");
        queue.ask_wanted();
        assert_eq!(taken_now(&queue), ["sync 4", "sync 5"]);
    }

    /// A backlog far beyond BACKLOG (a long disk stall) does not keep its memory once taken, in the queue or
    /// in the writer's batch.
    #[test]
    fn a_backlog_gives_its_memory_back_once_taken() {
        let queue = Queue::new();
        for n in 0..8 * BACKLOG {
            queue.record(record(n));
        }
        let mut batch = Vec::new();
        queue.take_now(&mut batch);
        assert_eq!(batch.len(), 8 * BACKLOG);
        assert!(queue.capacity() <= BACKLOG, "the queue kept room for {}", queue.capacity());
        batch.clear();
        shrink(&mut batch);
        assert!(batch.capacity() <= BACKLOG, "the batch kept room for {}", batch.capacity());
    }

    /// A long backlog wakes a dozing writer even though nobody asked for a sync (bounded memory).
    #[test]
    fn a_backlog_wakes_a_dozing_writer() {
        let queue = Arc::new(Queue::new());
        let taken = taker(&queue, Wait::Dozes(far()));
        std::thread::sleep(SETTLE);
        for n in 1..BACKLOG {
            queue.record(record(n));
        }
        assert!(taken.recv_timeout(SETTLE).is_err(), "woken before the backlog was reached");
        queue.record(record(BACKLOG));
        let (result, batch) = taken.recv_timeout(LIVENESS).expect("the backlog woke the writer");
        assert_eq!((result, batch.len()), (Ok(false), BACKLOG));
        assert_eq!(batch.last().map(String::as_str), Some(format!("r{BACKLOG}").as_str()));
    }

    /// A sync request that arrives between the writer's `take` and its `take_now` is taken by `take_now`; it
    /// must leave no urgency behind, or the next record (nobody waiting for it) wakes a dozing writer.
    #[test]
    fn a_request_taken_with_take_now_leaves_no_urgency_behind() {
        let queue = Arc::new(Queue::new());
        queue.record(record(1));
        let mut batch = Vec::new();
        assert_eq!(queue.take(Wait::Sleeps, &mut batch), Ok(false));
        // The writer writes r1 and is about to sync; a worker asks meanwhile, and `take_now` collects it.
        queue.sync(1);
        queue.take_now(&mut batch);
        assert_eq!(names(&batch), ["r1", "sync 1"]);
        let taken = taker(&queue, Wait::Dozes(far()));
        std::thread::sleep(SETTLE);
        queue.record(record(2));
        let woken = taken.recv_timeout(SETTLE);
        queue.close();
        assert!(woken.is_err(), "a record woke a dozing writer: {woken:?}");
    }

    /// The last handle going away wakes the writer, which drains what is left, then hears that it is
    /// closed; after the writer is gone, nothing more is accepted.
    #[test]
    fn closing_wakes_and_drains_and_a_gone_writer_refuses_more() {
        let queue = Arc::new(Queue::new());
        let taken = taker(&queue, Wait::Dozes(far()));
        std::thread::sleep(SETTLE);
        queue.record(record(1));
        queue.close();
        let (result, batch) = taken.recv_timeout(LIVENESS).expect("closing woke the writer");
        assert_eq!((result, batch), (Ok(false), vec!["r1".to_owned()]));
        let mut batch = Vec::new();
        assert_eq!(queue.take(Wait::Sleeps, &mut batch), Err(Empty::Closed));

        queue.writer_gone();
        assert_eq!(queue.record(record(2)), None);
        assert!(!queue.finish(tokio::sync::oneshot::channel().0));
        queue.sync(9);
        queue.take_now(&mut batch);
        assert!(batch.is_empty());
    }
}
