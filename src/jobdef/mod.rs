//! A job, loaded: the job file parsed and checked, paths resolved against its folder, templates compiled once.
//!
//! This is what `check`, `preview` and `send` share. `Job` is `Send + Sync`: workers call `render` for
//! their recipients concurrently. Rendering takes the `Date` from the caller so that a retry (the journal
//! replays the Date) yields byte-identical messages; the Message-ID is derived from the recipient key.

mod load;
mod own;
mod problem;
mod variables;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use problem::{Problem, Severity};
pub use variables::JobValue;

use crate::config::{JobFile, Limits, SmtpSection};
use crate::message::{self, AttachmentDir, AttachmentError, Draft, MessageError, MessageIds, OutgoingMessage};
use crate::recipients::{ColumnSpec, Mailbox, Recipient, RecipientReader, Suppression};
use crate::render::{Origin, RenderError, Rendered, Templates, Vars};

/// A loaded job. Fields are public for reading; build one with `Job::load`.
#[derive(Debug)]
pub struct Job {
    /// The job file as given on the command line.
    pub path: PathBuf,
    pub smtp: SmtpSection,
    pub rate: crate::config::RateSection,
    pub retry: crate::config::RetrySection,
    pub limits: Limits,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// `[message] campaign`, if set (named in a run's first log line).
    pub campaign: Option<String>,
    /// The CSV, relative to the current directory (job folder joined with `[recipients] csv`).
    pub csv: PathBuf,
    pub columns: ColumnSpec,
    /// `[recipients] exclude`, read: the addresses never sent to.
    pub suppression: Arc<Suppression>,
    attachments: AttachmentDir,
    templates: Templates,
    /// The job file's values templates read as variables (`campaign`), for `variable_problems`.
    job_values: Vec<JobValue>,
    attachment_origins: Vec<Origin>,
    ids: MessageIds,
}

