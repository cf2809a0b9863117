//! Start-up: everything a run checks and sets up before its first message, in the order safety needs (see
//! the flow in `run`). Any failure here means nothing was sent.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{JobPaths, StartError, changes, prompt};
use crate::check::{self, Reporter};
use crate::cli::SendArgs;
use crate::config::numbers;
use crate::config::rate::Pace;
use crate::job::clock::now;
use crate::job::journal::last_day::LastDay;
use crate::job::journal::{Journal, JournalWriter, Record, Replayed, set_aside_names, sync_dir};
use crate::job::lock::{self, RunLock};
use crate::job::progress::{Planned, log_line};
use crate::job::report::Report;
use crate::job::shard::{self, Shard, layout};
use crate::job::spool::Spool;
use crate::job::{evidence, fingerprint};
use crate::jobdef::Job;
use crate::message::OutgoingMessage;
use crate::render::Rendered;
use crate::smtp::{self, Connector};

/// OAuth2 with `token_command`: the source and the first token.
pub type Tokens = (crate::config::smtp::TokenSource, smtp::Secret);

/// A run ready to send: the job checked, the lock held, the journal replayed and this run's record durable.
pub struct Started {
    pub job: Job,
    pub total: u64,
    /// What this run is going to do, counted by the check when nothing else can change it (a first run of
    /// the whole CSV: no journal entries, no shard), so that the producer need not read the CSV once more.
    pub planned: Option<Planned>,
    pub connector: Connector,
    pub tokens: Option<Tokens>,
    pub pace: Option<Pace>,
    pub connections: usize,
    pub replayed: Replayed,
    pub limit: Option<u64>,
    pub by_budget: bool,
    pub report: Report,
    pub kept: Kept,
    /// The shard this run sends (`--shard`), or `None` for the whole CSV.
    pub shard: Option<Shard>,
    /// The messages the check built, for the producer (`None`: no room for a spool).
    pub spool: Option<Spool>,
}

/// What the run keeps to its very end: the lock, and the journal to close with the run-end record.
pub struct Kept {
    pub lock: RunLock,
    pub journal: Journal,
    pub writer: JournalWriter,
    pub run_number: u32,
}

/// The steps in order: the job and its connection settings, the question, then the campaign's files.
pub async fn start(args: &SendArgs, started: DateTime<Utc>) -> Result<Started, StartError> {
    let shard = shard::resolve(args.shard.as_deref(), args.shards, |name| std::env::var(name).ok())
        .map_err(|e| StartError::Input(e.to_string()))?;
    let paths = JobPaths::for_shard(&args.job, shard);
    let (mut job, summary, spool) = load_and_check(args, started, &paths, shard)?;
    let total = summary.rows;
    let campaign = job.rate.clone();
    let input = |e: String| StartError::Input(format!("{}: {e}", args.job.display()));
    if let Some(shard) = shard {
        job.rate = shard::part_of(&campaign, shard).map_err(input)?;
    }
    // What campaigns of another shard count sent in the last 24 hours is spent for this one: what the day
    // has left is split over the shards, so that their parts still add up to it.
    if let Some(max) = campaign.max_per_day {
        let others = LastDay::of_other_layouts(&args.job, shard.map(|s| s.count), started).sent;
        if others > 0 {
            let left = max.saturating_sub(others);
            let part = match shard {
                Some(shard) => shard::budget_part(&campaign, shard, left).map_err(input)?,
                None => left,
            };
            job.rate.max_per_day = Some(part);
        }
    }
    let (connector, tokens) = connector(args, &job)?;
    let pace = pace(args, &job)?;
    let connections = connections(args, &job)?;
    prompt::confirm(args, &job, &paths, shard, total, connections, started)?;
    let (kept, replayed) = open_campaign(args, &paths, shard, started).await?;
    let sent = match job.rate.max_per_day {
        Some(_) => LastDay::of(&paths.journal, &replayed, started).sent,
        None => 0,
    };
    let (limit, by_budget) = limit(args, &job, sent);
    let planned = (shard.is_none() && replayed.entries.is_empty()).then(|| Planned {
        recipients: summary.rows,
        // On a clean check every row is a recipient, a duplicate or suppressed, and every recipient rendered.
        to_send: limit.map_or(summary.valid, |limit| summary.valid.min(limit)),
        settled_earlier: 0,
        uncertain_earlier: 0,
    });
    let report = Report::create(&paths.reports, now()).map_err(|e| StartError::Input(e.to_string()))?;
    Ok(Started {
        job,
        total,
        planned,
        connector,
        tokens,
        pace,
        connections,
        replayed,
        limit,
        by_budget,
        report,
        kept,
        shard,
        spool,
    })
}

