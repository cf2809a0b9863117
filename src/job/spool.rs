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
/// Messages are written and read back this many bytes at a time: a system call per megabyte, not per
/// message.
const CHUNK: usize = 1024 * 1024;

pub struct Spool {
    file: File,
    /// The Date every kept message carries (the run's start).
    date: DateTime<Utc>,
    slots: Vec<Slot>,
    /// The first slot the producer has not passed yet: both go through the CSV in the same order.
    next: usize,
    /// Bytes kept so far (in the file or still in `pending`).
    written: u64,
    /// Kept, not yet written to the file.
    pending: Vec<u8>,
    /// Where the file's bytes read last begin (`window` holds them).
    window_at: u64,
    window: Vec<u8>,
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
        let (slots, pending, window) = (Vec::new(), Vec::with_capacity(CHUNK), Vec::new());
        Some(Spool { file, date, slots, next: 0, written: 0, pending, window_at: 0, window, cap, most, full: false })
    }

    /// Keeps a message the preflight built for `row` (dated the spool's date). Best effort: once the cap is
    /// reached or a write fails, it keeps no more.
    pub fn keep(&mut self, row: u64, key: &str, bytes: &[u8], return_path: Option<&str>) {
        let room = self.slots.len() < self.most && self.written + bytes.len() as u64 <= self.cap;
        if self.full || !room {
            self.full = true;
            return;
        }
        self.pending.extend_from_slice(bytes);
        let (key, return_path) = (key.into(), return_path.map(Into::into));
        self.slots.push(Slot { row, key, return_path, offset: self.written, len: bytes.len() });
        self.written += bytes.len() as u64;
        if self.pending.len() >= CHUNK {
            self.write_pending();
        }
    }

    /// Writes what is kept in memory to the file; if that fails, the messages not in the file are not kept.
    fn write_pending(&mut self) {
        if self.file.write_all(&self.pending).is_err() {
            let in_file = self.written - self.pending.len() as u64;
            self.slots.retain(|slot| slot.offset + slot.len as u64 <= in_file);
            self.written = in_file;
            self.full = true;
        }
        self.pending.clear();
    }

    /// How many messages it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
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
        let (offset, len, return_path) = (slot.offset, slot.len, slot.return_path.as_deref().map(str::to_owned));
        if !self.pending.is_empty() {
            self.write_pending();
            if offset + len as u64 > self.written {
                return None;
            }
        }
        let window_end = self.window_at + self.window.len() as u64;
        if offset < self.window_at || offset + len as u64 > window_end {
            let size = (self.written - offset).min(CHUNK.max(len) as u64) as usize;
            self.window.resize(size, 0);
            if self.file.read_exact_at(&mut self.window, offset).is_err() {
                self.window.clear();
                return None;
            }
            self.window_at = offset;
        }
        let start = (offset - self.window_at) as usize;
        Some(Kept { bytes: self.window[start..start + len].to_vec(), return_path })
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

    /// Written and read back a megabyte at a time: messages across chunk ends and windows come back whole.
    #[test]
    fn many_messages_across_chunks_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let date = Utc::now();
        let mut spool = Spool::in_dir(dir.path(), date, 1 << 30, usize::MAX).unwrap();
        let body = |row: u64| format!("{row}:").repeat(100 + (row as usize * 7919) % 3000).into_bytes();
        for row in 2..2000 {
            spool.keep(row, &format!("k{row}"), &body(row), None);
        }
        assert_eq!(spool.len(), 1998);
        for row in (2..2000).filter(|row| row % 3 != 0) {
            assert_eq!(spool.take(row, &format!("k{row}"), date).expect("kept").bytes, body(row), "row {row}");
        }
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

    /// A write that fails (the disk filled, say) drops the messages not in the file and keeps no more; those
    /// written before it still come back whole, and the rest are left to the producer to render.
    #[test]
    fn after_a_failed_write_it_keeps_what_the_file_holds_and_nothing_more() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let date = Utc::now();
        let mut spool = Spool::in_dir(dir.path(), date, 1 << 30, usize::MAX).unwrap();
        let body = |row: u64| vec![b'a' + (row % 26) as u8; 300_000];
        for row in 2..6 {
            spool.keep(row, &format!("k{row}"), &body(row), None);
        }
        // Four messages of 300 kB: past a megabyte, so written to the file.
        assert_eq!((spool.len(), spool.pending.len()), (4, 0));
        // From here on every write fails: the same unnamed file, opened again for reading only.
        let fd = format!("/proc/self/fd/{}", spool.file.as_raw_fd());
        spool.file = File::open(fd).unwrap();
        for row in 6..11 {
            spool.keep(row, &format!("k{row}"), &body(row), None);
        }
        assert!(spool.full);
        assert_eq!(spool.len(), 4, "the four messages the failed write held are dropped; none is kept after it");
        for row in 2..6 {
            assert_eq!(spool.take(row, &format!("k{row}"), date).expect("in the file").bytes, body(row), "row {row}");
        }
        for row in 6..11 {
            assert!(spool.take(row, &format!("k{row}"), date).is_none(), "row {row} was never written");
        }

        // A failure at the first write, when the producer asks for a message still in memory: nothing is kept.
        let mut late = Spool::in_dir(dir.path(), date, 1 << 30, usize::MAX).unwrap();
        late.keep(2, "a@x", b"first", None);
        late.keep(3, "b@x", b"second", None);
        let fd = format!("/proc/self/fd/{}", late.file.as_raw_fd());
        late.file = File::open(fd).unwrap();
        assert!(late.take(2, "a@x", date).is_none());
        assert!(late.take(3, "b@x", date).is_none());
        assert!(late.full && late.len() == 0);
    }
}
