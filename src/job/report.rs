//! The outcome report: `<job>/reports/<timestamp>.csv`, one row per recipient, written as each one settles
//! (so memory stays flat and a crash still leaves the rows written so far).

use std::borrow::Cow;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

use super::settlement::Settlement;
use crate::output::spreadsheet_cell;

/// `copies` last, so that a reader of older reports (by column position) reads newer ones too.
pub const HEADER: [&str; 11] = [
    "row",
    "email",
    "status",
    "code",
    "enhanced_code",
    "reply",
    "attempts",
    "message_id",
    "first_attempt",
    "last_attempt",
    "copies",
];

#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write the report: {source}")]
pub struct ReportError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

pub struct Report {
    path: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

/// [`spreadsheet_cell`] as bytes, borrowed when nothing changes (the usual case).
fn safe_cell(cell: &str) -> Cow<'_, [u8]> {
    match spreadsheet_cell(cell) {
        Cow::Borrowed(cell) => Cow::Borrowed(cell.as_bytes()),
        Cow::Owned(cell) => Cow::Owned(cell.into_bytes()),
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default()
}

impl Report {
    /// Creates `dir/<started, UTC, sortable>.csv` and writes the header.
    pub fn create(dir: &Path, started: DateTime<Utc>) -> Result<Report, ReportError> {
        let path = dir.join(format!("{}.csv", started.format("%Y%m%dT%H%M%S%.3fZ")));
        let err = |source| ReportError { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(err)?;
        let file = File::options().write(true).create_new(true).open(&path).map_err(err)?;
        let mut report = Report { writer: csv::Writer::from_writer(BufWriter::new(file)), path };
        report.writer.write_record(HEADER).map_err(|e| report.error(e))?;
        Ok(report)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One row. Every cell goes through [`spreadsheet_cell`]: a reply or an address that starts with `=`, `+`,
    /// `-`, `@`, a tab or a CR gets a `'` in front, so that a spreadsheet shows it instead of running it, and
    /// control characters are escaped (the journal keeps the reply as it came).
    pub fn write(&mut self, o: &Settlement) -> Result<(), ReportError> {
        let code = o.code.map(|c| c.to_string()).unwrap_or_default();
        let (row, attempts) = (o.row.to_string(), o.attempts.to_string());
        let record = [
            row.as_str(),
            &o.email,
            o.status.as_str(),
            &code,
            o.enhanced.as_deref().unwrap_or(""),
            &o.reply,
            &attempts,
            &o.message_id,
            &time(o.first_attempt),
            &time(o.last_attempt),
            &o.copies,
        ];
        self.writer.write_record(record.map(safe_cell)).map_err(|e| self.error(e))
    }

    /// Flushes the report and makes it and its name durable: a report is evidence of what was sent.
    pub fn finish(mut self) -> Result<PathBuf, ReportError> {
        let err = |source| ReportError { path: self.path.clone(), source };
        self.writer.flush().map_err(err)?;
        self.writer.get_ref().get_ref().sync_all().map_err(err)?;
        crate::job::journal::sync_dir(self.path.parent().unwrap_or(Path::new("."))).map_err(err)?;
        Ok(self.path)
    }

    fn error(&self, e: csv::Error) -> ReportError {
        ReportError { path: self.path.clone(), source: e.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::settlement::Status;

    #[test]
    fn rows_round_trip_through_a_csv_reader() {
        let dir = tempfile::tempdir().unwrap();
        let started = "2026-11-25T10:00:00.123Z".parse().unwrap();
        let mut report = Report::create(dir.path(), started).unwrap();
        let settlement = Settlement {
            row: 7,
            email: "zoë@example.test".into(),
            status: Status::Failed,
            code: Some(550),
            enhanced: Some("5.1.1".into()),
            reply: "550 5.1.1 <zoë@example.test>: No such user, \"really\"".into(),
            attempts: 1,
            message_id: "<a@b>".into(),
            first_attempt: Some(started),
            last_attempt: None,
            copies: "cc@example.test: 550 5.1.1 No such user".into(),
        };
        report.write(&settlement).unwrap();
        let path = report.finish().unwrap();
        assert_eq!(path.file_name().unwrap(), "20261125T100000.123Z.csv");
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(reader.headers().unwrap(), HEADER.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][1], "zoë@example.test");
        assert_eq!(&rows[0][2], "failed");
        assert_eq!(&rows[0][3], "550");
        assert_eq!(&rows[0][5], settlement.reply);
        assert_eq!(&rows[0][8], "2026-11-25T10:00:00.123Z");
        assert_eq!(&rows[0][9], "");
        assert_eq!(&rows[0][10], "cc@example.test: 550 5.1.1 No such user");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_quoted_and_controls_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = Report::create(dir.path(), Utc::now()).unwrap();
        let settlement = Settlement {
            row: 2,
            email: "=1+1@example.test".into(),
            status: Status::Failed,
            code: Some(550),
            enhanced: None,
            reply: "@SUM(1+1)\x1b[31m".into(),
            attempts: 1,
            message_id: "-<a@b>".into(),
            first_attempt: None,
            last_attempt: None,
            copies: String::new(),
        };
        report.write(&settlement).unwrap();
        let path = report.finish().unwrap();
        let row = csv::Reader::from_path(&path).unwrap().records().next().unwrap().unwrap();
        assert_eq!((&row[1], &row[5], &row[7]), ("'=1+1@example.test", "'@SUM(1+1)\\x1b[31m", "'-<a@b>"));
    }

    #[test]
    fn never_overwrites_an_earlier_report() {
        let dir = tempfile::tempdir().unwrap();
        let started = Utc::now();
        Report::create(dir.path(), started).unwrap().finish().unwrap();
        assert!(Report::create(dir.path(), started).is_err());
    }
}