/// The SMTP connector, and with OAuth2's `token_command` the token source and the first token (fetched with
/// the configuration; later sessions get fresh ones from the pool).
fn connector(args: &SendArgs, job: &Job) -> Result<(Connector, Option<Tokens>), StartError> {
    let dir = JobPaths::of(&args.job).dir;
    let client = job.smtp.client_config(&dir).map_err(|e| StartError::Input(format!("{}: {e}", args.job.display())))?;
    if let Some(warning) = job.smtp.password_file_warning(&dir) {
        log_line(&format!("warning: {}: {warning}", args.job.display()));
    }
    let tokens = job.smtp.token_source(&dir).zip(client.credentials.as_ref().map(|c| c.secret.clone()));
    let connector = Connector::new(client).map_err(|e| StartError::Input(format!("[smtp]: {e}")))?;
    Ok((connector, tokens))
}

/// The lock, then the journal (what it says is this run's to act on): `--fresh` sets the old campaign aside,
/// a changed input or a report the journal does not explain refuses the run, and this run's record is made
/// durable before anything is sent.
async fn open_campaign(
    args: &SendArgs,
    paths: &JobPaths,
    shard: Option<Shard>,
    started: DateTime<Utc>,
) -> Result<(Kept, Replayed), StartError> {
    let lock = lock::acquire(&paths.lock).map_err(|e| match e {
        lock::LockError::Held { .. } => StartError::Busy(e.to_string()),
        lock::LockError::Io { .. } => StartError::Input(e.to_string()),
    })?;
    // The locks of the other layout's shards (or unsharded run) whose journals `--fresh` sets aside, held
    // until this run's journal exists: one of them running would go on sending beside the new campaign.
    let mut others_locks = Vec::new();
    if args.fresh {
        for other in layout::conflicting(&args.job, shard) {
            let theirs = JobPaths::for_shard(&args.job, other.shard).lock;
            others_locks.push(lock::acquire(&theirs).map_err(|e| match e {
                lock::LockError::Held { .. } => {
                    StartError::Busy(format!("{e}; --fresh sets its journal aside only once it has stopped"))
                }
                lock::LockError::Io { .. } => StartError::Input(e.to_string()),
            })?);
        }
        // Reports first: stopped between the two, the old campaign simply goes on (its journal is there),
        // never a new journal facing the old campaign's reports.
        set_aside_reports(&paths.reports, started)?;
        set_aside(&paths.journal, started)?;
        for other in layout::conflicting(&args.job, shard) {
            // A shard's reports go aside with its journal, as this run's own do: left, they would stand as
            // evidence against that shard's new, empty journal when the campaign comes back to its count
            // (and `repair --from-reports` would take the old campaign's statuses into the new one). The
            // unsharded run's `reports/` holds every shard's folder; a run back to it sets it aside itself.
            if other.shard.is_some() {
                set_aside_reports(&JobPaths::for_shard(&args.job, other.shard).reports, started)?;
            }
            set_aside(&other.path, started)?;
        }
    }
    refuse_other_layouts(&args.job, shard)?;
    let (journal, writer, replayed) = open_own_journal(&args.job, &paths.journal, shard, started)?;
    drop(others_locks);
    if let Some(last) = replayed.last_run.as_ref().filter(|last| last.shard != shard) {
        let recorded = last.shard.map_or("an unsharded run".to_owned(), |s| format!("a run of shard {}", s.spec()));
        return Err(StartError::Input(format!(
            "{}: the journal was written by {recorded} (run {}); nothing was sent",
            paths.journal.display(),
            last.run
        )));
    }
    let inputs = fingerprint::of(&args.job).map_err(StartError::Input)?;
    changes::check(&replayed, &inputs, &args.job, args.accept_changes)?;
    let missing = evidence::check(&paths.reports, &replayed)
        .map_err(|e| StartError::Input(format!("{}: {e}", paths.reports.display())))?;
    if !missing.is_empty() {
        return Err(StartError::Input(repair_hint(missing.refusal(&args.job), shard)));
    }
    let run_number = replayed.last_run.as_ref().map_or(1, |r| r.run + 1);
    let (fingerprint, inputs) = (inputs.fingerprint, Some(inputs.digests));
    let record = Record::Run { run: run_number, started, pid: std::process::id(), fingerprint, inputs, shard };
    // A disk that is already full stops the run here, as a temporary condition (75: run again once there
    // is room), not as bad input.
    journal.commit(record).await.map_err(|e| match e.is_disk_full() {
        true => StartError::Busy(format!("{e}: the disk is full; nothing was sent")),
        false => StartError::Input(e.to_string()),
    })?;
    Ok((Kept { lock, journal, writer, run_number }, replayed))
}

