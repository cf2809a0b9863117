//! `mailshot status`: what the journal knows about a job, for a person (`status`), a spreadsheet
//! (`--failed`, `--uncertain`, `--deferred`: CSV with the recipients' original columns, ready to be the
//! recipients of a new job) or a script (`--json`). The journal is read through [`Replayed`], the fold a
//! run resumes from, so that `status` and `send` never disagree about a recipient.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::clock::now;
use super::journal::last_day::LastDay;
use super::journal::{
    Bounce, BounceKind, Detail, JournalEntry, JournalError, JournalState, KeyId, Replayed, Settled, key_id,
};
use crate::cli::StatusArgs;
use crate::config::JobFile;
use crate::exit_codes;
use crate::jobdef::Job;
use crate::output::{err_line, spreadsheet_cell};
use crate::recipients::Entry as Row;

mod shards;

/// A recipient's latest journal record, with the text a person needs.
#[derive(Debug, Clone, Serialize)]
pub struct Latest {
    pub row: u64,
    pub email: String,
    pub state: &'static str,
    pub code: Option<u16>,
    pub reply: String,
    pub attempts: u32,
}

/// What `mailshot status` prints about a job (a recipient's own word is [`crate::job::settlement::Status`]).
#[derive(Debug, Default, Serialize)]
pub struct StatusSummary {
    pub journal: String,
    pub delivered: u64,
    pub failed: u64,
    pub deferred: u64,
    pub uncertain: u64,
    /// Recipients a bounce report named (`mailshot bounces`), by the worse of their reports.
    pub bounced_hard: u64,
    pub bounced_soft: u64,
    /// In the CSV, not settled by the journal: never attempted (`None` when the job cannot be read now).
    pub not_sent: Option<u64>,
    /// The same as `not_sent`, under the name scripts may already read.
    pub pending: Option<u64>,
    pub last_run: Option<LastRunView>,
    pub max_per_day: Option<u64>,
    /// Messages delivered in the last 24 hours (recipients, not attempts).
    pub sent_last_24h: u64,
    pub budget_left: Option<u64>,
    /// A sharded campaign: one entry per shard, run or not (empty for an unsharded campaign).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<shards::ShardView>,
}

#[derive(Debug, Serialize)]
pub struct LastRunView {
    pub run: u32,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub exit_code: Option<u8>,
    pub summary: Option<String>,
}

pub fn run(args: &StatusArgs) -> u8 {
    let journals = match shards::read_journals(&args.job, now()) {
        Ok(journals) => journals,
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            return exit_codes::INPUT_ERROR;
        }
    };
    let latest: HashMap<KeyId, Latest> = journals.iter().flat_map(|j| latest(&j.replayed)).collect();
    let out = std::io::stdout();
    let mut out = out.lock();
    let result = if args.bounced {
        write_bounced(&mut out, journals.iter().flat_map(|j| j.replayed.bounces.values()))
    } else if args.failed || args.uncertain || args.deferred {
        let wanted = |l: &Latest| {
            (args.failed && l.state == "failed")
                || (args.uncertain && l.state == "uncertain")
                || (args.deferred && l.state == "deferred")
        };
        match Job::load(&args.job) {
            Ok(job) => write_with_columns(&mut out, &job, &latest, wanted),
            Err(_) => {
                let mut rows: Vec<&Latest> = latest.values().filter(|l| wanted(l)).collect();
                rows.sort_by_key(|l| l.row);
                write_csv(&mut out, &rows)
            }
        }
    } else {
        let status = match journals.as_slice() {
            [one] if one.shard.is_none() => summarise(&args.job, &one.path, &latest, &one.replayed),
            _ => shards::summarise(&args.job, &journals, &latest),
        };
        if args.json { write_json(&mut out, &status) } else { write_text(&mut out, &status) }
    };
    match result {
        Ok(()) => exit_codes::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_codes::SUCCESS,
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            exit_codes::INPUT_ERROR
        }
    }
}

/// The journal through the run's own fold ([`Replayed`]): a torn last line is ignored as on resume; a damaged
/// line is reported with the way out (`repair`), since every count after it would be a guess.
pub(super) fn read(path: &Path, now: DateTime<Utc>) -> Result<Replayed, String> {
    Replayed::read_unlocked(path, now, true).map_err(|e| match e {
        JournalError::Corrupt { path, line, message } => format!(
            "{}, line {line}: the journal is damaged ({message}); what it says after this line cannot be \
             shown. `mailshot repair JOB.toml` cuts it there, keeps the rest beside it and marks every \
             recipient named there as uncertain",
            path.display()
        ),
        other => other.to_string(),
    })
}

