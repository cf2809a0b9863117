//! `mailshot preview`: `index.html`, the page a person reviews the mailing on (see `index`), with every
//! message `send` would submit embedded; `messages.mbox` with all of them for mail tools (see `mbox`); each
//! attachment as a file beside them; and with `--eml` one `.eml` per message too.
//! `--row N` prints one message to stdout instead. No network, no journal; `send --dry-run` calls this.

mod folder;
mod index;
mod inspect;
mod interrupt;
mod mbox;
mod open;
mod shown;
mod warnings;
mod writer;

pub use open::open_in_browser;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};

use chrono::{DateTime, Utc};

use crate::check::{self, Reporter};
use crate::jobdef::{Job, Problem};
use crate::recipients::Entry;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Default: `preview/` in the job's folder.
    pub out: Option<PathBuf>,
    pub limit: Option<u64>,
    /// Also one `.eml` file per message (one file per message costs the kernel more than rendering).
    pub eml: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub dir: PathBuf,
    pub messages: u64,
    pub bytes: u64,
    /// Rows that could not be rendered (reported through the `Reporter`).
    pub errors: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Recipients(String),
    /// Ctrl-C, SIGTERM or SIGHUP; the exit code is 128 + the signal's number.
    #[error("{}: stopped before the preview was whole; the half-written one was removed", crate::stop_signals::name(*.0))]
    Interrupted(u8),
    #[error("row {row}: there is no recipient on that CSV line")]
    NoSuchRow { row: u64 },
    #[error("row {row}: {reason}")]
    RowUnusable { row: u64, reason: String },
    /// Reported through the `Reporter`, as `check` reports them.
    #[error("the templates read variables the CSV does not give them ({0} errors above); nothing was written")]
    Variables(u64),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PreviewError + '_ {
    move |source| PreviewError::Io { path: path.to_owned(), source }
}

/// The folder preview writes to unless `--out` says otherwise.
pub fn default_dir(job: &Job) -> PathBuf {
    job.path.parent().unwrap_or(Path::new("")).join("preview")
}

/// Writes `index.html`, `messages.mbox`, the attachments, and with `options.eml` one `.eml` per recipient.
/// Row problems go to `reporter` and to the page's summary; the other rows are still written. This thread
/// renders and reads back (`shown`); `writer` writes, beside it.
pub fn write_all<W: Write>(
    job: &Job,
    options: &Options,
    date: DateTime<Utc>,
    reporter: &mut Reporter<W>,
) -> Result<Written, PreviewError> {
    let dir = options.out.clone().unwrap_or_else(|| default_dir(job));
    let reader = job.recipients().map_err(|p| PreviewError::Recipients(joined(&p)))?;
    // Before `prepare`: a refused preview leaves the last one in place.
    let problems = job.variable_problems(reader.columns());
    if !problems.is_empty() {
        let count = problems.len() as u64;
        problems.into_iter().for_each(|p| reporter.report(p));
        return Err(PreviewError::Variables(count));
    }
    let interrupt = interrupt::Interrupt::watch().map_err(io_error(&dir))?;
    let aside = folder::prepare(&dir)?;
    let columns = reader.columns().names.clone();
    let job_name = job.path.display().to_string();
    let target = writer::Target {
        dir: &dir,
        job: index::JobInfo { job: &job_name, campaign: job.campaign.as_deref(), columns: &columns },
        sender: job.from.envelope(),
        date,
    };
    let (items, received) = mpsc::sync_channel(IN_FLIGHT);
    let (spent, written) = mpsc::channel();
    let (errors, totals) = std::thread::scope(|scope| {
        let writing = scope.spawn(|| writer::write(&target, received, spent));
        // Stops early when the writer has (it failed: its error is the one to report) or on a signal.
        let errors = render_all(job, options, date, reader, reporter, (&items, &written), &interrupt);
        drop(items);
        (errors, writing.join().expect("the preview writer does not panic"))
    });
    // A preview that could not be written whole gives way to the one it was replacing, where there is one.
    let totals = match (totals, interrupt.received()) {
        (Ok(totals), None) => totals,
        (Err(e), _) => {
            aside.restore(&dir);
            return Err(e);
        }
        (Ok(_), Some(code)) => {
            aside.restore(&dir);
            return Err(PreviewError::Interrupted(code));
        }
    };
    aside.remove()?;
    Ok(Written { dir, messages: totals.messages, bytes: totals.bytes, errors })
}

