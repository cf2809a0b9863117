//! `mailshot check`: read the whole job without the network and report every problem at once.
//!
//! The CSV is streamed: each row is parsed, rendered and built into its full message (to catch runtime
//! template errors, missing attachments and header injection, and to total the bytes), then dropped (`send`
//! keeps them for its producer: `job::spool`).
//! `send` runs `check_job` first and refuses to send when it finds errors.

mod report;
pub mod shards;

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

pub use report::{Reporter, SHOWN_PER_CLASS};

use crate::config::{self, JobFile, smtp::SmtpConfigError};
use crate::jobdef::{self, Job, MessageFailure, Problem};
use crate::message::{AttachmentError, OutgoingMessage};
use crate::recipients::{CopyKind, Entry, Recipient, RecipientReader, RowError, RowErrorKind};
use crate::render::{RenderError, Rendered};

/// What `check` counts. `valid` rows are first-seen recipients whose message could be built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    pub valid: u64,
    pub duplicates: u64,
    /// Rows on a suppression list (`[recipients] exclude`): not sent.
    pub suppressed: u64,
    pub errors: u64,
    pub warnings: u64,
    /// The total size of the valid messages, as they would be submitted.
    pub bytes: u64,
    /// The valid rows' copies (`[recipients] cc`, `bcc`, `[message] bcc`): more envelope recipients.
    pub cc: u64,
    pub bcc: u64,
    pub built: Built,
}

/// Whether the messages were built; when not, rows were still checked, and this says what to fix first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Built {
    /// The job file had errors.
    #[default]
    NotJobFile,
    /// The templates read variables the CSV's header does not give them (`Job::variable_problems`).
    NotVariables,
    Yes,
}

impl Summary {
    pub fn is_clean(&self) -> bool {
        self.errors == 0
    }

    fn count_valid(&mut self, r: &Recipient) {
        self.valid += 1;
        let cc = r.copies.iter().filter(|c| c.kind == CopyKind::Cc).count() as u64;
        self.cc += cc;
        self.bcc += r.copies.len() as u64 - cc;
    }
}

/// Loads the job at `path` and checks it; problems and the summary are written to `out`.
/// Even when the job file has errors, the CSV is still read for its own problems if it can be found.
pub fn run<W: Write>(path: &Path, out: W, date: DateTime<Utc>) -> Summary {
    let mut reporter = Reporter::new(out);
    secrets(path, &mut reporter);
    let summary = match Job::load(path) {
        Ok(job) => check_job(&job, &mut reporter, date),
        Err(failure) => {
            failure.problems.into_iter().for_each(|p| reporter.report(p));
            match failure.recipients {
                Some(source) => match jobdef::open_recipients(&source) {
                    Ok(reader) => scan(reader, None, &source.csv, &mut reporter, date),
                    Err(problems) => report_all(&mut reporter, problems),
                },
                None => Summary::default(),
            }
        }
    };
    let summary = Summary { errors: reporter.errors, warnings: reporter.warnings, ..summary };
    let mut out = reporter.finish();
    let _ = writeln!(out, "{}", summary_line(&summary));
    summary
}

