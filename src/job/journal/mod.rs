//! The durable journal beside a job: JSON lines recording, per recipient, committing → delivered / failed /
//! deferred, so that running the same command again is always safe.
//!
//! Durability without capping throughput: one writer thread owns the file; whoever needs a record durable
//! (a worker about to send a final dot) waits on it, and the writer makes everything queued durable with
//! one `fdatasync` (group commit). Outcomes are appended without waiting: losing one in a crash turns a
//! settled recipient into an uncertain one, which is never resent without the user asking, so it is safe.

pub mod record;
pub mod replay;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

pub use record::{Record, Settled};
pub use replay::{Entry, LastRun, Replayed, State, key_id};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: the journal is damaged ({message}); move it aside to start over")]
    Corrupt { path: PathBuf, line: u64, message: String },
    #[error("{path}: the journal writer stopped after an earlier error")]
    WriterGone { path: PathBuf },
}

impl JournalError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        JournalError::Io { path: path.to_owned(), source }
    }
}

enum Command {
    Append(Record),
    /// Append, then answer once the record is on disk.
    Commit(Record, oneshot::Sender<Result<(), String>>),
}

/// A handle to the journal's writer thread. Cheap to clone; the file closes when the last handle is dropped
/// and [`Journal::close`] has been called (or every sender is gone).
#[derive(Clone)]
pub struct Journal {
    path: PathBuf,
    tx: mpsc::Sender<Command>,
}

pub struct JournalWriter {
    thread: JoinHandle<Result<(), JournalError>>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, replays it, cuts off a torn last line, and starts the writer.
    pub fn open(path: &Path, now: DateTime<Utc>) -> Result<(Journal, JournalWriter, Replayed), JournalError> {
        let err = |e| JournalError::io(path, e);
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(err)?;
        let replayed = Replayed::read(&mut file, now, path)?;
        if replayed.torn_tail {
            file.set_len(replayed.intact_len).map_err(err)?;
            file.sync_data().map_err(err)?;
        }
        let (tx, rx) = mpsc::channel();
        let owned = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_loop(file, &owned, rx))
            .map_err(err)?;
        Ok((Journal { path: path.to_owned(), tx }, JournalWriter { thread }, replayed))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a record; it becomes durable with the next group sync.
    pub fn append(&self, record: Record) -> Result<(), JournalError> {
        self.tx.send(Command::Append(record)).map_err(|_| self.gone())
    }

    /// Queues a record and waits until it (and everything queued before it) is on disk.
    pub async fn commit(&self, record: Record) -> Result<(), JournalError> {
        let (done, wait) = oneshot::channel();
        self.tx.send(Command::Commit(record, done)).map_err(|_| self.gone())?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(JournalError::io(&self.path, std::io::Error::other(message))),
            Err(_) => Err(self.gone()),
        }
    }

    fn gone(&self) -> JournalError {
        JournalError::WriterGone { path: self.path.clone() }
    }
}

impl JournalWriter {
    /// Waits for the writer to drain and sync everything; call after every [`Journal`] handle is dropped.
    pub fn close(self) -> Result<(), JournalError> {
        self.thread.join().unwrap_or_else(|_| panic!("the journal writer panicked"))
    }
}

/// Group commit: block for one command, take everything else already queued, write it all, sync once,
/// then answer every waiter.
fn write_loop(file: File, path: &Path, rx: mpsc::Receiver<Command>) -> Result<(), JournalError> {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let mut waiters = Vec::new();
    let mut line = Vec::with_capacity(512);
    while let Ok(first) = rx.recv() {
        let mut dirty = false;
        for command in std::iter::once(first).chain(rx.try_iter()) {
            let record = match command {
                Command::Append(r) => r,
                Command::Commit(r, done) => {
                    waiters.push(done);
                    r
                }
            };
            line.clear();
            serde_json::to_writer(&mut line, &record).expect("records always serialise");
            line.push(b'\n');
            if let Err(e) = out.write_all(&line) {
                return fail(waiters, path, e);
            }
            dirty = true;
        }
        if dirty && !waiters.is_empty() {
            if let Err(e) = out.flush().and_then(|()| out.get_ref().sync_data()) {
                return fail(waiters, path, e);
            }
            waiters.drain(..).for_each(|w| drop(w.send(Ok(()))));
        }
    }
    out.flush().and_then(|()| out.get_ref().sync_data()).map_err(|e| JournalError::io(path, e))
}

fn fail(waiters: Vec<oneshot::Sender<Result<(), String>>>, path: &Path, e: std::io::Error) -> Result<(), JournalError> {
    for w in waiters {
        let _ = w.send(Err(e.to_string()));
    }
    Err(JournalError::io(path, e))
}

#[cfg(test)]
mod tests;
