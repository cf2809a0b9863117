//! Only one run of a job at a time: an advisory lock (flock) on a file beside the job.
//!
//! The kernel drops the lock when its process dies, however it dies, so a lock left by a killed run never
//! blocks the next one; the PID written inside only serves to name the running process in the message.
//!
//! A run that ends (cleanly, or after a signal's orderly stop) removes the file, while still holding the
//! lock. That opens the classic race: B opens `job.lock`, A unlinks it and lets go, B's flock then succeeds
//! on a file no path names any more, and C creates a new `job.lock` and locks that: two holders. So a lock
//! counts only when the path still names the inode that was locked (fstat against stat, device and inode);
//! otherwise it is dropped and taken again on whatever the path names now. A run that dies without
//! unwinding (SIGKILL, a second signal) leaves the file, which blocks nobody.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: another mailshot run of this job is in progress ({holder}); wait for it to finish")]
    Held { path: PathBuf, holder: String },
    #[error("{path}: cannot take the job's lock: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// How often the lock is taken again after the file it locked was removed under it (each time means another
/// run finished meanwhile, so this is never reached in practice).
const ATTEMPTS: usize = 100;

/// Held for as long as this value lives; dropping it removes the file.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl Drop for RunLock {
    /// Removes `job.lock` while still holding it, so that a process that opened it meanwhile finds the
    /// path gone or naming another file, and takes the lock anew.
    fn drop(&mut self) {
        if names(&self.path, &self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
    let io = |source| LockError::Io { path: path.to_owned(), source };
    for _ in 0..ATTEMPTS {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        if let Some(lock) = lock_opened(path, file)? {
            return Ok(lock);
        }
    }
    Err(io(std::io::Error::other(format!("the lock file was replaced {ATTEMPTS} times while it was being taken"))))
}

/// Locks `file`, opened from `path`: the lock, or `None` when the path no longer names that file (a run
/// removed it after `file` was opened): then the caller opens the path again.
fn lock_opened(path: &Path, mut file: File) -> Result<Option<RunLock>, LockError> {
    let io = |source| LockError::Io { path: path.to_owned(), source };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "process unknown".to_owned(),
                text => text.to_owned(),
            };
            return Err(LockError::Held { path: path.to_owned(), holder });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    if !names(path, &file) {
        return Ok(None);
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    write!(file, "pid {} on {}, started {started}", std::process::id(), hostname()).map_err(io)?;
    Ok(Some(RunLock { file, path: path.to_owned() }))
}

/// Whether `path` names the very file `file` is (same device and inode).
fn names(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => (named.dev(), named.ino()) == (open.dev(), open.ino()),
        _ => false,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.lock");
        let held = acquire(&path).unwrap();
        match acquire(&path) {
            Err(LockError::Held { holder, .. }) => {
                assert!(holder.contains(&format!("pid {}", std::process::id())), "{holder}")
            }
            other => panic!("second lock: {other:?}"),
        }
        drop(held);
        assert!(!path.exists(), "a lock let go removes its file");
        acquire(&path).expect("free again once the first run ends");
    }

    /// B opened job.lock before A removed it; C then makes a new one. B must not count its flock on the
    /// removed file: only one of B and C holds the lock.
    #[test]
    fn a_file_removed_after_it_was_opened_is_not_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.lock");
        let a = acquire(&path).unwrap();
        let opened_by_b = File::options().read(true).write(true).open(&path).unwrap();
        drop(a);
        let c = acquire(&path).expect("C takes the lock on a new file");
        assert!(lock_opened(&path, opened_by_b).unwrap().is_none(), "B's flock on the removed file is not a lock");
        assert!(matches!(acquire(&path), Err(LockError::Held { .. })), "B, trying again, meets C's lock");
        drop(c);
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_lock_file_from_a_dead_process_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.lock");
        std::fs::write(&path, "pid 999999 on elsewhere, started 2026-01-01T00:00:00Z").unwrap();
        let _lock = acquire(&path).expect("nobody holds the flock");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&format!("pid {} ", std::process::id())), "{text}");
    }
}
