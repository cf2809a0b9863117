//! `mailshot preview`: every message written as the `.eml` that `send` would submit (attachments beside it),
//! plus `index.html`, the page a person reviews the mailing on (see `index`).
//! `--row N` prints one message to stdout instead. No network, no journal; `send --dry-run` calls this.

mod folder;
mod index;
mod inspect;
mod open;
mod warnings;

pub use open::open_in_browser;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::check::{self, Reporter};
use crate::jobdef::{Job, Problem};
use crate::recipients::{Entry, Recipient};
use crate::render::Rendered;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Default: `preview/` in the job's folder.
    pub out: Option<PathBuf>,
    pub limit: Option<u64>,
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

/// Writes one `.eml` per recipient (and its attachments beside it), and `index.html`.
/// Row problems go to `reporter` and to the page's summary; the other rows are still written.
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
    let aside = folder::prepare(&dir)?;
    let index_path = dir.join("index.html");
    let file = BufWriter::new(File::create(&index_path).map_err(io_error(&index_path))?);
    let columns = reader.columns().names.clone();
    let info =
        index::JobInfo { job: &job.path.display().to_string(), campaign: job.campaign.as_deref(), columns: &columns };
    let mut page = index::Page::start(file, &info).map_err(io_error(&index_path))?;
    let mut written = Written { dir: dir.clone(), ..Written::default() };
    let csv = job.csv.display().to_string();
    let is_list = is_list(job);
    let mut previous = None;
    for item in reader {
        let recipient = match item {
            Ok(Entry::Recipient(r)) => r,
            Ok(Entry::Duplicate { row, first_row, address }) => {
                skip(&mut page, reporter, row, check::duplicate_problem(&csv, row, first_row, &address));
                continue;
            }
            Ok(Entry::Suppressed { row, address, file }) => {
                skip(&mut page, reporter, row, check::suppressed_problem(&csv, row, &address, &file));
                continue;
            }
            Err(e) => {
                skip(&mut page, reporter, e.row, check::row_problem(&csv, &e));
                continue;
            }
        };
        if options.limit.is_some_and(|limit| written.messages >= limit) {
            break;
        }
        match job.render_parts(&recipient, date) {
            Ok((message, rendered)) => {
                let context = warnings::Context {
                    size: message.bytes.len(),
                    size_limit: job.limits.message_bytes,
                    is_list,
                    previous: previous.as_ref(),
                };
                let found = warnings::of(&rendered, &context);
                let shown = write_message(&dir, &recipient, message.bytes, &rendered, found)?;
                page.add(&shown).map_err(io_error(&index_path))?;
                written.messages += 1;
                written.bytes += shown.size as u64;
                previous = Some(rendered);
            }
            Err(e) => {
                written.errors += 1;
                skip(&mut page, reporter, recipient.row, check::failure_problem(&csv, recipient.row, &e));
            }
        }
    }
    let mut file = page.finish().map_err(io_error(&index_path))?;
    file.flush().map_err(io_error(&index_path))?;
    aside.remove()?;
    Ok(written)
}

/// A row that is not in the list: reported, and named in the page's summary.
fn skip<F: Write, W: Write>(page: &mut index::Page<F>, reporter: &mut Reporter<W>, row: u64, problem: Problem) {
    page.skipped(row, problem.message.clone());
    reporter.report(problem);
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

/// Writes `row-000002-ann_example.com.eml` and its attachments (`….att1-ticket.pdf`); returns the page's view.
fn write_message(
    dir: &Path,
    r: &Recipient,
    bytes: Vec<u8>,
    rendered: &Rendered,
    warnings: Vec<warnings::Warning>,
) -> Result<index::Message, PreviewError> {
    let stem = format!("row-{:06}-{}", r.row, safe(&r.mailbox.envelope()));
    let eml = format!("{stem}.eml");
    fs::write(dir.join(&eml), &bytes).map_err(io_error(&dir.join(&eml)))?;
    let inspected = inspect::inspect(&bytes);
    let mut attachments = Vec::with_capacity(inspected.attachments.len());
    for (i, attachment) in inspected.attachments.into_iter().enumerate() {
        let file = format!("{stem}.att{}-{}", i + 1, safe(&attachment.name));
        fs::write(dir.join(&file), &attachment.bytes).map_err(io_error(&dir.join(&file)))?;
        attachments.push((attachment, file));
    }
    Ok(index::Message {
        row: r.row,
        recipient: display(r),
        subject: rendered.subject.clone(),
        size: bytes.len(),
        warnings,
        fields: r.fields.clone(),
        eml,
        headers: inspected.headers,
        text: rendered.text.clone(),
        html: rendered.html.clone(),
        raw: bytes,
        attachments,
    })
}

/// A file-name-safe form of an address: ASCII letters, digits, `@`, `.`, `-`; anything else `_`.
fn safe(address: &str) -> String {
    address.chars().take(80).map(|c| if c.is_ascii_alphanumeric() || "@.-".contains(c) { c } else { '_' }).collect()
}

fn display(r: &Recipient) -> String {
    match &r.mailbox.name {
        Some(name) => format!("{name} <{}>", r.mailbox.header_address()),
        None => r.mailbox.header_address(),
    }
}
