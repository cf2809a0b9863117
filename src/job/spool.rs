//! The preflight's rendered messages, kept for the producer so that a message is rendered once per run, not
//! twice.
//!
//! `send` checks every row before anything leaves (`check::check_job`): it renders and builds each message,
//! which was then dropped, and the producer rendered it all over again — about a third of a run's
//! instructions. The spool keeps what the preflight built, in CSV order: the bytes in an unlinked file
//! beside the journal (nothing is left behind, whatever way the run ends; the page cache holds it), the
//! recipient's key and rendered return path in memory. The producer takes an entry only when it is the
//! same row, the same key and the same Date; anything else (a retry keeps its first Date, a CSV edited
//! since the check, a full spool) is rendered as before.
//!
//! Bounded so that it can never be what fills a disk or memory: at most [`CAP_BYTES`] of messages, only on
//! a filesystem with [`FREE_FACTOR`] times that free, and any write error just stops the keeping. Made only
//! where it pays: on a campaign's first run (a later one carries most rows, which the check still builds),
//! and no more messages than the run may send (`--limit`, `[rate] max_per_day`).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use chrono::{DateTime, Utc};

/// The most message bytes kept (a campaign of 2 KB messages: its first ~60,000).
pub const CAP_BYTES: u64 = 128 * 1024 * 1024;
/// The spool is made only where this many times [`CAP_BYTES`] is free.
const FREE_FACTOR: u64 = 4;

pub struct Spool {
    file: File,
    /// The Date every kept message carries (the run's start).
    date: DateTime<Utc>,
    slots: Vec<Slot>,
    /// The first slot the producer has not passed yet: both go through the CSV in the same order.
    next: usize,
    written: u64,
    cap: u64,
    /// The most messages worth keeping: the run sends no more.
    most: usize,
    full: bool,
}

struct Slot {
    row: u64,
    key: Box<str>,
    return_path: Option<Box<str>>,
    offset: u64,
    len: usize,
}

/// A message the preflight built: its bytes, and what the envelope needs besides them.
pub struct Kept {
    pub bytes: Vec<u8>,
    pub return_path: Option<String>,
}

impl Spool {
    /// A spool in `dir` for at most `most` messages dated `date`, or `None` where there is not plenty of
    /// room for one.
    pub fn create(dir: &Path, date: DateTime<Utc>, most: Option<u64>) -> Option<Spool> {
        let free = rustix::fs::statvfs(dir).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize))?;
        if free < CAP_BYTES * FREE_FACTOR || most == Some(0) {
            return None;
        }
        let most = most.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Spool::in_dir(dir, date, CAP_BYTES, most)
    }

    fn in_dir(dir: &Path, date: DateTime<Utc>, cap: u64, most: usize) -> Option<Spool> {
        let file = tempfile::tempfile_in(dir).ok()?;
        Some(Spool { file, date, slots: Vec::new(), next: 0, written: 0, cap, most, full: false })
    }

    /// Keeps a message the preflight built for `row` (dated the spool's date). Best effort: once the cap is
    /// reached or a write fails, it keeps no more.
    pub fn keep(&mut self, row: u64, key: &str, bytes: &[u8], return_path: Option<&str>) {
        let room = self.slots.len() < self.most && self.written + bytes.len() as u64 <= self.cap;
        if self.full || !room || self.file.write_all(bytes).is_err() {
            self.full = true;
            return;
        }
        let (key, return_path) = (key.into(), return_path.map(Into::into));
        self.slots.push(Slot { row, key, return_path, offset: self.written, len: bytes.len() });
        self.written += bytes.len() as u64;
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The message kept for this row, if it is the same recipient and the same Date. Rows come in CSV
    /// order; the ones passed over (carried, skipped, another shard's) are dropped on the way.
    pub fn take(&mut self, row: u64, key: &str, date: DateTime<Utc>) -> Option<Kept> {
        while self.slots.get(self.next).is_some_and(|slot| slot.row < row) {
            self.next += 1;
        }
        let slot = self.slots.get(self.next).filter(|slot| slot.row == row)?;
        self.next += 1;
        if &*slot.key != key || date != self.date {
            return None;
        }
        let mut bytes = vec![0; slot.len];
        self.file.read_exact_at(&mut bytes, slot.offset).ok()?;
        Some(Kept { bytes, return_path: slot.return_path.as_deref().map(str::to_owned) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_message_comes_back_for_its_row_key_and_date_only() {
        let dir = tempfile::tempdir().unwrap();
        let date = Utc::now();
        let mut spool = Spool::in_dir(dir.path(), date, 1 << 20, usize::MAX).unwrap();
        spool.keep(2, "a@x", b"first", None);
        spool.keep(3, "b@x", b"second", Some("bounce+b@x"));
        spool.keep(5, "c@x", b"third", None);
        spool.keep(6, "d@x", b"fourth", None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the file has no name");

        let kept = spool.take(3, "b@x", date).expect("row 3");
        assert_eq!((kept.bytes.as_slice(), kept.return_path.as_deref()), (&b"second"[..], Some("bounce+b@x")));
        assert!(spool.take(4, "x@x", date).is_none(), "a row the preflight did not keep");
        assert!(spool.take(5, "other@x", date).is_none(), "another key on the row: the CSV changed");
        let later = date + chrono::Duration::seconds(1);
        assert!(spool.take(6, "d@x", later).is_none(), "another Date (a retry keeps its first)");
        assert!(spool.take(2, "a@x", date).is_none(), "rows passed over are gone");
    }

    #[test]
    fn it_keeps_nothing_past_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let date = Utc::now();
        let mut spool = Spool::in_dir(dir.path(), date, 10, usize::MAX).unwrap();
        spool.keep(2, "a@x", b"12345", None);
        spool.keep(3, "b@x", b"123456", None);
        spool.keep(4, "c@x", b"1", None);
        assert_eq!(spool.len(), 1, "full at the second message: none after it is kept either");
        assert_eq!(spool.take(2, "a@x", date).unwrap().bytes, b"12345");
        assert!(spool.take(4, "c@x", date).is_none());

        let mut two = Spool::in_dir(dir.path(), date, 1 << 20, 2).unwrap();
        for row in 2..6 {
            two.keep(row, "k", b"m", None);
        }
        assert_eq!(two.len(), 2, "no more than the run may send");
    }
}
