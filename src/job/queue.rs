//! Hands work to the workers: fresh messages from the bounded render channel, and deferred ones once their
//! retry time has come (retries first, so a deferred recipient is not starved by a long list).
//!
//! The queue knows when the run is over: the source is exhausted, no retry is waiting and nothing is in
//! flight that could still produce one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

struct Delayed<T> {
    due: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Delayed<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl<T> Eq for Delayed<T> {}
impl<T> PartialOrd for Delayed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Delayed<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

struct QueueState<T> {
    retries: BinaryHeap<Reverse<Delayed<T>>>,
    in_flight: usize,
    seq: u64,
    source_done: bool,
    stopped: bool,
}

pub struct WorkQueue<T> {
    source: tokio::sync::Mutex<mpsc::Receiver<T>>,
    shared: Mutex<QueueState<T>>,
    changed: Notify,
}

/// What [`WorkQueue::next`] does next: take an item, wait for a retry to fall due, read the source, or end.
enum Next<T> {
    Take(T),
    Wait(Option<Instant>),
    Fresh,
    Done,
}

impl<T> WorkQueue<T> {
    pub fn new(source: mpsc::Receiver<T>) -> Self {
        let shared =
            QueueState { retries: BinaryHeap::new(), in_flight: 0, seq: 0, source_done: false, stopped: false };
        WorkQueue { source: tokio::sync::Mutex::new(source), shared: Mutex::new(shared), changed: Notify::new() }
    }

    /// The next item to work on, or `None` when the run is over. Every item taken must be given back with
    /// [`WorkQueue::finished`] or [`WorkQueue::retry_at`].
    pub async fn next(&self) -> Option<T> {
        loop {
            let notified = self.changed.notified();
            match self.next_step() {
                Next::Take(item) => return Some(item),
                Next::Done => return None,
                Next::Wait(due) => match due {
                    Some(due) => {
                        tokio::select! { _ = tokio::time::sleep_until(due) => {}, _ = notified => {} }
                    }
                    None => notified.await,
                },
                Next::Fresh => {
                    // Only one worker reads the source at a time; the others wait for a retry or a change.
                    let Ok(mut source) = self.source.try_lock() else {
                        notified.await;
                        continue;
                    };
                    let next_due = self.shared().retries.peek().map(|r| r.0.due);
                    let received = tokio::select! {
                        item = source.recv() => Some(item),
                        _ = sleep_until_opt(next_due) => None,
                    };
                    drop(source);
                    match received {
                        Some(Some(item)) => {
                            self.shared().in_flight += 1;
                            self.changed.notify_waiters();
                            return Some(item);
                        }
                        Some(None) => {
                            self.shared().source_done = true;
                            self.changed.notify_waiters();
                        }
                        None => {}
                    }
                }
            }
        }
    }

    fn next_step(&self) -> Next<T> {
        let mut s = self.shared();
        let now = Instant::now();
        if s.retries.peek().is_some_and(|r| r.0.due <= now) && !s.stopped {
            let item = s.retries.pop().expect("peeked").0.item;
            s.in_flight += 1;
            return Next::Take(item);
        }
        if s.stopped || (s.source_done && s.retries.is_empty() && s.in_flight == 0) {
            return Next::Done;
        }
        if s.source_done {
            return Next::Wait(s.retries.peek().map(|r| r.0.due));
        }
        Next::Fresh
    }

    /// An item available right now (a due retry or one already rendered), without waiting.
    pub fn try_next(&self) -> Option<T> {
        match self.next_step() {
            Next::Take(item) => Some(item),
            Next::Fresh => {
                let mut source = self.source.try_lock().ok()?;
                let item = source.try_recv().ok()?;
                self.shared().in_flight += 1;
                Some(item)
            }
            Next::Wait(_) | Next::Done => None,
        }
    }

    /// The item is settled for this run.
    pub fn finished(&self) {
        self.shared().in_flight -= 1;
        self.changed.notify_waiters();
    }

    /// The item goes back in line, not before `due`.
    pub fn retry_at(&self, item: T, due: Instant) {
        let mut s = self.shared();
        s.in_flight -= 1;
        s.seq += 1;
        let seq = s.seq;
        s.retries.push(Reverse(Delayed { due, seq, item }));
        drop(s);
        self.changed.notify_waiters();
    }

    /// Stop handing out work (Ctrl-C, the job stopped); the waiting retries stay for [`WorkQueue::stop`].
    pub fn stop_soon(&self) {
        self.shared().stopped = true;
        self.changed.notify_waiters();
    }

    /// Stop handing out work (Ctrl-C, the job stopped). Returns the retries that will not be attempted.
    pub fn stop(&self) -> Vec<T> {
        let mut s = self.shared();
        s.stopped = true;
        let left = std::mem::take(&mut s.retries).into_iter().map(|r| r.0.item).collect();
        drop(s);
        self.changed.notify_waiters();
        left
    }

    /// After a stop, what is still in the source channel (the producer may be blocked on a full channel):
    /// the next item, until the producer is gone.
    pub async fn leftover(&self) -> Option<T> {
        self.source.lock().await.recv().await
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, QueueState<T>> {
        self.shared.lock().expect("queue lock")
    }
}

async fn sleep_until_opt(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn serves_fresh_items_then_due_retries_then_ends() {
        let (tx, rx) = mpsc::channel(4);
        let q = WorkQueue::new(rx);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        drop(tx);
        assert_eq!(q.next().await, Some(1));
        let start = Instant::now();
        q.retry_at(1, start + Duration::from_secs(30));
        assert_eq!(q.next().await, Some(2));
        q.finished();
        // Source exhausted, one retry waiting: the queue sleeps until it is due.
        assert_eq!(q.next().await, Some(1));
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
        q.finished();
        assert_eq!(q.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_end_while_an_item_in_flight_may_come_back() {
        let (tx, rx) = mpsc::channel(4);
        let q = Arc::new(WorkQueue::new(rx));
        tx.send("a").await.unwrap();
        drop(tx);
        assert_eq!(q.next().await, Some("a"));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished(), "another worker must wait: 'a' may be retried");
        q.retry_at("a", Instant::now() + Duration::from_secs(1));
        assert_eq!(waiter.await.unwrap(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_retry_goes_before_fresh_items() {
        let (tx, rx) = mpsc::channel(4);
        let q = WorkQueue::new(rx);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        assert_eq!(q.next().await, Some(1));
        q.retry_at(1, Instant::now());
        assert_eq!(q.next().await, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_the_run_and_returns_what_was_waiting() {
        let (tx, rx) = mpsc::channel(4);
        let q = WorkQueue::new(rx);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        assert_eq!(q.next().await, Some(1));
        q.retry_at(1, Instant::now() + Duration::from_secs(60));
        assert_eq!(q.stop(), vec![1]);
        assert_eq!(q.next().await, None);
    }
}
