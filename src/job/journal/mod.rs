//! The durable journal beside a job: JSON lines recording, per recipient, committing → delivered / failed /
//! deferred, so that running the same command again is always safe.
//!
//! Durability without capping throughput: one writer thread owns the file, takes the records queued for it
//! (`queue`) and makes everything written durable with one `fdatasync` (group commit) as soon as someone
//! waits for a record, or [`SYNC_DELAY`] after the writer took, or could have taken, a record (a sync under
//! way finishes first); then it publishes how far the file is durable. Appending never waits, and wakes
//! the writer only when it must (a sync request, a backlog, or the first record after a quiet spell);
//! whoever needs a record on disk (a worker about to send a final dot) waits for its [`Ticket`]. A
//! committing record is appended, and its sync requested, when its message is about to go out (see
//! `pending`), so the sync overlaps the previous message's round trip. Losing an outcome in a crash turns a
//! settled recipient into an uncertain one, which is never resent without the user asking: safe.

pub mod last_day;
mod prezeroed;
mod queue;
pub mod record;
pub mod replay;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use queue::{Command, Empty, Queue, Wait};

pub use record::{BOUNCE_RUN, Bounce, BounceKind, Record, Settled};
pub use replay::{Detail, JournalEntry, JournalState, KeyId, LastRun, Replayed, UNCERTAIN_REPLY, key_id};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path}, line {line}: the journal is damaged ({message}). Nothing was sent. `mailshot repair JOB.toml` \
         cuts it at this line, keeps the rest beside it and marks every recipient named there as uncertain \
         (do not move the journal away: a new one would send everyone again)"
    )]
    Corrupt { path: PathBuf, line: u64, message: String },
    #[error("{path}: the journal writer stopped after an earlier error")]
    WriterGone { path: PathBuf },
}

impl JournalError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        JournalError::Io { path: path.to_owned(), source }
    }

    /// The disk is full: a condition of the machine, not of the job (run again once there is room).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, JournalError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull)
    }
}

/// The longest a written record waits for its sync when nobody is waiting for it. Longer means fewer syncs
/// (each costs ~150 µs of kernel work here) and needs a deeper queue ahead of the workers (producer::queue_depth).
pub const SYNC_DELAY: Duration = Duration::from_millis(5);

/// A record's place in the journal: durable once the writer has synced that far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// How far the file is durable (records counted from 1), or why the writer stopped.
type Durable = Result<u64, (std::io::ErrorKind, String)>;

/// A handle to the journal's writer thread. Cheap to clone; the writer drains, syncs and stops once every
/// handle is dropped ([`JournalWriter::close`] waits for that).
#[derive(Clone)]
pub struct Journal {
    path: PathBuf,
    handles: Arc<Handles>,
    durable: watch::Receiver<Durable>,
}

/// Shared by every clone of a [`Journal`]: when the last one goes, the writer drains, syncs and stops.
struct Handles(Arc<Queue>);

impl Drop for Handles {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Asks for the syncs [`Journal::sync_soon`] noted when it goes: from the task that owns it once the
/// runtime runs that task, or at once off a runtime, or if the runtime drops the task unrun (shutting
/// down), so that a wanted sync is never left unasked. It holds the queue, not a handle: a pending ask
/// does not keep the writer open (closing syncs everything anyway).
struct Ask(Arc<Queue>);

impl Drop for Ask {
    fn drop(&mut self) {
        self.0.ask_wanted();
    }
}

/// Tells the handles that the writer is gone however its thread ends, a panic included: appending is then
/// refused and a finish is answered at once, as when a channel's receiver goes.
struct WriterGone(Arc<Queue>);

impl Drop for WriterGone {
    fn drop(&mut self) {
        self.0.writer_gone();
    }
}

pub struct JournalWriter {
    thread: JoinHandle<Result<(), JournalError>>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, replays it, cuts off a torn last line, and starts the writer.
    pub fn open(path: &Path, now: DateTime<Utc>) -> Result<(Journal, JournalWriter, Replayed), JournalError> {
        let err = |e| JournalError::io(path, e);
        let existed = path.exists();
        // Not `append`: the writer overwrites the zeros it laid ahead of its records (see `prezeroed`).
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(err)?;
        if !existed {
            // A new journal's name must survive a power loss too, or its first records (and the knowledge
            // that they were sent) vanish with it.
            sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(err)?;
        }
        let replayed = Replayed::read(&mut file, now, path)?;
        if replayed.torn_tail {
            file.set_len(replayed.intact_len).map_err(err)?;
            file.sync_data().map_err(err)?;
        }
        let sink = prezeroed::Prezeroed::new(file, replayed.intact_len).map_err(err)?;
        let (journal, writer) = start(sink, path).map_err(err)?;
        Ok((journal, writer, replayed))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a record; it becomes durable with the next group sync, which the ticket tells.
    pub fn append(&self, record: Record) -> Result<Ticket, JournalError> {
        self.queue().record(record).map(Ticket).ok_or_else(|| self.gone())
    }

    fn queue(&self) -> &Queue {
        &self.handles.0
    }

    /// Asks for a sync covering `ticket` soon, without waiting for it (group commit: requests that arrive
    /// while a sync runs are covered by the next one).
    ///
    /// Off a runtime the request goes out at once. On one it goes out from a task of its own: on the
    /// current-thread runtime `send` uses, that is after the tasks ready now have run, so the connections
    /// served in the same turn ask once and wake the writer once.
    pub fn sync_soon(&self, ticket: Ticket) {
        if !self.durable.borrow().as_ref().is_ok_and(|&n| n < ticket.0) || !self.queue().want(ticket.0) {
            return;
        }
        let ask = Ask(self.handles.0.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { drop(ask) });
        }
    }

