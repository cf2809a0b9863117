//! `mailshot repair`: a journal damaged before its last line (a bad disk block, a hand edit) is cut at the
//! first damaged line instead of being moved away, which would send every recipient again.
//!
//! The intact prefix stays the journal; the rest is kept beside it (`<stem>.journal.damaged-<UTC>.txt`,
//! not a `.jsonl`, so no run reads it as a journal). Every recipient the cut part names — in records that
//! still parse, or in the `"key"` of a damaged line — gets a committing record without an outcome, so that
//! it is *uncertain*: never re-sent unless the user asks (`status --uncertain` lists them). Damaged lines
//! that name no recipient are counted and reported.
//!
//! `--from-reports` mends the other loss: a journal that is whole but lacks records (see `evidence`). Each
//! recipient a report lists as delivered or failed, and the journal does not know, gets that outcome
//! (the reply says which report it came from); one listed as uncertain gets a committing record without an
//! outcome. The job's CSV gives each address its journal key.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::evidence::{self, Unknown};
use super::journal::{Journal, JournalState, Record, Settled, set_aside_names, sync_dir};
use super::lock;
use super::run::JobPaths;
use super::shard::Shard;
use crate::cli::RepairArgs;
use crate::exit_codes;
use crate::jobdef::Job;
use crate::output::{err_line, out_line};
use crate::recipients::Entry;

/// What a repair did.
#[derive(Debug, PartialEq, Eq)]
pub struct Repaired {
    /// The first damaged line (1-based).
    pub line: u64,
    pub kept: PathBuf,
    /// Recipients marked uncertain, by key.
    pub marked: usize,
    /// Damaged lines in which no recipient key could be read.
    pub unnamed: usize,
}

/// A recipient named in the cut part, with what is known of it.
#[derive(Debug, Default)]
struct Named {
    row: u64,
    email: String,
    message_id: String,
    date: i64,
    attempt: u32,
    /// When its dot may have gone out (for the daily budget); unknown for a damaged line.
    at: Option<DateTime<Utc>>,
}

/// The command: under the job's lock (no run may be appending meanwhile), repair its journal and say what
/// was done.
pub fn run(args: &RepairArgs) -> u8 {
    let (job, from_reports) = (args.job.as_path(), args.from_reports);
    let shard = match args.shard.as_deref().map(|spec| Shard::parse(spec, "--shard")).transpose() {
        Ok(shard) => shard,
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            return exit_codes::INPUT_ERROR;
        }
    };
    // A journal of another layout than the campaign's (no --shard on a sharded campaign, or another N) would
    // be created by `--from-reports` and then block every run of the campaign: refused, naming its journals.
    let others = crate::job::shard::layout::conflicting(job, shard);
    if let Some(first) = others.first() {
        let names: Vec<String> = others.iter().map(|f| f.path.display().to_string()).collect();
        let (theirs, way) = match first.shard {
            Some(s) => (format!("{} shards", s.count), format!("add --shard I/{} for the shard to repair", s.count)),
            None => ("one unsharded run".to_owned(), "leave out --shard".to_owned()),
        };
        err_line(&format!(
            "mailshot: {}: this campaign was sent as {theirs} ({}); nothing was changed: {way}",
            job.display(),
            names.join(", ")
        ));
        return exit_codes::INPUT_ERROR;
    }
    let paths = JobPaths::for_shard(job, shard);
    let _lock = match lock::acquire(&paths.lock) {
        Ok(lock) => lock,
        Err(e @ lock::LockError::Held { .. }) => {
            err_line(&format!("mailshot: {e}"));
            return exit_codes::TEMPFAIL;
        }
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            return exit_codes::INPUT_ERROR;
        }
    };
    if from_reports {
        return match take_back_from_reports(job, &paths, Utc::now()) {
            Ok(said) => {
                out_line(&said);
                exit_codes::SUCCESS
            }
            Err(e) => {
                err_line(&format!("mailshot: {e}"));
                exit_codes::INPUT_ERROR
            }
        };
    }
    let journal = paths.journal.display();
    match repair(&paths.journal, Utc::now()) {
        Ok(None) => {
            out_line(&format!("{journal}: no damaged line; nothing changed"));
            exit_codes::SUCCESS
        }
        Ok(Some(r)) => {
            out_line(&format!("{journal}: cut at line {}; the rest is kept in {}", r.line, r.kept.display()));
            out_line(&format!(
                "{} recipient(s) named there are now uncertain: `mailshot status {} --uncertain` lists them",
                r.marked,
                job.display()
            ));
            if r.unnamed > 0 {
                out_line(&format!(
                    "{} damaged line(s) name no recipient; compare the reports in reports/ before sending again",
                    r.unnamed
                ));
            }
            exit_codes::SUCCESS
        }
        Err(e) => {
            err_line(&format!("mailshot: {journal}: {e}"));
            exit_codes::INPUT_ERROR
        }
    }
}