/// Each recipient the journal names, by key, with its state in words. A message taken and given back unsent
/// (`Released`) is not sent, as the run sees it.
fn latest(replayed: &Replayed) -> HashMap<KeyId, Latest> {
    let details = replayed.details.as_ref().expect("read with details");
    let state = |entry: &JournalEntry| match entry.state {
        JournalState::Uncertain => Some("uncertain"),
        JournalState::Released => None,
        JournalState::Settled(Settled::Delivered) => Some("delivered"),
        JournalState::Settled(Settled::Failed) => Some("failed"),
        JournalState::Settled(Settled::Deferred) => Some("deferred"),
    };
    let known = |(id, entry): (&KeyId, &JournalEntry)| {
        let (state, detail) = (state(entry)?, details.get(id)?.clone());
        let Detail { row, email, code, reply } = detail;
        Some((*id, Latest { row, email, state, code, reply, attempts: entry.attempts }))
    };
    replayed.entries.iter().filter_map(known).collect()
}

fn summarise(job_file: &Path, journal: &Path, latest: &HashMap<KeyId, Latest>, replayed: &Replayed) -> StatusSummary {
    let count = |state| count(latest, state);
    let bounced = |kind| replayed.bounces.values().filter(|b| b.kind == kind).count() as u64;
    let max_per_day = JobFile::load(job_file).ok().and_then(|f| f.rate.max_per_day);
    let last_run = last_run_view(replayed);
    let not_sent = not_sent(job_file, latest);
    // As the run counts them: the journals `--fresh` set aside spend the same provider's budget, those of
    // campaigns with shards too.
    let (mine, others) = (LastDay::of(journal, replayed, now()), LastDay::of_other_layouts(job_file, None, now()));
    let day = LastDay { sent: mine.sent + others.sent, delivered: mine.delivered + others.delivered };
    StatusSummary {
        journal: journal.display().to_string(),
        delivered: count("delivered"),
        failed: count("failed"),
        deferred: count("deferred"),
        uncertain: count("uncertain"),
        bounced_hard: bounced(BounceKind::Hard),
        bounced_soft: bounced(BounceKind::Soft),
        not_sent,
        pending: not_sent,
        last_run,
        max_per_day,
        sent_last_24h: day.delivered,
        budget_left: max_per_day.map(|m| m.saturating_sub(day.sent)),
        shards: Vec::new(),
    }
}

fn count(latest: &HashMap<KeyId, Latest>, state: &str) -> u64 {
    latest.values().filter(|l| l.state == state).count() as u64
}

fn last_run_view(replayed: &Replayed) -> Option<LastRunView> {
    replayed.last_run.as_ref().map(|l| LastRunView {
        run: l.run,
        started: l.started,
        ended: l.ended.as_ref().map(|e| e.0),
        exit_code: l.ended.as_ref().map(|e| e.1),
        summary: l.ended.as_ref().map(|e| e.2.clone()),
    })
}

/// Recipients in the CSV that the journal has not settled (never taken, or taken and given back).
fn not_sent(job_file: &Path, latest: &HashMap<KeyId, Latest>) -> Option<u64> {
    let job = Job::load(job_file).ok()?;
    let reader = job.recipients().ok()?;
    let n = reader
        .filter_map(Result::ok)
        .filter(|e| matches!(e, Row::Recipient(r) if !latest.contains_key(&key_id(&r.key))))
        .count();
    Some(n as u64)
}