    /// Waits until the record behind `ticket` (and every one before it) is on disk.
    pub fn durable(&self, ticket: Ticket) -> impl Future<Output = Result<(), JournalError>> + Send + 'static {
        let (mut durable, path) = (self.durable.clone(), self.path.clone());
        self.sync_soon(ticket);
        async move {
            let reached = durable.wait_for(|d| d.as_ref().map_or(true, |&n| n >= ticket.0)).await;
            match reached.as_deref() {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((kind, message))) => Err(JournalError::io(&path, std::io::Error::new(*kind, message.clone()))),
                Err(_) => Err(JournalError::WriterGone { path }),
            }
        }
    }

    /// Waits until every record appended so far is on disk.
    pub fn sync_all(&self) -> impl Future<Output = Result<(), JournalError>> + Send + 'static {
        let last = Ticket(self.queue().last_ticket());
        self.durable(last)
    }

    /// Waits until every record appended so far is on disk and the file is left as a close leaves it: for a
    /// process about to quit without closing the writer.
    pub fn finish_now(&self) -> impl Future<Output = Result<(), JournalError>> + Send + 'static {
        let (done, finished) = tokio::sync::oneshot::channel();
        let sent = self.queue().finish(done);
        let (durable, path) = (self.durable.clone(), self.path.clone());
        async move {
            if sent && finished.await.is_ok() {
                return Ok(());
            }
            match &*durable.borrow() {
                Err((kind, message)) => Err(JournalError::io(&path, std::io::Error::new(*kind, message.clone()))),
                Ok(_) => Err(JournalError::WriterGone { path }),
            }
        }
    }

    /// Appends a record and waits until it is on disk.
    pub async fn commit(&self, record: Record) -> Result<(), JournalError> {
        let ticket = self.append(record)?;
        self.durable(ticket).await
    }

    fn gone(&self) -> JournalError {
        JournalError::WriterGone { path: self.path.clone() }
    }
}

/// Where the writer's bytes go: the journal file ([`prezeroed::Prezeroed`]), or a test's stand-in that
/// fails on cue.
trait Sink: Write + Send + 'static {
    /// Makes everything written so far durable (`fdatasync` for a file).
    fn sync(&mut self) -> std::io::Result<()>;

    /// The last sync, when the writer closes.
    fn finish(&mut self) -> std::io::Result<()> {
        self.sync()
    }
}

/// Starts the writer thread over `sink` (the journal file, already replayed and positioned at its end).
fn start(sink: impl Sink, path: &Path) -> std::io::Result<(Journal, JournalWriter)> {
    let queue = Arc::new(Queue::new());
    let (durable_tx, durable) = watch::channel(Ok(0));
    let (owned, writers) = (path.to_owned(), queue.clone());
    let thread = std::thread::Builder::new().name("journal".into()).spawn(move || {
        let gone = WriterGone(writers);
        write_loop(sink, &owned, &gone.0, durable_tx)
    })?;
    Ok((Journal { path: path.to_owned(), handles: Arc::new(Handles(queue)), durable }, JournalWriter { thread }))
}

impl JournalWriter {
    /// Waits for the writer to drain and sync everything; call after every [`Journal`] handle is dropped.
    pub fn close(self) -> Result<(), JournalError> {
        self.thread.join().unwrap_or_else(|_| panic!("the journal writer panicked"))
    }
}

