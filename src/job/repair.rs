//! `mailshot repair`: a journal damaged before its last line (a bad disk block, a hand edit) is cut at the
//! first damaged line instead of being moved away, which would send every recipient again.
//!
//! The intact prefix stays the journal; the rest is kept beside it (`<stem>.journal.damaged-<UTC>.txt`,
//! not a `.jsonl`, so no run reads it as a journal). Every recipient the cut part names — in records that
//! still parse, or in the `"key"` of a damaged line — gets a committing record without an outcome, so that
//! it is *uncertain*: never re-sent unless the user asks (`status --uncertain` lists them). Damaged lines
//! that name no recipient are counted and reported.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::journal::{Record, sync_dir};
use super::lock;
use super::run::JobPaths;
use crate::exit_codes;

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
}

/// The command: under the job's lock (no run may be appending meanwhile), repair its journal and say what
/// was done.
pub fn run(job: &Path) -> u8 {
    let paths = JobPaths::of(job);
    let _lock = match lock::acquire(&paths.lock) {
        Ok(lock) => lock,
        Err(e @ lock::LockError::Held { .. }) => {
            eprintln!("mailshot: {e}");
            return exit_codes::TEMPFAIL;
        }
        Err(e) => {
            eprintln!("mailshot: {e}");
            return exit_codes::INPUT_ERROR;
        }
    };
    let journal = paths.journal.display();
    match repair(&paths.journal, Utc::now()) {
        Ok(None) => {
            println!("{journal}: no damaged line; nothing changed");
            exit_codes::SUCCESS
        }
        Ok(Some(r)) => {
            println!("{journal}: cut at line {}; the rest is kept in {}", r.line, r.kept.display());
            println!(
                "{} recipient(s) named there are now uncertain: `mailshot status {} --uncertain` lists them",
                r.marked,
                job.display()
            );
            if r.unnamed > 0 {
                println!(
                    "{} damaged line(s) name no recipient; compare the reports in reports/ before sending again",
                    r.unnamed
                );
            }
            exit_codes::SUCCESS
        }
        Err(e) => {
            eprintln!("mailshot: {journal}: {e}");
            exit_codes::INPUT_ERROR
        }
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
    let kept = journal.with_file_name(format!("{stem}.damaged-{}.txt", now.format("%Y%m%dT%H%M%SZ")));
    let mut file = std::fs::File::options().write(true).create_new(true).open(&kept)?;
    file.write_all(cut)?;
    file.sync_all()?;
    let mut out = std::fs::File::options().write(true).open(journal)?;
    out.set_len(offset as u64)?;
    let mut tail = Vec::new();
    for (key, n) in &named {
        let record = Record::Committing {
            key: key.clone(),
            row: n.row,
            email: n.email.clone(),
            message_id: n.message_id.clone(),
            date: n.date,
            attempt: n.attempt.max(1),
            at: now,
        };
        serde_json::to_writer(&mut tail, &record).expect("records serialise");
        tail.push(b'\n');
    }
    use std::io::Seek;
    out.seek(std::io::SeekFrom::End(0))?;
    out.write_all(&tail)?;
    out.sync_all()?;
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
    for line in cut.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        let found = match serde_json::from_slice::<Record>(line) {
            Ok(Record::Committing { key, row, email, message_id, date, attempt, .. }) => {
                Some((key, Named { row, email, message_id, date, attempt }))
            }
            Ok(Record::Outcome { key, row, email, date, attempt, .. }) => {
                Some((key, Named { row, email, date, attempt, ..Named::default() }))
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
                *entry = Named { attempt: n.attempt.max(entry.attempt), ..n };
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
    use crate::job::journal::{Replayed, State};

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
        assert_eq!(replayed.get("a").unwrap().state, State::Settled(crate::job::journal::Settled::Delivered));
        for key in ["b", "c", "d"] {
            assert_eq!(replayed.get(key).unwrap().state, State::Uncertain, "{key}");
        }
        assert_eq!(repair(&path, now).unwrap(), None, "a repaired journal is whole");
    }

    #[test]
    fn a_torn_last_line_is_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.journal.jsonl");
        std::fs::write(&path, committing("a", "a@x.test") + "\n{\"t\":\"outc").unwrap();
        assert_eq!(repair(&path, Utc::now()).unwrap(), None);
    }
}
