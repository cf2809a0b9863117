//! `mailshot bounces JOB --from SOURCE`: delivery status notifications read back into what the job knows.
//!
//! Each message of the source is read as a DSN, an auto-reply or something else ([`dsn`]); only DSNs are
//! acted on. A DSN's failed or delayed recipients are matched to the job's recipients ([`targets`]),
//! recorded in the journal (so `status` shows them, and a second run adds nothing), and the hard ones are
//! appended to a suppression list ([`suppress_file`]) that `[recipients] exclude` reads next month.
//! The list is written (and synced) before the journal: a crash between the two leaves an address
//! suppressed and its bounce unrecorded, which the next run records; never the other way round.

pub mod dsn;
mod imap;
mod source;
pub mod suppress_file;
mod targets;

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::cli::BouncesArgs;
use crate::exit_codes;
use crate::job::clock::now;
use crate::job::journal::{BOUNCE_RUN, Bounce, BounceKind, Journal, JournalError, Record, Replayed};
use crate::job::lock::{self, LockError};
use crate::job::run::JobPaths;
use crate::jobdef::{Job, Problem};
use crate::output::{err_line, out_line};
pub use source::{Source, SourceError};
use suppress_file::SuppressFileError;
use targets::Targets;

/// The suppression list's file name beside the job, when `--suppress` is not given.
pub const DEFAULT_SUPPRESS_FILE: &str = "suppressed.csv";

#[derive(Debug, thiserror::Error)]
pub enum BouncesError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Suppress(#[from] SuppressFileError),
}

impl BouncesError {
    fn exit_code(&self) -> u8 {
        match self {
            BouncesError::Lock(LockError::Held { .. }) => exit_codes::TEMPFAIL,
            _ => exit_codes::INPUT_ERROR,
        }
    }
}

pub fn run(args: &BouncesArgs) -> u8 {
    match bounces(args) {
        Ok(lines) => {
            lines.iter().for_each(|l| out_line(l));
            exit_codes::SUCCESS
        }
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            e.exit_code()
        }
    }
}

/// The whole command; returns the summary lines.
fn bounces(args: &BouncesArgs) -> Result<Vec<String>, BouncesError> {
    let source = Source::parse(&args.from)?;
    let job = Job::load(&args.job).map_err(|e| BouncesError::Input(joined(&e.problems)))?;
    let paths = JobPaths::of(&args.job);
    let sharded = crate::job::shard::layout::journals(&args.job).into_iter().find(|f| f.shard.is_some());
    if let Some(found) = sharded.filter(|_| !paths.journal.exists()) {
        return Err(BouncesError::Input(format!(
            "{}: this campaign is sharded, and `bounces` does not record into shard journals yet; nothing was \
             recorded",
            found.path.display()
        )));
    }
    if !paths.journal.exists() {
        let journal = paths.journal.display();
        return Err(BouncesError::Input(format!("{journal}: no journal yet: this job has not been sent")));
    }
    let _lock = lock::acquire(&paths.lock)?;
    let started = now();
    let (journal, writer, replayed) = Journal::open(&paths.journal, started)?;
    let targets = Targets::of(&job, &replayed).map_err(|p| BouncesError::Input(joined(&p)))?;
    let mut findings = Findings::default();
    match &source {
        Source::Imap(url) => {
            let password = imap_password(args, &job, url, &paths.dir)?;
            let roots = job.smtp.connection_config(&paths.dir).map_err(|e| BouncesError::Input(e.to_string()))?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            let read =
                imap::read_all(url, &password, &roots.extra_roots, |raw| findings.read(raw, &targets, &replayed));
            runtime.block_on(read).map_err(SourceError::from)?;
        }
        local => {
            for raw in source::local_messages(local)? {
                findings.read(&raw?, &targets, &replayed);
            }
        }
    }
    let suppress = args.suppress.clone().unwrap_or_else(|| paths.dir.join(DEFAULT_SUPPRESS_FILE));
    let added = suppress_file::append(&suppress, &findings.suppress_entries(started))?;
    for bounce in &findings.new {
        let summary = format!("bounce: {} {} {}", bounce.kind.as_str(), status_of(bounce), bounce.email);
        let bounce = Some(bounce.clone());
        journal.append(Record::RunEnd { run: BOUNCE_RUN, ended: started, exit_code: 0, summary, bounce })?;
    }
    drop(journal);
    writer.close()?;
    Ok(findings.lines(&source, &paths.journal, &suppress, added))
}

