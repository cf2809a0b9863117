//! The bytes of rendered messages alive in a run — queued, being sent, or waiting for a retry — against
//! `[limits] queue_bytes`. Each message carries its [`Charge`] and gives the bytes back when it is dropped,
//! whichever way its run ends. Below the producer (which charges) and the work it hands on (which carries
//! the charge), so that neither imports the other.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The bytes of rendered messages alive in the run, against `[limits] queue_bytes`.
#[derive(Debug)]
pub struct QueueBytes {
    used: Mutex<Used>,
    freed: Condvar,
    cap: u64,
}

#[derive(Debug, Default)]
struct Used {
    bytes: u64,
    /// Charges waiting for room. A charge given back wakes them only when there are some: a condvar's
    /// notify is a system call even with nobody waiting, and every message sent gives its charge back.
    waiting: usize,
}

/// One message's share of [`QueueBytes`], given back on drop.
#[derive(Debug)]
pub struct Charge {
    bytes: u64,
    pool: Arc<QueueBytes>,
}

impl QueueBytes {
    pub fn new(cap: u64) -> Arc<QueueBytes> {
        Arc::new(QueueBytes { used: Mutex::default(), freed: Condvar::new(), cap })
    }

    /// Waits until `bytes` fit (a message larger than the whole cap goes alone), or the run stops.
    pub fn charge(self: &Arc<Self>, bytes: u64, stopped: impl Fn() -> bool) -> Charge {
        let mut used = self.used.lock().expect("queue bytes lock");
        while used.bytes > 0 && used.bytes + bytes > self.cap && !stopped() {
            used.waiting += 1;
            used = self.freed.wait_timeout(used, Duration::from_millis(50)).expect("queue bytes lock").0;
            used.waiting -= 1;
        }
        used.bytes += bytes;
        Charge { bytes, pool: self.clone() }
    }

    /// The bytes charged now.
    pub fn used(&self) -> u64 {
        self.used.lock().expect("queue bytes lock").bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut used = self.pool.used.lock().expect("queue bytes lock");
        used.bytes -= self.bytes;
        if used.waiting > 0 {
            drop(used);
            self.pool.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn charges_wait_for_room_and_a_message_larger_than_the_cap_goes_alone() {
        let pool = QueueBytes::new(100);
        let a = pool.charge(60, || false);
        let b = pool.charge(40, || false);
        assert_eq!(pool.used(), 100);
        let waiter = std::thread::spawn({
            let pool = pool.clone();
            move || pool.charge(30, || false)
        });
        std::thread::sleep(Duration::from_millis(120));
        assert!(!waiter.is_finished(), "30 more bytes do not fit in 100");
        drop(a);
        let c = waiter.join().unwrap();
        assert_eq!(pool.used(), 70);
        drop((b, c));
        let huge = pool.charge(500, || false);
        assert_eq!(pool.used(), 500, "alone, a message over the cap still goes");
        drop(huge);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn a_stop_ends_the_wait() {
        let pool = QueueBytes::new(10);
        let _held = pool.charge(10, || false);
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = std::thread::spawn({
            let (pool, stop) = (pool.clone(), stop.clone());
            move || drop(pool.charge(5, || stop.load(Ordering::SeqCst)))
        });
        stop.store(true, Ordering::SeqCst);
        waiter.join().unwrap();
    }
}
