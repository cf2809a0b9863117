//! Reports are evidence: every recipient a report says this run sent (delivered, failed or uncertain, with
//! at least one attempt) must be one the journal would not send again. If the journal does not know the
//! address, or has it only as deferred or released, it lost records (restored from an older copy, cut short
//! by a full disk or by hand), and believing it would send those recipients again. `send` refuses (exit 2)
//! naming the report; `mailshot repair --from-reports` takes the reports' statuses back into the journal.
//! Rows with no attempt are no evidence: an outcome carried from an earlier run (listed under the CSV's
//! current address, which may have been corrected since) or a message that could not be built.
//!
//! Only reports written since the journal's last run began are read (all of them when the journal knows no
//! run): with an intact journal that is the last run's report alone, so the check costs one report's read.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::journal::{JournalState, Replayed, Settled};

/// One report row the journal does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub row: u64,
    pub email: String,
    /// `delivered`, `failed` or `uncertain`.
    pub status: String,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub reply: String,
    pub attempts: u32,
    pub message_id: String,
}

/// The reports that list recipients the journal does not know, each with those rows.
#[derive(Debug, Default)]
pub struct Missing {
    pub reports: Vec<(PathBuf, Vec<Unknown>)>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    pub fn count(&self) -> usize {
        self.reports.iter().map(|(_, rows)| rows.len()).sum()
    }

    /// The refusal, naming the first report and how many recipients it and the others list.
    pub fn refusal(&self, job: &Path) -> String {
        let (first, rows) = &self.reports[0];
        let example = &rows[0];
        format!(
            "{} lists {} recipient(s) as delivered, failed or uncertain that the journal does not know (e.g. row \
             {} {}: {}); {} in all across {} report(s). The journal lost records (restored from an older copy, or \
             cut short?), and sending now could send them again. Nothing was sent. `mailshot repair {} \
             --from-reports` takes the reports' statuses back into the journal",
            first.display(),
            rows.len(),
            example.row,
            example.email,
            example.status,
            self.count(),
            self.reports.len(),
            job.display(),
        )
    }
}

/// Compares the reports in `reports_dir` with the replayed journal.
pub fn check(reports_dir: &Path, replayed: &Replayed) -> std::io::Result<Missing> {
    let mut missing = Missing::default();
    for (path, rows) in sent_since_last_run(reports_dir, replayed)? {
        let rows: Vec<Unknown> =
            rows.into_iter().filter(|r| would_send_again(replayed.state_of_email(&r.email))).collect();
        if !rows.is_empty() {
            missing.reports.push((path, rows));
        }
    }
    Ok(missing)
}

/// A journal state under which a recipient a report says was sent would be sent again.
pub fn would_send_again(state: Option<JournalState>) -> bool {
    matches!(state, None | Some(JournalState::Released | JournalState::Settled(Settled::Deferred)))
}

/// The rows saying something was sent, of every report written since the journal's last run began (of
/// every report, when the journal knows no run), oldest report first.
pub fn sent_since_last_run(reports_dir: &Path, replayed: &Replayed) -> std::io::Result<Vec<(PathBuf, Vec<Unknown>)>> {
    let since = replayed.last_run.as_ref().map(|r| r.started - chrono::Duration::seconds(2));
    let mut found = Vec::new();
    for (path, written) in reports(reports_dir)? {
        if since.is_none_or(|since| written >= since) {
            let rows = read(&path)?;
            found.push((path, rows));
        }
    }
    Ok(found)
}

/// `reports/<UTC>.csv` files, oldest first, with the time their name gives.
fn reports(dir: &Path) -> std::io::Result<Vec<(PathBuf, DateTime<Utc>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let stamp = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".csv"));
        if let Some(t) = stamp.and_then(|s| NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S%.3fZ").ok()) {
            found.push((path, t.and_utc()));
        }
    }
    found.sort_by_key(|(_, t)| *t);
    Ok(found)
}

/// The rows of a report that say something was sent (delivered, failed, uncertain).
fn read(path: &Path) -> std::io::Result<Vec<Unknown>> {
    let mut reader = csv::Reader::from_path(path).map_err(std::io::Error::other)?;
    let mut rows = Vec::new();
    for record in reader.records() {
        // A report cut short by a crash ends in a partial row: what is there is still evidence.
        let Ok(r) = record else { break };
        let field = |i: usize| unescape(r.get(i).unwrap_or(""));
        let (status, attempts) = (field(2), field(6).parse().unwrap_or(0));
        if !matches!(status.as_str(), "delivered" | "failed" | "uncertain") || attempts == 0 {
            continue;
        }
        rows.push(Unknown {
            row: field(0).parse().unwrap_or(0),
            email: field(1),
            status,
            code: field(3).parse().ok(),
            enhanced: Some(field(4)).filter(|e| !e.is_empty()),
            reply: field(5),
            attempts,
            message_id: field(7),
        });
    }
    Ok(rows)
}

/// A cell as written, without the `'` a report puts before a leading `=`, `+`, `-`, `@`, tab, CR or `'`
/// (`output::spreadsheet_cell`).
fn unescape(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest.to_owned(),
        _ => cell.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::journal::Journal;

    const HEADER: &str = "row,email,status,code,enhanced_code,reply,attempts,message_id,first_attempt,last_attempt\n";

    fn report(dir: &Path, name: &str, rows: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), format!("{HEADER}{}\n", rows.join("\n"))).unwrap();
    }

    #[test]
    fn a_report_listing_what_the_journal_does_not_know_is_found_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("job.journal.jsonl");
        let line = |email: &str| {
            format!(
                r#"{{"t":"committing","key":"{email}","row":2,"email":"{email}","message_id":"<m>","date":1,"attempt":1,"at":"2026-12-01T00:00:00Z"}}"#
            )
        };
        let run = r#"{"t":"run","run":1,"started":"2026-12-01T10:00:00Z","pid":1,"fingerprint":"f"}"#;
        std::fs::write(&journal, format!("{run}\n{}\n", line("a@x.test"))).unwrap();
        let reports = dir.path().join("reports");
        // Before the journal's last run: not read. Since: read.
        report(&reports, "20261130T100000.000Z.csv", &["2,old@x.test,delivered,250,,ok,1,<m>,,"]);
        report(
            &reports,
            "20261201T100000.500Z.csv",
            &[
                "2,a@x.test,delivered,250,2.0.0,ok,1,<m>,,",
                "3,b@x.test,delivered,250,2.0.0,ok,1,<m>,,",
                "4,c@x.test,skipped,,,not sent,0,,,",
                "5,d@x.test,uncertain,,,maybe,1,<m>,,",
            ],
        );
        let (_j, _w, replayed) = Journal::open(&journal, Utc::now()).unwrap();
        let missing = check(&reports, &replayed).unwrap();
        let emails: Vec<&str> = missing.reports.iter().flat_map(|(_, r)| r.iter().map(|u| u.email.as_str())).collect();
        assert_eq!(emails, ["b@x.test", "d@x.test"]);
        assert!(missing.refusal(Path::new("job.toml")).contains("repair job.toml --from-reports"));
    }

    #[test]
    fn without_any_run_in_the_journal_every_report_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        report(&reports, "20261130T100000.000Z.csv", &["2,'-x@x.test,failed,550,5.1.1,no,1,<m>,,"]);
        let missing = check(&reports, &Replayed::default()).unwrap();
        assert_eq!(missing.count(), 1);
        assert_eq!(missing.reports[0].1[0].email, "-x@x.test", "the spreadsheet guard is taken off");
    }
}