/// Why one recipient's message could not be made; the row is still the caller's to report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageFailure {
    #[error("{0}")]
    Render(#[from] RenderError),
    #[error("{origin}: {error}")]
    Attachment { origin: Origin, error: AttachmentError },
    #[error("{0}")]
    Message(#[from] MessageError),
    #[error("[message] return_path: invalid address {value:?}: {error}")]
    ReturnPath { value: String, error: crate::recipients::AddressError },
    #[error("the message is {bytes} bytes, more than [limits] message_bytes ({limit})")]
    TooLarge { bytes: u64, limit: u64 },
}

/// A job that could not be loaded: every problem found, and where the recipients are if that much was
/// readable (so that `check` can still report the CSV's problems in the same run).
#[derive(Debug)]
pub struct LoadError {
    pub problems: Vec<Problem>,
    pub recipients: Option<Box<RecipientsSource>>,
}

/// Where the recipients are and how to read them, as soon as `[recipients]` parsed.
#[derive(Debug, Clone)]
pub struct RecipientsSource {
    pub csv: PathBuf,
    pub columns: ColumnSpec,
    /// `[limits]`, or the defaults when it has errors of its own.
    pub limits: Limits,
    /// `[recipients] exclude`, or nothing when a list has errors (reported with the job file's).
    pub suppression: Arc<Suppression>,
}

impl Job {
    /// Loads and checks the job file; on failure, every problem found (each naming its file and line).
    pub fn load(path: &Path) -> Result<Job, LoadError> {
        let fail = |problem| LoadError { problems: vec![problem], recipients: None };
        let text = crate::config::read_job_file(path)
            .map_err(|e| fail(Problem::once(format!("cannot read the job file: {e}"))))?;
        let file = JobFile::parse(path, &text).map_err(|e| fail(Problem::once(e.to_string())))?;
        let recipients = load::recipients_of(path, &file);
        let mut problems = Vec::new();
        let job = load::build(&load::JobText { path, text: &text }, file, &mut problems);
        match job {
            Some(job) if problems.is_empty() => Ok(job),
            _ => Err(LoadError { problems, recipients: recipients.map(Box::new) }),
        }
    }

    /// Replaces the Message-ID seed (default: `[message] campaign`, else the job file's absolute path).
    pub fn set_message_id_seed(&mut self, seed: &str) {
        self.ids = MessageIds::new(seed, self.from.domain_ascii.clone());
    }

    /// The Message-ID (without angle brackets) this job gives a recipient's message: how a bounce report
    /// that returns the message names its recipient exactly.
    pub fn message_id(&self, recipient: &Recipient) -> String {
        self.ids.for_key(&recipient.key)
    }

    /// Opens the CSV for streaming; header problems are reported as `file:1:` problems.
    pub fn recipients(&self) -> Result<RecipientReader<File>, Vec<Problem>> {
        open_recipients(&RecipientsSource {
            csv: self.csv.clone(),
            columns: self.columns.clone(),
            limits: self.limits,
            suppression: Arc::clone(&self.suppression),
        })
    }

    /// The message for one recipient: templates rendered, attachments read, MIME built.
    pub fn render(&self, recipient: &Recipient, date: DateTime<Utc>) -> Result<OutgoingMessage, MessageFailure> {
        self.render_parts(recipient, date).map(|(message, _)| message)
    }

    /// As `render`, also returning the rendered values (subject, bodies) for `preview`'s index.
    pub fn render_parts(
        &self,
        recipient: &Recipient,
        date: DateTime<Utc>,
    ) -> Result<(OutgoingMessage, Rendered), MessageFailure> {
        let message_id = self.ids.for_key(&recipient.key);
        let vars = Vars {
            names: &recipient.columns.names,
            fields: &recipient.fields,
            date,
            recipient_token: recipient_token(&message_id),
        };
        let limit = self.limits.message_bytes;
        let rendered = self.templates.render(&vars, limit)?;
        // Each attachment may take what the message has left; the built message is checked once more below
        // (base64 makes attachments a third larger).
        let mut left = limit.saturating_sub(rendered.size());
        let mut attachments = Vec::with_capacity(rendered.attachments.len());
        for (path, origin) in rendered.attachments.iter().zip(&self.attachment_origins) {
            let attachment = (self.attachments.load(path, left))
                .map_err(|error| MessageFailure::Attachment { origin: origin.clone(), error })?;
            left = left.saturating_sub(attachment.bytes.len() as u64);
            attachments.push(attachment);
        }
        let draft = Draft {
            from: &self.from,
            reply_to: self.reply_to.as_ref(),
            to: &recipient.mailbox,
            copies: &recipient.copies,
            rendered: &rendered,
            attachments,
            message_id: &message_id,
            date,
        };
        let bytes = draft.build()?;
        if bytes.len() as u64 > limit {
            return Err(MessageFailure::TooLarge { bytes: bytes.len() as u64, limit });
        }
        let message = self.assemble(recipient, bytes, message_id, rendered.return_path.as_deref())?;
        Ok((message, rendered))
    }

    /// The message for `recipient` from the bytes `render_parts` built for it earlier, with the same Date
    /// (the preflight's, kept in `job::spool`): the same message, without rendering it again.
    pub fn from_built(
        &self,
        recipient: &Recipient,
        bytes: Vec<u8>,
        return_path: Option<&str>,
    ) -> Result<OutgoingMessage, MessageFailure> {
        self.assemble(recipient, bytes, self.ids.for_key(&recipient.key), return_path)
    }

    /// The envelope around built bytes: the one place both ways of making a message end in.
    fn assemble(
        &self,
        recipient: &Recipient,
        bytes: Vec<u8>,
        message_id: String,
        return_path: Option<&str>,
    ) -> Result<OutgoingMessage, MessageFailure> {
        let return_path = match return_path {
            Some(value) => Some(
                Mailbox::parse(value).map_err(|error| MessageFailure::ReturnPath { value: value.to_owned(), error })?,
            ),
            None => None,
        };
        let envelope = message::envelope(
            return_path.as_ref().unwrap_or(&self.from),
            &recipient.mailbox,
            &recipient.copies,
            &bytes,
        );
        Ok(OutgoingMessage { row: recipient.row, key: recipient.key.clone(), envelope, bytes, message_id })
    }
}

/// What names a recipient in a VERP address: the left part of its Message-ID (hex digits).
pub fn recipient_token(message_id: &str) -> &str {
    message_id.split('@').next().unwrap_or(message_id)
}

/// Opens a CSV for streaming; header problems become `file:1:` problems.
pub fn open_recipients(source: &RecipientsSource) -> Result<RecipientReader<File>, Vec<Problem>> {
    RecipientReader::open(&source.csv, &source.columns, source.limits.csv())
        .map(|reader| reader.excluding(Arc::clone(&source.suppression)))
        .map_err(|errors| errors.iter().map(|e| Problem::once(e.to_string())).collect())
}