/// Rendered messages go to the writer in batches (one wake-up each, not one per message) …
const BATCH: usize = 64;
/// … of which this many may wait: enough to ride out its gzip of a chunk.
const IN_FLIGHT: usize = 8;

/// Renders every row in order and hands it to the writer; returns the rows that could not be rendered.
fn render_all<W: Write>(
    job: &Job,
    options: &Options,
    date: DateTime<Utc>,
    reader: impl Iterator<Item = Result<Entry, crate::recipients::RowError>>,
    reporter: &mut Reporter<W>,
    (items, written): (&SyncSender<Vec<writer::Item>>, &Receiver<Vec<writer::Item>>),
    interrupt: &interrupt::Interrupt,
) -> u64 {
    let csv = job.csv.display().to_string();
    let (mut rendered, mut errors) = (0u64, 0u64);
    let is_list = is_list(job);
    let mut previous = None;
    let mut batch = Vec::with_capacity(BATCH);
    for entry in reader {
        if interrupt.received().is_some() {
            return errors;
        }
        let item = match entry {
            Ok(Entry::Recipient(recipient)) => {
                if options.limit.is_some_and(|limit| rendered >= limit) {
                    break;
                }
                match job.render_parts(&recipient, date) {
                    Ok((message, parts)) => {
                        rendered += 1;
                        let context = warnings::Context {
                            size: message.bytes.len(),
                            size_limit: job.limits.message_bytes,
                            is_list,
                            previous: previous.as_ref(),
                        };
                        let found = warnings::of(&parts, &context);
                        let shown = shown::shown(&recipient, message.bytes, &parts, found, options.eml);
                        previous = Some(parts);
                        writer::Item::Message(Box::new(shown))
                    }
                    Err(e) => {
                        errors += 1;
                        skipped(reporter, check::failure_problem(&csv, recipient.row, &e), recipient.row)
                    }
                }
            }
            Ok(Entry::Duplicate { row, first_row, address }) => {
                skipped(reporter, check::duplicate_problem(&csv, row, first_row, &address), row)
            }
            Ok(Entry::Suppressed { row, address, file }) => {
                skipped(reporter, check::suppressed_problem(&csv, row, &address, &file), row)
            }
            Err(e) => skipped(reporter, check::row_problem(&csv, &e), e.row),
        };
        batch.push(item);
        if batch.len() == BATCH {
            written.try_iter().for_each(drop);
            if items.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
                return errors;
            }
        }
    }
    let _ = items.send(batch);
    errors
}

/// A row left out: reported now, and named in the page's summary.
fn skipped<W: Write>(reporter: &mut Reporter<W>, problem: Problem, row: u64) -> writer::Item {
    let item = writer::Item::Skipped { row, problem: problem.message.clone() };
    reporter.report(problem);
    item
}

/// More than one recipient: a mailing list, which should carry List-Unsubscribe (RFC 8058).
fn is_list(job: &Job) -> bool {
    let Ok(reader) = job.recipients() else { return false };
    reader.filter(|item| matches!(item, Ok(Entry::Recipient(_)))).take(2).count() == 2
}

/// The exact bytes of the message for CSV line `row`.
pub fn one_row(job: &Job, row: u64, date: DateTime<Utc>) -> Result<Vec<u8>, PreviewError> {
    let reader = job.recipients().map_err(|p| PreviewError::Recipients(joined(&p)))?;
    let problems = job.variable_problems(reader.columns());
    if !problems.is_empty() {
        return Err(PreviewError::Recipients(joined(&problems)));
    }
    for item in reader {
        match item {
            Ok(Entry::Recipient(r)) if r.row == row => {
                let unusable = |e: &dyn std::fmt::Display| PreviewError::RowUnusable { row, reason: e.to_string() };
                return job.render(&r, date).map(|m| m.bytes).map_err(|e| unusable(&e));
            }
            Ok(Entry::Duplicate { row: r, first_row, .. }) if r == row => {
                let reason = format!("a duplicate of row {first_row}, which is the one sent");
                return Err(PreviewError::RowUnusable { row, reason });
            }
            Ok(Entry::Suppressed { row: r, file, .. }) if r == row => {
                let reason = format!("suppressed by {}; it is not sent", file.display());
                return Err(PreviewError::RowUnusable { row, reason });
            }
            Err(e) if e.row == row => return Err(PreviewError::RowUnusable { row, reason: e.to_string() }),
            Ok(_) | Err(_) => {}
        }
    }
    Err(PreviewError::NoSuchRow { row })
}

fn joined(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("\n")
}
