//! `mailshot status`: what the journal knows about a job, for a person (`status`), a spreadsheet
//! (`--failed`, `--uncertain`: CSV with the recipients' original columns, ready to be the recipients of a
//! new job) or a script (`--json`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::clock::now;
use super::journal::{Record, Settled};
use super::run::JobPaths;
use crate::cli::StatusArgs;
use crate::config::JobFile;
use crate::exit_codes;
use crate::jobdef::Job;
use crate::output::spreadsheet_cell;
use crate::recipients::Entry;

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

#[derive(Debug, Default, Serialize)]
pub struct Status {
    pub journal: String,
    pub delivered: u64,
    pub failed: u64,
    pub deferred: u64,
    pub uncertain: u64,
    /// In the CSV, not yet in the journal (`None` when the job cannot be read now).
    pub pending: Option<u64>,
    pub last_run: Option<LastRunView>,
    pub max_per_day: Option<u64>,
    pub sent_last_24h: u64,
    pub budget_left: Option<u64>,
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
    let paths = JobPaths::of(&args.job);
    if !paths.journal.exists() {
        eprintln!("mailshot: {}: no journal yet: this job has not been sent", paths.journal.display());
        return exit_codes::INPUT_ERROR;
    }
    let (latest, last_run, sent_last_24h) = match scan(&paths.journal, now()) {
        Ok(scan) => scan,
        Err(e) => {
            eprintln!("mailshot: {}: {e}", paths.journal.display());
            return exit_codes::INPUT_ERROR;
        }
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    let result = if args.failed || args.uncertain {
        let wanted = |l: &Latest| (args.failed && l.state == "failed") || (args.uncertain && l.state == "uncertain");
        match Job::load(&args.job) {
            Ok(job) => write_with_columns(&mut out, &job, &latest, wanted),
            Err(_) => {
                let mut rows: Vec<&Latest> = latest.values().filter(|l| wanted(l)).collect();
                rows.sort_by_key(|l| l.row);
                write_csv(&mut out, &rows)
            }
        }
    } else {
        let status = summarise(&args.job, &paths, &latest, last_run, sent_last_24h);
        if args.json { write_json(&mut out, &status) } else { write_text(&mut out, &status) }
    };
    match result {
        Ok(()) => exit_codes::SUCCESS,
        Err(e) => {
            eprintln!("mailshot: {e}");
            exit_codes::INPUT_ERROR
        }
    }
}

type Scan = (HashMap<String, Latest>, Option<LastRunView>, u64);

/// Reads every record (a torn last line is ignored, as on resume).
fn scan(path: &Path, now: DateTime<Utc>) -> std::io::Result<Scan> {
    let mut latest = HashMap::new();
    let mut last_run = None;
    let mut sent = 0;
    let since = now - Duration::hours(24);
    for line in BufReader::new(std::fs::File::open(path)?).lines() {
        let Ok(record) = serde_json::from_str::<Record>(&line?) else { continue };
        match record {
            Record::Run { run, started, .. } => {
                last_run = Some(LastRunView { run, started, ended: None, exit_code: None, summary: None })
            }
            Record::RunEnd { run, ended, exit_code, summary } => {
                if let Some(last) = last_run.as_mut().filter(|l: &&mut LastRunView| l.run == run) {
                    (last.ended, last.exit_code, last.summary) = (Some(ended), Some(exit_code), Some(summary));
                }
            }
            Record::Committing { key, row, email, attempt, at, .. } => {
                sent += u64::from(at >= since);
                let reply =
                    "the final dot may have been sent; the server's answer never arrived (maybe delivered)".to_owned();
                latest.insert(key, Latest { row, email, state: "uncertain", code: None, reply, attempts: attempt });
            }
            Record::Released { key, at, .. } => {
                sent = sent.saturating_sub(u64::from(at >= since));
                latest.remove(&key);
            }
            Record::Outcome { key, row, email, status, code, reply, attempt, .. } => {
                let state = match status {
                    Settled::Delivered => "delivered",
                    Settled::Failed => "failed",
                    Settled::Deferred => "deferred",
                };
                latest.insert(key, Latest { row, email, state, code, reply, attempts: attempt });
            }
        }
    }
    Ok((latest, last_run, sent))
}

fn summarise(
    job_file: &Path,
    paths: &JobPaths,
    latest: &HashMap<String, Latest>,
    last_run: Option<LastRunView>,
    sent_last_24h: u64,
) -> Status {
    let count = |state| latest.values().filter(|l| l.state == state).count() as u64;
    let max_per_day = JobFile::load(job_file).ok().and_then(|f| f.rate.max_per_day);
    Status {
        journal: paths.journal.display().to_string(),
        delivered: count("delivered"),
        failed: count("failed"),
        deferred: count("deferred"),
        uncertain: count("uncertain"),
        pending: pending(job_file, latest),
        last_run,
        max_per_day,
        sent_last_24h,
        budget_left: max_per_day.map(|m| m.saturating_sub(sent_last_24h)),
    }
}

/// Recipients in the CSV that the journal has never seen.
fn pending(job_file: &Path, latest: &HashMap<String, Latest>) -> Option<u64> {
    let job = Job::load(job_file).ok()?;
    let reader = job.recipients().ok()?;
    let n = reader
        .filter_map(Result::ok)
        .filter(|e| matches!(e, Entry::Recipient(r) if !latest.contains_key(&r.key)))
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
    latest: &HashMap<String, Latest>,
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
        let Entry::Recipient(r) = entry else { continue };
        let Some(l) = latest.get(&r.key).filter(|l| wanted(l)) else { continue };
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

fn write_json(out: &mut impl Write, status: &Status) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, status)?;
    writeln!(out)
}

fn write_text(out: &mut impl Write, s: &Status) -> std::io::Result<()> {
    writeln!(out, "journal    {}", s.journal)?;
    for (name, n) in
        [("delivered", s.delivered), ("failed", s.failed), ("deferred", s.deferred), ("uncertain", s.uncertain)]
    {
        writeln!(out, "{name:<10} {n}")?;
    }
    match s.pending {
        Some(n) => writeln!(out, "{:<10} {n}", "pending")?,
        None => writeln!(out, "{:<10} unknown (the job cannot be read now)", "pending")?,
    }
    if let Some(run) = &s.last_run {
        let outcome = match (&run.ended, run.exit_code, &run.summary) {
            (Some(ended), Some(code), Some(summary)) => format!("ended {}, exit {code}: {summary}", when(ended)),
            _ => "did not finish (killed or crashed); uncertain recipients are listed by --uncertain".into(),
        };
        writeln!(out, "last run   #{} started {}, {outcome}", run.run, when(&run.started))?;
    }
    match (s.max_per_day, s.budget_left) {
        (Some(max), Some(left)) => writeln!(out, "budget     {left} of {max} left in the last 24 hours")?,
        _ => writeln!(out, "budget     no daily limit ({} sent in the last 24 hours)", s.sent_last_24h)?,
    }
    Ok(())
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
