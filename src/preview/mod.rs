//! `mailshot preview`: every message written as the `.eml` that `send` would submit, plus `index.html`.
//! `--row N` prints one message to stdout instead. No network, no journal; `send --dry-run` calls this.

mod index;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::check::{self, Reporter};
use crate::jobdef::{Job, Problem};
use crate::recipients::{Entry, Recipient, RowError};

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

/// Writes one `.eml` (and, for HTML bodies, one `.html`) per recipient, and `index.html`.
/// Row problems go to `reporter` and the other rows are still written.
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
    prepare(&dir)?;
    let index_path = dir.join("index.html");
    let mut index = BufWriter::new(File::create(&index_path).map_err(io_error(&index_path))?);
    index::head(&mut index, &job.path.display().to_string()).map_err(io_error(&index_path))?;
    let mut written = Written { dir: dir.clone(), ..Written::default() };
    let csv = job.csv.display().to_string();
    for item in reader {
        let Some(recipient) = admit(item, &csv, reporter) else { continue };
        if options.limit.is_some_and(|limit| written.messages >= limit) {
            break;
        }
        match job.render_parts(&recipient, date) {
            Ok((message, rendered)) => {
                let names = write_message(&dir, &recipient, &message.bytes, rendered.html.as_deref())?;
                let line = index::Line {
                    row: recipient.row,
                    recipient: &display(&recipient),
                    subject: &rendered.subject,
                    size: message.bytes.len(),
                    eml: &names.0,
                    html: names.1.as_deref(),
                };
                index::line(&mut index, &line).map_err(io_error(&index_path))?;
                written.messages += 1;
                written.bytes += message.bytes.len() as u64;
            }
            Err(e) => {
                written.errors += 1;
                reporter.report(check::failure_problem(&csv, recipient.row, &e));
            }
        }
    }
    index::foot(&mut index, written.messages, written.bytes).map_err(io_error(&index_path))?;
    index.flush().map_err(io_error(&index_path))?;
    Ok(written)
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
            Err(e) if e.row == row => return Err(PreviewError::RowUnusable { row, reason: e.to_string() }),
            Ok(_) | Err(_) => {}
        }
    }
    Err(PreviewError::NoSuchRow { row })
}

/// A first-seen valid recipient; invalid rows and duplicates are reported and skipped.
fn admit<W: Write>(item: Result<Entry, RowError>, csv: &str, reporter: &mut Reporter<W>) -> Option<Recipient> {
    match item {
        Ok(Entry::Recipient(r)) => Some(r),
        Ok(Entry::Duplicate { row, first_row, address }) => {
            reporter.report(check::duplicate_problem(csv, row, first_row, &address));
            None
        }
        Err(e) => {
            reporter.report(check::row_problem(csv, &e));
            None
        }
    }
}

fn joined(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("\n")
}

/// Creates the folder and removes what an earlier preview wrote there (only our own file names).
fn prepare(dir: &Path) -> Result<(), PreviewError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "index.html" || (name.starts_with("row-") && (name.ends_with(".eml") || name.ends_with(".html"))) {
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Writes `row-000002-ann_example.com.eml` (and `.html`); returns the file names for the index.
fn write_message(
    dir: &Path,
    r: &Recipient,
    bytes: &[u8],
    html: Option<&str>,
) -> Result<(String, Option<String>), PreviewError> {
    let stem = format!("row-{:06}-{}", r.row, safe(&r.mailbox.envelope()));
    let eml = format!("{stem}.eml");
    fs::write(dir.join(&eml), bytes).map_err(io_error(&dir.join(&eml)))?;
    let html_name = match html {
        Some(body) => {
            let name = format!("{stem}.html");
            fs::write(dir.join(&name), body).map_err(io_error(&dir.join(&name)))?;
            Some(name)
        }
        None => None,
    };
    Ok((eml, html_name))
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
