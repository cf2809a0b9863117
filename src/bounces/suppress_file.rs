//! The suppression list `bounces` appends hard bounces to (`--suppress`, default `suppressed.csv` beside the
//! job): the same CSV shape `[recipients] exclude` reads (`email` first, then why, when and from what).
//!
//! Created with its header when missing, so that a job can name it in `exclude` before anything bounced.
//! An address already on it is not added again, so running `bounces` twice changes nothing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::recipients::{Suppression, SuppressionError};

pub const HEADER: [&str; 5] = ["email", "reason", "status", "date", "report"];

/// One address to add, with what a person reading the list needs to know.
#[derive(Debug, Clone)]
pub struct Entry {
    pub email: String,
    pub reason: String,
    pub status: String,
    pub date: String,
    pub report: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SuppressFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unreadable(Vec<SuppressionError>),
}

/// Appends those of `entries` not on the list yet; returns how many were added.
pub fn append(path: &Path, entries: &[Entry]) -> Result<usize, SuppressFileError> {
    let io = |source| SuppressFileError::Io { path: path.to_owned(), source };
    let existed = path.exists();
    let on_list = match existed {
        true => Suppression::load(&[path.to_owned()]).map_err(SuppressFileError::Unreadable)?,
        false => Suppression::default(),
    };
    let mut file = OpenOptions::new().append(true).create(true).open(path).map_err(io)?;
    let mut added = std::collections::HashSet::new();
    // A list edited by hand may not end its last line.
    let line_break = existed && !ends_with_newline(path).map_err(io)?;
    let mut csv = csv::WriterBuilder::new().from_writer(if line_break { b"\n".to_vec() } else { Vec::new() });
    if !existed {
        csv.write_record(HEADER).map_err(|e| io(e.into()))?;
    }
    for e in entries {
        if on_list.contains(&e.email) || !added.insert(e.email.to_ascii_lowercase()) {
            continue;
        }
        let cells = [&e.email, &e.reason, &e.status, &e.date, &e.report];
        csv.write_record(cells.map(|c| crate::output::spreadsheet_cell(c).into_owned())).map_err(|e| io(e.into()))?;
    }
    let bytes = csv.into_inner().map_err(|e| io(std::io::Error::other(e.to_string())))?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    if !existed {
        crate::job::journal::sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(io)?;
    }
    Ok(added.len())
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(email: &str) -> Entry {
        Entry {
            email: email.into(),
            reason: "hard bounce".into(),
            status: "5.1.1".into(),
            date: "2026-12-03".into(),
            report: "<r@x>".into(),
        }
    }

    #[test]
    fn creates_the_list_then_adds_only_new_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("suppressed.csv");
        assert_eq!(append(&path, &[entry("a@x.test"), entry("A@X.test"), entry("b@x.test")]).unwrap(), 2);
        assert_eq!(append(&path, &[entry("b@x.test"), entry("c@x.test")]).unwrap(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some("email,reason,status,date,report"));
        let emails: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(emails, ["a@x.test", "b@x.test", "c@x.test"]);
        // What it writes is what `exclude` reads.
        assert_eq!(Suppression::load(&[path]).unwrap().len(), 3);
    }

    #[test]
    fn a_list_kept_by_hand_keeps_its_columns_and_gets_a_line_break_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, "email,note\nold@x.test,unsubscribed").unwrap();
        assert_eq!(append(&path, &[entry("old@x.test"), entry("new@x.test")]).unwrap(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("email,note\nold@x.test,unsubscribed\nnew@x.test,"), "{text}");
        std::fs::write(&path, "address\nx@x.test\n").unwrap();
        assert!(append(&path, &[entry("y@x.test")]).unwrap_err().to_string().contains("no column named `email`"));
    }
}