/// `[smtp]`'s credentials as `send` will load them (`password_env` set and not blank, `password_file` a
/// readable regular file, not blank and not readable by others), the secret never printed.
/// `password_command` is not run: it may have side effects (a prompt, a token refresh, an audit log), so a
/// note says that it was not checked. (`send` checks and loads it after this check.)
fn secrets<W: Write>(path: &Path, reporter: &mut Reporter<W>) {
    // A job file that cannot be read or parsed is reported by `Job::load`.
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let Ok(file) = JobFile::parse(path, &text) else { return };
    let dir = path.parent().unwrap_or(Path::new(""));
    let smtp = &file.smtp;
    let place = |key: &str| match config::key_line(&text, &["smtp", key]) {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    let key = match (&smtp.password_env, &smtp.password_file, &smtp.password_command) {
        (Some(_), _, _) => "password_env",
        (_, Some(_), _) => "password_file",
        (_, _, Some(_)) => "password_command",
        _ => "username",
    };
    match smtp.check_credentials(dir) {
        Ok(None) => {}
        Ok(Some(command)) => {
            let note = format!(
                "note: {}: [smtp] password_command `{command}` was not run (it may have side effects); \
                 `send` and `probe` run it",
                place(key)
            );
            let _ = writeln!(reporter.out(), "{}", crate::output::escape_controls(&note));
        }
        // Reported by `Job::load`, with the rest of the job file's problems.
        Err(SmtpConfigError::PasswordKeys(_)) => {}
        Err(e) => reporter.report(Problem::once(format!("{}: {e}", place(key)))),
    }
    if let Some(warning) = smtp.password_file_warning(dir) {
        reporter.report(Problem::warning(format!("{}: {warning}", place("password_file")), "password_file mode"));
    }
    // What the connector refuses before a byte is sent (server and EHLO names, ca_file), as `send` would.
    let refused = match smtp.connection_config(dir) {
        Err(e) => Some(("ca_file", e.to_string())),
        Ok(config) => crate::smtp::Connector::new(config).err().map(|e| {
            let key = match &e {
                crate::smtp::ConnectError::EhloName(_) => "ehlo_name",
                crate::smtp::ConnectError::Tls(crate::smtp::TlsError::TrustAnchor { .. }) => "ca_file",
                _ => "server",
            };
            (key, format!("[smtp] {key}: {e}"))
        }),
    };
    if let Some((key, e)) = refused {
        reporter.report(Problem::once(format!("{}: {e}", place(key))));
    }
}

/// Checks every row of a loaded job (what `send` runs before sending anything). When the templates read
/// variables the CSV does not have, that is reported once per template and the rows are only read: every
/// row would fail the same way.
pub fn check_job<W: Write>(job: &Job, reporter: &mut Reporter<W>, date: DateTime<Utc>) -> Summary {
    check_job_keeping(job, reporter, date, &mut |_, _| {})
}

/// [`check_job`], handing each message built (with its rendered values) to `keep`: `send` keeps them for
/// its producer (`job::spool`) instead of rendering everything twice.
pub fn check_job_keeping<W: Write>(
    job: &Job,
    reporter: &mut Reporter<W>,
    date: DateTime<Utc>,
    keep: Keep<'_>,
) -> Summary {
    let summary = match job.recipients() {
        Ok(reader) => match job.variable_problems(reader.columns()) {
            problems if problems.is_empty() => {
                Summary { built: Built::Yes, ..scan(reader, Some((job, keep)), &job.csv, reporter, date) }
            }
            problems => {
                problems.into_iter().for_each(|p| reporter.report(p));
                Summary { built: Built::NotVariables, ..scan(reader, None, &job.csv, reporter, date) }
            }
        },
        Err(problems) => Summary { built: Built::Yes, ..report_all(reporter, problems) },
    };
    Summary { errors: reporter.errors, warnings: reporter.warnings, ..summary }
}

fn report_all<W: Write>(reporter: &mut Reporter<W>, problems: Vec<Problem>) -> Summary {
    problems.into_iter().for_each(|p| reporter.report(p));
    Summary::default()
}

/// What receives each message a check built.
pub type Keep<'a> = &'a mut dyn FnMut(&OutgoingMessage, &Rendered);

/// Streams the rows; with a job, renders each message too. One row in memory at a time.
fn scan<R, W>(
    reader: RecipientReader<R>,
    mut job: Option<(&Job, Keep<'_>)>,
    csv: &Path,
    rep: &mut Reporter<W>,
    date: DateTime<Utc>,
) -> Summary
where
    R: std::io::Read,
    W: Write,
{
    let mut s = Summary::default();
    let csv = csv.display().to_string();
    for item in reader {
        s.rows += 1;
        match item {
            Err(e) => rep.report(row_problem(&csv, &e)),
            Ok(Entry::Duplicate { row, first_row, address }) => {
                s.duplicates += 1;
                rep.report(duplicate_problem(&csv, row, first_row, &address));
            }
            Ok(Entry::Suppressed { row, address, file }) => {
                s.suppressed += 1;
                rep.report(suppressed_problem(&csv, row, &address, &file));
            }
            Ok(Entry::Recipient(r)) => match job.as_mut().map(|(job, keep)| (job.render_parts(&r, date), keep)) {
                None => s.count_valid(&r),
                Some((Ok((message, rendered)), keep)) => {
                    s.count_valid(&r);
                    s.bytes += message.bytes.len() as u64;
                    keep(&message, &rendered);
                }
                Some((Err(e), _)) => rep.report(failure_problem(&csv, r.row, &e)),
            },
        }
    }
    if s.rows == 0 {
        // A header and nothing else is most likely the wrong export, not a mailing to nobody: an error (exit 2).
        rep.report(Problem::once(format!("{csv}: no recipients: the file has a header row and no rows")));
    }
    s
}

/// A CSV row problem, placed as `file:row:` (the row is the CSV line number).
pub fn row_problem(csv: &str, e: &RowError) -> Problem {
    Problem::error(format!("{csv}:{}: {}", e.row, row_detail(e)), row_class(e))
}

/// A repeated address: a warning; only the first row is sent.
pub fn duplicate_problem(csv: &str, row: u64, first_row: u64, address: &str) -> Problem {
    let message = format!("{csv}:{row}: duplicate of row {first_row} ({address}); it is sent once");
    Problem::warning(message, "duplicate address (sent once)")
}

/// A row on a suppression list: listed (the first few), not sent, not an error.
pub fn suppressed_problem(csv: &str, row: u64, address: &str, file: &Path) -> Problem {
    let message = format!("{csv}:{row}: {address} is suppressed by {}; it is not sent", file.display());
    Problem::note(message, "suppressed (not sent)")
}

/// A row whose message could not be made.
pub fn failure_problem(csv: &str, row: u64, e: &MessageFailure) -> Problem {
    Problem::error(format!("{csv}:{row}: {e}"), failure_class(e))
}

fn row_detail(e: &RowError) -> String {
    match &e.column {
        Some(column) => format!("column `{column}`: {}", e.kind),
        None => e.kind.to_string(),
    }
}

/// The kind of a row problem without its values, for grouping repeats.
fn row_class(e: &RowError) -> String {
    let column = e.column.as_deref().unwrap_or("");
    match &e.kind {
        RowErrorKind::Address { error, .. } => format!("column `{column}`: invalid address: {error}"),
        RowErrorKind::Ragged { expected, .. } => format!("rows without {expected} fields"),
        RowErrorKind::NameConflict { .. } => format!("column `{column}`: display name conflicts"),
        RowErrorKind::DuplicateKey { .. } => "key used twice".into(),
        RowErrorKind::CopySeparator { .. } => format!("column `{column}`: copies not separated by `,`"),
        RowErrorKind::CopyIsOwnAddress { .. } => format!("column `{column}`: a copy to the row's own address"),
        RowErrorKind::DuplicateCopy { .. } => format!("column `{column}`: an address twice among the copies"),
        RowErrorKind::TooManyCopies { limit, .. } => format!("more copies than [recipients] max_copies ({limit})"),
        kind => format!("column `{column}`: {kind}"),
    }
}

fn failure_class(e: &MessageFailure) -> String {
    match e {
        MessageFailure::Render(RenderError::Template { origin, line, message }) => {
            format!("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())
        }
        MessageFailure::Attachment { origin, error: AttachmentError::OwnFile { role, .. } } => {
            format!("{origin}: attachment is {role}")
        }
        MessageFailure::Attachment { origin, error } => {
            format!("{origin}: {}", format!("{error:?}").split(' ').next().unwrap_or(""))
        }
        MessageFailure::TooLarge { limit, .. } => format!("messages over [limits] message_bytes ({limit})"),
        other => other.to_string(),
    }
}

pub fn summary_line(s: &Summary) -> String {
    let copies = match s.cc + s.bcc {
        0 => String::new(),
        n => format!(" ({n} copies: {} Cc, {} Bcc)", s.cc, s.bcc),
    };
    // Suppressed rows only where a job has any, so that jobs without lists read as they always did.
    let suppressed = if s.suppressed > 0 { format!(", {} suppressed", s.suppressed) } else { String::new() };
    let counts = format!(
        "{} rows: {} valid{copies}, {} duplicates{suppressed}, {} errors, {} warnings",
        s.rows, s.valid, s.duplicates, s.errors, s.warnings
    );
    match s.built {
        Built::Yes => format!("{counts}; {} in {} messages", human_bytes(s.bytes), s.valid),
        Built::NotJobFile => format!("{counts}; messages not built (fix the job file first)"),
        Built::NotVariables => format!("{counts}; messages not built (fix the variables first)"),
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}