/// Group commit: write records as they are taken; sync when asked, or once records have waited
/// [`SYNC_DELAY`], then publish how far the file is durable. Ends, synced, when every handle is gone.
/// One function on purpose: `written`, `synced` and the deadline are the group commit's whole state, and
/// the invariant (publish only what was synced) reads in one place.
fn write_loop<S: Sink>(
    sink: S,
    path: &Path,
    queue: &Queue,
    durable: watch::Sender<Durable>,
) -> Result<(), JournalError> {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    let mut line = Vec::with_capacity(512);
    let (mut written, mut synced) = (0u64, 0u64);
    let mut deadline: Option<Instant> = None;
    let mut finished = Vec::new();
    let mut batch = Vec::new();
    let mut wait = Wait::Sleeps;
    loop {
        // A doze that ends with records: they were queued during it, so they have waited long enough.
        let (mut sync_now, closed, quiet) = match queue.take(wait, &mut batch) {
            Ok(doze_over) => (doze_over, false, false),
            Err(Empty::Timeout) => (true, false, true),
            Err(Empty::Closed) => (true, true, false),
        };
        let mut apply = |batch: &mut Vec<Command>, sync_now: &mut bool| -> std::io::Result<()> {
            for command in batch.drain(..) {
                match command {
                    Command::Record(record) => {
                        write_record(&mut out, &mut line, &record)?;
                        written += 1;
                    }
                    Command::Sync(wanted) => *sync_now |= wanted > synced,
                    Command::Finish(done) => {
                        finished.push(done);
                        *sync_now = true;
                    }
                }
            }
            Ok(())
        };
        apply(&mut batch, &mut sync_now).or_else(|e| fail(&durable, path, e))?;
        if sync_now && !closed {
            // Group commit: whatever else was queued meanwhile (other connections' records) rides on this
            // sync, instead of each record paying for one of its own.
            queue.take_now(&mut batch);
            apply(&mut batch, &mut sync_now).or_else(|e| fail(&durable, path, e))?;
        }
        queue::shrink(&mut batch);
        if written > synced {
            let at = *deadline.get_or_insert_with(|| Instant::now() + SYNC_DELAY);
            sync_now |= Instant::now() >= at;
        }
        // The last sync: the writer closes, or the process is about to quit (a second signal).
        let last = closed || !finished.is_empty();
        if (sync_now && written > synced) || last {
            let durable_now = |sink: &mut S| if last { sink.finish() } else { sink.sync() };
            if let Err(e) = out.flush().and_then(|()| durable_now(out.get_mut())) {
                return fail(&durable, path, e);
            }
            synced = written;
            deadline = None;
            let _ = durable.send_replace(Ok(synced));
            for done in finished.drain(..) {
                let _ = done.send(());
            }
        }
        if closed {
            return Ok(());
        }
        // Unsynced records wait for their deadline; after activity the writer dozes (records queued then
        // need no wake-up); after a doze that brought nothing it sleeps until the next record.
        wait = match deadline {
            Some(at) => Wait::Dozes(at),
            None if quiet => Wait::Sleeps,
            None => Wait::Dozes(Instant::now() + SYNC_DELAY),
        };
    }
}

fn write_record(out: &mut impl Write, line: &mut Vec<u8>, record: &Record) -> std::io::Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, record).expect("records always serialise");
    line.push(b'\n');
    out.write_all(line)
}

/// Names for a file or folder set aside at `now` (`--fresh`, `repair`), never one an earlier one took:
/// `{prefix}{UTC}{suffix}`, then `{prefix}{UTC}-1{suffix}`, `-2` … for the caller to try in turn.
pub fn set_aside_names(prefix: &str, now: DateTime<Utc>, suffix: &str) -> impl Iterator<Item = String> {
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let (prefix, suffix) = (prefix.to_owned(), suffix.to_owned());
    (0u32..).map(move |n| match n {
        0 => format!("{prefix}{stamp}{suffix}"),
        n => format!("{prefix}{stamp}-{n}{suffix}"),
    })
}

/// Makes a folder's entries durable (a file created, linked or removed in it): `fsync` on the folder.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all()
}

fn fail(durable: &watch::Sender<Durable>, path: &Path, e: std::io::Error) -> Result<(), JournalError> {
    let _ = durable.send_replace(Err((e.kind(), e.to_string())));
    Err(JournalError::io(path, e))
}

#[cfg(test)]
mod tests;