/// The IMAP password: from `--password-env`/`--password-file`/`--password-command`, or else `[smtp]`'s
/// when the mailbox's user is the job's SMTP user (the usual case: bounces come back to the sender).
fn imap_password(
    args: &BouncesArgs,
    job: &Job,
    url: &imap::ImapUrl,
    job_dir: &Path,
) -> Result<crate::smtp::Secret, BouncesError> {
    use crate::config::smtp::PasswordSource;
    let given = [
        args.password_env.clone().map(PasswordSource::Env),
        args.password_file.clone().map(PasswordSource::File),
        args.password_command.clone().map(PasswordSource::Command),
    ];
    let source = match given.into_iter().flatten().next() {
        Some(source) => source,
        None if job.smtp.username.as_deref() == Some(url.user.as_str()) => {
            job.smtp.password_source().map_err(BouncesError::Input)?.ok_or_else(no_password)?
        }
        None => return Err(no_password()),
    };
    source.load(job_dir).map_err(|e| BouncesError::Input(format!("the IMAP password: {e}")))
}

fn no_password() -> BouncesError {
    BouncesError::Input(
        "the IMAP password: give --password-env NAME, --password-file FILE or --password-command CMD \
         (or use the job's [smtp] username, whose password is used then)"
            .into(),
    )
}

fn joined(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("\n")
}

fn status_of(bounce: &Bounce) -> &str {
    bounce.status.as_deref().unwrap_or(&bounce.action)
}

/// What the messages of a source turned out to be.
#[derive(Debug, Default)]
struct Findings {
    messages: u64,
    reports: u64,
    auto_replies: u64,
    other: u64,
    /// Recipients a report says were delivered, relayed or expanded: not bounces.
    not_bounces: u64,
    /// Bounces about an address this job did not send to (another job's, or forged): ignored.
    unknown: u64,
    /// Bounces recorded by an earlier run, or twice in this source.
    repeated: u64,
    new: Vec<Bounce>,
    seen: HashSet<(String, String)>,
}

impl Findings {
    fn read(&mut self, raw: &[u8], targets: &Targets, journal: &Replayed) {
        self.messages += 1;
        match dsn::read(raw) {
            dsn::Notice::AutoReply => self.auto_replies += 1,
            dsn::Notice::Other => self.other += 1,
            dsn::Notice::Dsn(report) => {
                self.reports += 1;
                for recipient in &report.recipients {
                    self.recipient(&report, recipient, targets, journal);
                }
            }
        }
    }

    /// One recipient of a report: by the original Message-ID when the report returns the message, else by
    /// the VERP address the report came to, else by the final (or original) recipient's address.
    fn recipient(&mut self, report: &dsn::Dsn, r: &dsn::RecipientStatus, targets: &Targets, journal: &Replayed) {
        let Some(kind) = r.kind() else {
            self.not_bounces += 1;
            return;
        };
        let by_address = |a: &Option<String>| a.as_deref().and_then(|a| targets.by_address(a));
        let target = (report.original_message_id.as_deref().and_then(|id| targets.by_message_id(id)))
            .or_else(|| report.addressed_to.iter().find_map(|a| targets.by_verp_address(a)))
            .or_else(|| by_address(&r.final_recipient))
            .or_else(|| by_address(&r.original_recipient));
        let Some(target) = target else {
            self.unknown += 1;
            return;
        };
        let first = self.seen.insert((report.id.clone(), target.key.clone()));
        if !first || journal.has_bounce(&report.id, &target.key) {
            self.repeated += 1;
            return;
        }
        self.new.push(Bounce {
            key: target.key.clone(),
            row: target.row,
            email: target.email.clone(),
            kind,
            action: r.action.clone(),
            status: r.status.clone(),
            diagnostic: r.diagnostic.clone(),
            report: report.id.clone(),
        });
    }

    fn suppress_entries(&self, at: DateTime<Utc>) -> Vec<suppress_file::Entry> {
        let hard = self.new.iter().filter(|b| b.kind == BounceKind::Hard);
        hard.map(|b| suppress_file::Entry {
            email: b.email.clone(),
            reason: format!("hard bounce: {}", b.diagnostic.as_deref().unwrap_or(&b.action)),
            status: status_of(b).to_owned(),
            date: at.format("%Y-%m-%d").to_string(),
            report: b.report.clone(),
        })
        .collect()
    }

    fn count(&self, kind: BounceKind) -> usize {
        self.new.iter().filter(|b| b.kind == kind).count()
    }

    fn lines(&self, source: &Source, journal: &Path, suppress: &Path, added: usize) -> Vec<String> {
        let mut lines = vec![format!(
            "read {} messages from {}: {} bounce reports, {} auto-replies and {} other messages skipped",
            self.messages,
            source.describe(),
            self.reports,
            self.auto_replies,
            self.other
        )];
        let (hard, soft) = (self.count(BounceKind::Hard), self.count(BounceKind::Soft));
        lines.push(format!("recorded {hard} hard and {soft} soft bounces in {}", journal.display()));
        if self.repeated > 0 {
            lines.push(format!("{} already recorded (not added again)", self.repeated));
        }
        if self.unknown > 0 {
            lines.push(format!("{} about addresses this job did not send to (ignored)", self.unknown));
        }
        if self.not_bounces > 0 {
            lines.push(format!("{} reports of delivery, not bounces (ignored)", self.not_bounces));
        }
        lines.push(format!("added {added} addresses to {}", suppress.display()));
        lines
    }
}
