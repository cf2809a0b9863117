//! The job file (`job.toml`), second stage of configuration: typed sections with defaults, unknown keys refused.
//!
//! Each section lives in its own file. Paths inside the job file are relative to the job file's folder;
//! resolving them is the caller's job (see `jobdef::Job::load`), so this module only parses.

pub mod limits;
pub mod message;
pub mod numbers;
pub mod rate;
pub mod recipients;
pub mod retry;
pub mod seconds;
pub mod smtp;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use limits::{Limits, LimitsSection};
pub use message::MessageSection;
pub use rate::RateSection;
pub use recipients::RecipientsSection;
pub use retry::RetrySection;
pub use smtp::{AuthMechanism, PasswordSource, Security, SmtpSection, Timeouts};

/// The whole `job.toml`. `[message]` and `[recipients]` are optional here so that commands needing only
/// `[smtp]` (`probe`) accept a partial file; `jobdef` requires them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub smtp: SmtpSection,
    #[serde(default)]
    pub message: Option<MessageSection>,
    #[serde(default)]
    pub recipients: Option<RecipientsSection>,
    #[serde(default)]
    pub rate: RateSection,
    #[serde(default)]
    pub retry: RetrySection,
    #[serde(default)]
    pub limits: LimitsSection,
}

/// The largest job file read (a few kB is usual): a cap, so that a mistaken path cannot exhaust memory.
pub const JOB_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the job file: {0}")]
    Read(crate::input::InputError),
    /// toml's message already names the line, column and key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl JobFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_job_file(path).map_err(ConfigError::Read)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: one_line(text, &e) })
    }
}

/// The job file's text: a regular file of at most [`JOB_FILE_BYTES`].
pub fn read_job_file(path: &Path) -> Result<String, crate::input::InputError> {
    crate::input::read_to_string(path, JOB_FILE_BYTES, "a job file")
}

/// toml's message is several lines (a snippet with a caret); a report wants one: `line L, column C: what`.
fn one_line(text: &str, error: &toml::de::Error) -> String {
    let what = error.message().trim();
    match error.span() {
        Some(span) => {
            let line = line_of(text, span.start);
            let line_start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
            let column = text[line_start..span.start.min(text.len())].chars().count() + 1;
            format!("line {line}, column {column}: {what}")
        }
        None => what.to_owned(),
    }
}

/// The 1-based line of a byte offset in the job file's text (for spans kept by `toml::Spanned`).
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The 1-based line of a key, by its path (`["smtp", "timeouts", "connect"]`), in the job file's text: for
/// problems found after parsing in values that keep no span. `None` when the key is not in the text.
pub fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let (last, parents) = path.split_last()?;
    let mut table = document.get_ref();
    for name in parents {
        match table.get(*name)?.get_ref() {
            toml::de::DeValue::Table(inner) => table = inner,
            _ => return None,
        }
    }
    let (key, _) = table.get_key_value(*last)?;
    Some(line_of(text, key.span().start))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[smtp]\nserver = \"mail.example.com\"\n";

    #[test]
    fn smtp_only_file_parses_for_probe() {
        let job = JobFile::parse(Path::new("job.toml"), MINIMAL).unwrap();
        assert!(job.message.is_none() && job.recipients.is_none());
    }

    #[test]
    fn unknown_key_in_message_names_its_line() {
        let text = format!("{MINIMAL}[message]\nfrom = \"a@example.com\"\nsubject = \"x\"\nsubjet = \"y\"\n");
        let err = JobFile::parse(Path::new("job.toml"), &text).unwrap_err().to_string();
        assert!(err.starts_with("job.toml: "), "{err}");
        assert!(err.starts_with("job.toml: line 6, column 1: unknown field `subjet`"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn keys_map_to_their_lines_in_any_table_form() {
        let text = format!("{MINIMAL}timeouts = {{ connect = 0 }}\n[retry]\n\nmax_delay = inf\n");
        assert_eq!(key_line(&text, &["smtp", "timeouts", "connect"]), Some(3));
        assert_eq!(key_line(&text, &["retry", "max_delay"]), Some(6));
        assert_eq!(key_line(&text, &["retry", "attempts"]), None);
        let text = format!("{MINIMAL}[smtp.timeouts]\ndata = -1\n");
        assert_eq!(key_line(&text, &["smtp", "timeouts", "data"]), Some(4));
        let text = "[smtp.timeouts]\ndata = -1\n[smtp]\nserver = \"x\"\n";
        assert_eq!(key_line(text, &["smtp", "timeouts", "data"]), Some(2));
    }

    #[test]
    fn spans_map_to_lines() {
        let text = format!("{MINIMAL}[recipients]\ncsv = \"r.csv\"\n");
        let job = JobFile::parse(Path::new("job.toml"), &text).unwrap();
        let csv = &job.recipients.unwrap().csv;
        assert_eq!(line_of(&text, csv.span().start), 4);
    }
}

/// Only what `probe` needs: `[smtp]` (checked strictly) and `[message] from`, ignoring the rest, so a job
/// whose message is still being written can already be probed.
#[derive(Debug, Deserialize)]
pub struct SmtpView {
    pub smtp: SmtpSection,
    #[serde(default)]
    pub message: Option<FromOnly>,
}

#[derive(Debug, Deserialize)]
pub struct FromOnly {
    pub from: Option<String>,
}

impl SmtpView {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_job_file(path).map_err(ConfigError::Read)?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: one_line(&text, &e) })
    }
}