/// `row,email,code,reply`, then every column of the job's CSV as it was, so that the output is the recipients
/// file of a new job with the same templates. Where the job's CSV has a column of one of those names, its
/// column keeps the name (the templates use it) and ours becomes `mailshot_<name>`. The server's reply is
/// made safe for a terminal and a spreadsheet ([`spreadsheet_cell`]); the job's own cells are left as they
/// were, since they must work as recipients again.
fn write_with_columns(
    out: &mut impl Write,
    job: &Job,
    latest: &HashMap<KeyId, Latest>,
    wanted: impl Fn(&Latest) -> bool,
) -> std::io::Result<()> {
    let reader = job.recipients().map_err(|p| std::io::Error::other(format!("{}", p[0])))?;
    let columns = reader.columns().clone();
    let same_address = columns.names[columns.email] == "email";
    let theirs: Vec<usize> = (0..columns.names.len()).filter(|&i| !(same_address && i == columns.email)).collect();
    let ours = ["row", "email", "code", "reply"].map(|n| {
        let clash = theirs.iter().any(|&i| columns.names[i] == n);
        if clash { format!("mailshot_{n}") } else { n.to_owned() }
    });
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(ours.iter().map(String::as_str).chain(theirs.iter().map(|&i| columns.names[i].as_str())))?;
    for entry in reader.filter_map(Result::ok) {
        let Row::Recipient(r) = entry else { continue };
        let Some(l) = latest.get(&key_id(&r.key)).filter(|l| wanted(l)) else { continue };
        let code = l.code.map(|c| c.to_string()).unwrap_or_default();
        let fixed = [r.row.to_string(), l.email.clone(), code, spreadsheet_cell(&l.reply).into_owned()];
        csv.write_record(fixed.iter().map(String::as_str).chain(theirs.iter().map(|&i| r.fields[i].as_str())))?;
    }
    csv.flush()
}

fn write_csv(out: &mut impl Write, rows: &[&Latest]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["row", "email", "code", "reply"])?;
    for l in rows {
        let code = l.code.map(|c| c.to_string()).unwrap_or_default();
        csv.write_record([l.row.to_string().as_str(), &l.email, &code, &spreadsheet_cell(&l.reply)])?;
    }
    csv.flush()
}

/// `row,email,bounce,status,diagnostic,report`, one line per bounced recipient (its worse report), by row.
fn write_bounced<'a>(out: &mut impl Write, bounces: impl Iterator<Item = &'a Bounce>) -> std::io::Result<()> {
    let mut bounces: Vec<&Bounce> = bounces.collect();
    bounces.sort_by_key(|b| b.row);
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["row", "email", "bounce", "status", "diagnostic", "report"])?;
    for b in bounces {
        let status = b.status.as_deref().unwrap_or(&b.action);
        let (row, diagnostic) = (b.row.to_string(), b.diagnostic.as_deref().unwrap_or(""));
        let cells = [row.as_str(), &b.email, b.kind.as_str(), status, diagnostic, &b.report];
        csv.write_record(cells.map(|c| spreadsheet_cell(c).into_owned()))?;
    }
    csv.flush()
}

fn write_json(out: &mut impl Write, status: &StatusSummary) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, status)?;
    writeln!(out)
}

fn write_text(out: &mut impl Write, s: &StatusSummary) -> std::io::Result<()> {
    writeln!(out, "journal    {}", s.journal)?;
    for (name, n) in
        [("delivered", s.delivered), ("failed", s.failed), ("deferred", s.deferred), ("uncertain", s.uncertain)]
    {
        writeln!(out, "{name:<10} {n}")?;
    }
    let bounced = s.bounced_hard + s.bounced_soft;
    writeln!(out, "{:<10} {bounced} (hard {}, soft {})", "bounced", s.bounced_hard, s.bounced_soft)?;
    match s.not_sent {
        Some(n) => writeln!(out, "{:<10} {n}", "not sent")?,
        None => writeln!(out, "{:<10} unknown (the job cannot be read now)", "not sent")?,
    }
    if let Some(run) = &s.last_run {
        writeln!(out, "last run   {}", last_run_text(run))?;
    }
    writeln!(out, "sent       {} in the last 24 hours", messages(s.sent_last_24h))?;
    match (s.max_per_day, s.budget_left) {
        // The budget counts every message whose final dot went out (as a provider does), retries included.
        (Some(max), Some(left)) => writeln!(out, "budget     {left} of {max} left in the last 24 hours")?,
        _ => writeln!(out, "budget     no daily limit")?,
    }
    for shard in &s.shards {
        writeln!(out, "{}", shards::line(shard))?;
    }
    Ok(())
}

/// `#2 started …, ended …, exit 0: …`, or that the run did not finish.
fn last_run_text(run: &LastRunView) -> String {
    let outcome = match (&run.ended, run.exit_code, &run.summary) {
        (Some(ended), Some(code), Some(summary)) => format!("ended {}, exit {code}: {summary}", when(ended)),
        _ => "did not finish (killed or crashed); uncertain recipients are listed by --uncertain".into(),
    };
    format!("#{} started {}, {outcome}", run.run, when(&run.started))
}

fn messages(n: u64) -> String {
    if n == 1 { "1 message".into() } else { format!("{n} messages") }
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