/// A shard's journal is repaired with `repair --shard I/N`: said after a refusal that names `repair`.
pub fn repair_hint(text: String, shard: Option<Shard>) -> String {
    match shard {
        Some(s) if text.contains("mailshot repair") => format!("{text} (this shard's: add --shard {})", s.spec()),
        _ => text,
    }
}

/// Opens (or creates) this run's journal, then looks for other layouts' journals again: of two runs of
/// different layouts started at once, at least the later one sees the other's journal here, before anything
/// is sent. A journal this run created for nothing is removed as it is refused: left behind, the empty file
/// would stand as a campaign of its layout and refuse every later run of the one that won.
fn open_own_journal(
    job: &Path,
    path: &Path,
    shard: Option<Shard>,
    started: DateTime<Utc>,
) -> Result<(Journal, JournalWriter, Replayed), StartError> {
    let existed = path.exists();
    let opened = Journal::open(path, started).map_err(|e| StartError::Input(repair_hint(e.to_string(), shard)))?;
    if let Err(refused) = refuse_other_layouts(job, shard) {
        drop(opened);
        if !existed {
            let _ = std::fs::remove_file(path);
        }
        return Err(refused);
    }
    Ok(opened)
}

/// Journals of another shard count (or of the other of sharded and unsharded) beside the job: refused.
fn refuse_other_layouts(job: &Path, shard: Option<Shard>) -> Result<(), StartError> {
    let others = layout::conflicting(job, shard);
    match others.is_empty() {
        true => Ok(()),
        false => Err(StartError::Input(format!("{}: {}", job.display(), layout::refusal(&others, shard)))),
    }
}

/// The job and the check's counts (for the progress bar), after a clean check, with the messages the check
/// built for this run's recipients (this shard's) kept in a spool beside the journal.
fn load_and_check(
    args: &SendArgs,
    now: DateTime<Utc>,
    paths: &JobPaths,
    shard: Option<Shard>,
) -> Result<(Job, check::Summary, Option<Spool>), StartError> {
    let (path, quiet) = (args.job.as_path(), args.verbosity.quiet);
    let mut reporter = Reporter::new(std::io::stderr().lock());
    let job = match Job::load(path) {
        Ok(job) => job,
        Err(failure) => {
            failure.problems.into_iter().for_each(|p| reporter.report(p));
            let _ = reporter.finish();
            return Err(StartError::Input(format!("{}: the job has errors; nothing was sent", path.display())));
        }
    };
    // On a campaign's first run only: a later one carries most rows, which would fill the spool for nothing.
    let first_run = !paths.journal.exists();
    let most = [args.limit, job.rate.max_per_day].into_iter().flatten().min();
    let mut spool = first_run.then(|| Spool::create(&paths.dir, now, most)).flatten();
    let mut keep = |message: &OutgoingMessage, rendered: &Rendered| {
        if let Some(spool) = spool.as_mut().filter(|_| shard.is_none_or(|s| s.contains(&message.key))) {
            spool.keep(message.row, &message.key, &message.bytes, rendered.return_path.as_deref());
        }
    };
    let summary = check::check_job_keeping(&job, &mut reporter, now, &mut keep);
    let _ = reporter.finish();
    if !summary.is_clean() {
        return Err(StartError::Input(format!(
            "{}: check found {} error(s); nothing was sent (see `mailshot check`)",
            path.display(),
            summary.errors
        )));
    }
    if !quiet {
        crate::job::progress::log_line(&check::summary_line(&summary));
    }
    Ok((job, summary, spool))
}