/// Appends to the journal the statuses of the recipients the reports list and it does not know.
fn take_back_from_reports(job: &Path, paths: &JobPaths, now: DateTime<Utc>) -> Result<String, String> {
    let (journal, writer, replayed) = Journal::open(&paths.journal, now).map_err(|e| e.to_string())?;
    let reports = evidence::sent_since_last_run(&paths.reports, &replayed)
        .map_err(|e| format!("{}: {e}", paths.reports.display()))?;
    let keys = keys_by_address(job)?;
    let reports_read = reports.len();
    let mut latest: HashMap<String, (&Path, &Unknown)> = HashMap::new();
    for (report, rows) in &reports {
        for row in rows {
            latest.insert(row.email.to_ascii_lowercase(), (report.as_path(), row));
        }
    }
    let (mut taken, mut not_in_csv) = (0, 0);
    for (email, (report, row)) in &latest {
        let known = replayed.state_of_email(email);
        let Some((key, csv_row)) = keys.get(email) else {
            not_in_csv += usize::from(evidence::would_send_again(known));
            continue;
        };
        // Lost entirely (or back to deferred/released), or lost its outcome (left uncertain) while the report
        // knows how it ended.
        let state = replayed.get(key).map(|e| e.state).or(known);
        let lost = match state {
            Some(JournalState::Uncertain) => row.status != "uncertain",
            state => evidence::would_send_again(state),
        };
        if !lost {
            continue;
        }
        let record = record_from_report(key, *csv_row, report, row, now);
        journal.append(record).map_err(|e| e.to_string())?;
        taken += 1;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(journal.sync_all()).map_err(|e| e.to_string())?;
    drop(journal);
    writer.close().map_err(|e| e.to_string())?;
    if taken == 0 && not_in_csv == 0 {
        let journal = paths.journal.display();
        return Ok(format!("{journal}: the journal knows every recipient the reports list; nothing changed"));
    }
    let mut said = format!(
        "{}: took the statuses of {taken} recipient(s) back from {} report(s)",
        paths.journal.display(),
        reports_read
    );
    if not_in_csv > 0 {
        said.push_str(&format!("; {not_in_csv} listed address(es) are no longer in the CSV and were left out"));
    }
    Ok(said)
}

/// Each envelope address of the job's CSV (lower case) with its journal key and row.
fn keys_by_address(job: &Path) -> Result<HashMap<String, (String, u64)>, String> {
    let job = Job::load(job).map_err(|f| {
        let problems: Vec<String> = f.problems.iter().map(ToString::to_string).collect();
        format!("{}: {}", job.display(), problems.join("; "))
    })?;
    let reader =
        job.recipients().map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
    let mut keys = HashMap::new();
    for entry in reader.flatten() {
        if let Entry::Recipient(r) = entry {
            keys.insert(r.mailbox.envelope().to_ascii_lowercase(), (r.key, r.row));
        }
    }
    Ok(keys)
}

fn record_from_report(key: &str, row: u64, report: &Path, r: &Unknown, now: DateTime<Utc>) -> Record {
    let status = match r.status.as_str() {
        "delivered" => Settled::Delivered,
        "failed" => Settled::Failed,
        _ => {
            return Record::Committing {
                key: key.to_owned(),
                row,
                email: r.email.clone(),
                message_id: r.message_id.clone(),
                date: now.timestamp(),
                attempt: r.attempts.max(1),
                at: now,
            };
        }
    };
    let source = report.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    Record::Outcome {
        key: key.to_owned(),
        row,
        email: r.email.clone(),
        status,
        code: r.code,
        enhanced: r.enhanced.clone(),
        reply: format!("{} (taken back from reports/{source})", r.reply),
        attempt: r.attempts.max(1),
        date: now.timestamp(),
        copies: String::new(),
        at: now,
    }
}

/// Cuts `journal` at its first damaged complete line. `None`: nothing is damaged (a torn last line is not
/// damage: every run cuts it off by itself).
pub fn repair(journal: &Path, now: DateTime<Utc>) -> std::io::Result<Option<Repaired>> {
    let bytes = std::fs::read(journal)?;
    let Some((line, offset)) = first_damaged(&bytes) else { return Ok(None) };
    let cut = &bytes[offset..];
    let (named, unnamed) = names(cut, now);
    let stem = journal.file_name().map_or("job.journal.jsonl".into(), |n| n.to_string_lossy().into_owned());
    let stem = stem.trim_end_matches(".jsonl");
    let (kept, mut file) = set_aside_names(&format!("{stem}.damaged-"), now, ".txt")
        .map(|name| journal.with_file_name(name))
        .find_map(|kept| match std::fs::File::options().write(true).create_new(true).open(&kept) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
            opened => Some(opened.map(|file| (kept, file))),
        })
        .expect("some name is free")?;
    file.write_all(cut)?;
    file.sync_all()?;
    // The new journal (the intact part and the marks) is written beside the old one and then renamed over
    // it: a failed write (a full disk) or a crash leaves the damaged journal as it was, never one cut short
    // without its marks.
    let mut new = bytes[..offset].to_vec();
    for (key, n) in &named {
        let record = Record::Committing {
            key: key.clone(),
            row: n.row,
            email: n.email.clone(),
            message_id: n.message_id.clone(),
            date: n.date,
            attempt: n.attempt.max(1),
            at: n.at.unwrap_or(now),
        };
        serde_json::to_writer(&mut new, &record).expect("records serialise");
        new.push(b'\n');
    }
    let temporary = journal.with_file_name(format!("{stem}.repairing"));
    let written = std::fs::write(&temporary, &new).and_then(|()| std::fs::File::open(&temporary)?.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&temporary, journal)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    sync_dir(journal.parent().unwrap_or(Path::new(".")))?;
    Ok(Some(Repaired { line, kept, marked: named.len(), unnamed }))
}

