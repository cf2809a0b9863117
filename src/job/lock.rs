//! Only one run of a job at a time: an advisory lock (flock) on a file beside the job.
//!
//! The kernel drops the lock when its process dies, however it dies, so a lock left by a killed run never
//! blocks the next one; the PID written inside only serves to name the running process in the message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: another mailshot run of this job is in progress ({holder}); wait for it to finish")]
    Held { path: PathBuf, holder: String },
    #[error("{path}: cannot take the job's lock: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
    let io = |source| LockError::Io { path: path.to_owned(), source };
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
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
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    write!(file, "pid {} on {}, started {started}", std::process::id(), hostname()).map_err(io)?;
    Ok(RunLock { _file: file })
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
        acquire(&path).expect("free again once the first run ends");
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