/// `--fresh`: the old journal is kept under a name no earlier campaign has (hard link, then unlink, so an
/// existing file is never replaced).
fn set_aside(journal: &Path, now: DateTime<Utc>) -> Result<(), StartError> {
    if !journal.exists() {
        return Ok(());
    }
    let fail =
        |e: std::io::Error| StartError::Input(format!("{}: cannot set the old journal aside: {e}", journal.display()));
    for name in set_aside_names("", now, ".jsonl") {
        let kept = journal.with_extension(name);
        match std::fs::hard_link(journal, &kept) {
            // Another shard's --fresh set the same old journal aside a moment ago.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Ok(()) => {
                match std::fs::remove_file(journal) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
                    _ => {}
                }
                sync_dir(journal.parent().unwrap_or(Path::new("."))).map_err(fail)?;
                log_line(&format!("started a fresh campaign; the old journal is kept as {}", kept.display()));
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    unreachable!("some suffix is free")
}

/// `--fresh`: the old campaign's reports go aside with its journal (`reports-<UTC>/`, never over an earlier
/// one), so that they are not taken as evidence against the new, empty journal.
fn set_aside_reports(reports: &Path, now: DateTime<Utc>) -> Result<(), StartError> {
    if !reports.is_dir() {
        return Ok(());
    }
    let fail =
        |e: std::io::Error| StartError::Input(format!("{}: cannot set the old reports aside: {e}", reports.display()));
    let prefix = format!("{}-", reports.file_name().map_or("reports".into(), |n| n.to_string_lossy()));
    let kept = set_aside_names(&prefix, now, "")
        .map(|name| reports.with_file_name(name))
        .find(|kept| !kept.exists())
        .expect("some suffix is free");
    std::fs::rename(reports, &kept).map_err(fail)?;
    sync_dir(reports.parent().unwrap_or(Path::new("."))).map_err(fail)?;
    log_line(&format!("the old reports are kept in {}", kept.display()));
    Ok(())
}

/// How many messages this run may send, and whether the daily budget (not `--limit`) is what caps it. A
/// used-up budget is not an error by itself: a job with nothing left to send still ends with 0.
fn limit(args: &SendArgs, job: &Job, sent_last_24h: u64) -> (Option<u64>, bool) {
    let budget = job.rate.max_per_day.map(|max| max.saturating_sub(sent_last_24h));
    match (args.limit, budget) {
        (Some(l), Some(left)) if left < l => (Some(left), true),
        (Some(l), _) => (Some(l), false),
        (None, Some(left)) => (Some(left), true),
        (None, None) => (None, false),
    }
}

fn pace(args: &SendArgs, job: &Job) -> Result<Option<Pace>, StartError> {
    let rate = match args.rate {
        Some(r) => match numbers::rate_rule(r) {
            Some(rule) => return Err(StartError::Input(format!("--rate {r}: {rule}"))),
            None => Some(r),
        },
        None => job.rate.messages_per_second().map_err(|e| StartError::Input(format!("[rate]: {e}")))?,
    };
    Ok(rate.map(|r| Pace::per_second(r, job.rate.burst())))
}

/// `--connections`, else `[smtp] connections` (checked with the job).
fn connections(args: &SendArgs, job: &Job) -> Result<usize, StartError> {
    let n = args.connections.unwrap_or(job.smtp.connections);
    match numbers::connections_rule(n) {
        Some(rule) => Err(StartError::Input(format!("--connections {n}: {rule}"))),
        None => Ok(n as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The moment of the race: another layout's journal appears after this run's first look, before its own
    /// journal exists. The refusal must not leave a new, empty journal behind; one that was there stays.
    #[test]
    fn a_journal_refused_at_the_second_look_is_removed_only_if_this_run_made_it() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        let of = |index, count| Some(Shard { index, count });
        std::fs::write(dir.path().join("job.shard-0-of-2.journal.jsonl"), "").unwrap();
        let ours = dir.path().join("job.shard-0-of-3.journal.jsonl");

        let refused = open_own_journal(&job, &ours, of(0, 3), now());
        assert!(
            matches!(refused, Err(StartError::Input(ref m)) if m.contains("sent as 2 shards")),
            "{:?}",
            refused.err()
        );
        assert!(!ours.exists(), "the journal this run created was left behind");

        std::fs::write(&ours, "").unwrap();
        assert!(open_own_journal(&job, &ours, of(0, 3), now()).is_err());
        assert!(ours.exists(), "a journal that was there before this run was removed");

        std::fs::remove_file(dir.path().join("job.shard-0-of-2.journal.jsonl")).unwrap();
        let (_journal, _writer, replayed) = open_own_journal(&job, &ours, of(0, 3), now()).expect("no other layout");
        assert!(replayed.last_run.is_none());
    }
}