/// The first complete line that is not a record: its number and byte offset.
fn first_damaged(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut offset = 0;
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if line.ends_with(b"\n") && serde_json::from_slice::<Record>(line).is_err() {
            return Some((i as u64 + 1, offset));
        }
        offset += line.len();
    }
    None
}

/// Every recipient key the cut part names, and how many damaged lines name none.
fn names(cut: &[u8], now: DateTime<Utc>) -> (BTreeMap<String, Named>, usize) {
    let mut named: BTreeMap<String, Named> = BTreeMap::new();
    let mut unnamed = 0;
    // Zeros are the writer's space ahead of its records (journal::prezeroed): after a power loss they may
    // stand before a record that reached the disk, or alone at the end. Neither is a damaged record.
    let lines = cut.split(|&b| b == b'\n').map(|l| &l[l.iter().take_while(|&&b| b == 0).count()..]);
    for line in lines.filter(|l| !l.iter().all(|&b| b.is_ascii_whitespace() || b == 0)) {
        let found = match serde_json::from_slice::<Record>(line) {
            Ok(Record::Committing { key, row, email, message_id, date, attempt, at }) => {
                Some((key, Named { row, email, message_id, date, attempt, at: Some(at) }))
            }
            Ok(Record::Outcome { key, row, email, date, attempt, at, .. }) => {
                Some((key, Named { row, email, date, attempt, at: Some(at), ..Named::default() }))
            }
            Ok(Record::Released { key, date, .. }) => Some((key, Named { date, ..Named::default() })),
            Ok(Record::Run { .. } | Record::RunEnd { .. }) => None,
            Err(_) => match string_field(line, "key") {
                Some(key) => {
                    let email = string_field(line, "email").unwrap_or_default();
                    Some((key, Named { email, date: now.timestamp(), ..Named::default() }))
                }
                None => {
                    unnamed += 1;
                    None
                }
            },
        };
        if let Some((key, n)) = found {
            let entry = named.entry(key).or_default();
            if n.row > 0 || entry.row == 0 {
                let at = entry.at.or(n.at);
                *entry = Named { attempt: n.attempt.max(entry.attempt), at, ..n };
            }
        }
    }
    (named, unnamed)
}

/// The value of `"name":"…"` in a line that is no longer valid JSON, if that much of it is intact.
fn string_field(line: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let start = text.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let mut value = String::new();
    let mut chars = text[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return serde_json::from_str::<String>(&format!("\"{value}\"")).ok(),
            '\\' => {
                value.push(c);
                value.push(chars.next()?);
            }
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::journal::{JournalState, Replayed};

    fn committing(key: &str, email: &str) -> String {
        format!(
            r#"{{"t":"committing","key":"{key}","row":2,"email":"{email}","message_id":"<m@x>","date":1,"attempt":1,"at":"2026-12-01T00:00:00Z"}}"#
        )
    }

    fn outcome(key: &str) -> String {
        format!(
            r#"{{"t":"outcome","key":"{key}","row":2,"email":"{key}@x.test","status":"delivered","code":250,"enhanced":null,"reply":"250 ok","attempt":1,"date":1,"at":"2026-12-01T00:00:01Z"}}"#
        )
    }

    #[test]
    fn cuts_at_the_first_damaged_line_keeps_the_rest_and_marks_everyone_it_names_uncertain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.journal.jsonl");
        let damaged = committing("c", "c@x.test").replace("\"row\":2", "\"row\":2\u{1}");
        let lines = [
            committing("a", "a@x.test"),
            outcome("a"),
            committing("b", "b@x.test"),
            damaged,
            outcome("b"),
            committing("d", "d@x.test"),
            "{\"t\":\"outco\u{7}".to_owned(),
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let now: DateTime<Utc> = "2026-12-02T00:00:00Z".parse().unwrap();
        let repaired = repair(&path, now).unwrap().expect("damage found");
        assert_eq!((repaired.line, repaired.marked, repaired.unnamed), (4, 3, 1));
        let kept = std::fs::read_to_string(&repaired.kept).unwrap();
        assert!(kept.starts_with("{\"t\":\"committing\",\"key\":\"c\"") && kept.contains("\"key\":\"d\""), "{kept}");
        let replayed = Replayed::read(std::fs::File::open(&path).unwrap(), now, &path).unwrap();
        assert_eq!(replayed.get("a").unwrap().state, JournalState::Settled(crate::job::journal::Settled::Delivered));
        for key in ["b", "c", "d"] {
            assert_eq!(replayed.get(key).unwrap().state, JournalState::Uncertain, "{key}");
        }
        assert_eq!(repair(&path, now).unwrap(), None, "a repaired journal is whole");
    }

    /// A power loss during a sync can leave zeros (journal::prezeroed), then an unsynced record that reached
    /// the disk, then zeros: the record's recipient becomes uncertain, with its row; the zeros name no one.
    #[test]
    fn zeros_before_a_record_are_cut_and_the_record_s_recipient_marked_uncertain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.journal.jsonl");
        let mut bytes = (committing("a", "a@x.test") + "\n").into_bytes();
        bytes.extend([0u8; 300]);
        bytes.extend((committing("b", "b@x.test") + "\n").into_bytes());
        bytes.extend([0u8; 4096]);
        std::fs::write(&path, bytes).unwrap();
        let now: DateTime<Utc> = "2026-12-02T00:00:00Z".parse().unwrap();
        let repaired = repair(&path, now).unwrap().expect("damage found");
        assert_eq!((repaired.line, repaired.marked, repaired.unnamed), (2, 1, 0));
        let replayed = Replayed::read(std::fs::File::open(&path).unwrap(), now, &path).unwrap();
        assert!(!replayed.torn_tail);
        for key in ["a", "b"] {
            assert_eq!(replayed.get(key).unwrap().state, JournalState::Uncertain, "{key}");
        }
        assert!(!std::fs::read(&path).unwrap().contains(&0));
    }

    #[test]
    fn a_torn_last_line_is_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.journal.jsonl");
        std::fs::write(&path, committing("a", "a@x.test") + "\n{\"t\":\"outc").unwrap();
        assert_eq!(repair(&path, Utc::now()).unwrap(), None);
    }
}
