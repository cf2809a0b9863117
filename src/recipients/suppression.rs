//! Suppression lists (`[recipients] exclude`): CSV files of addresses that must never be sent to again
//! (hard bounces, unsubscribes). A row whose address is on one becomes [`Entry::Suppressed`](super::Entry).
//!
//! Addresses are compared as duplicates are ([`Mailbox::dedup_key`]: the envelope address, case-folded, the
//! domain IDNA-normalised), so `Bob@Bücher.example` in a list excludes `bob@xn--bcher-kva.example` in the CSV.
//! The lists are small next to the CSV (thousands, not millions), so they are held whole. Rows may have
//! more or fewer cells than the header (lists are kept by hand and appended to): only `email` matters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Mailbox;

/// The column every suppression file must have; other columns (reason, date, source) are kept for people.
pub const EMAIL_COLUMN: &str = "email";

/// Every suppressed address and the file that first named it.
#[derive(Debug, Default, Clone)]
pub struct Suppression {
    by_address: HashMap<String, Arc<Path>>,
}

/// A suppression file that cannot be used; the job is not sent while one exists (a typo in a list must not
/// turn into mail to the people on it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuppressionError {
    #[error("{reason}")]
    File { path: PathBuf, reason: String },
    #[error("{}:1: no column named `{EMAIL_COLUMN}` (a suppression list needs one)", path.display())]
    NoEmailColumn { path: PathBuf },
    #[error("{}:{line}: column `{EMAIL_COLUMN}`: {reason}", path.display())]
    Address { path: PathBuf, line: u64, reason: String },
    /// A record the CSV reader refused (unequal fields, not UTF-8); `line` is where it starts.
    #[error("{}:{line}: {reason}", path.display())]
    Record { path: PathBuf, line: u64, reason: String },
}

impl Suppression {
    /// Reads every file (streamed, regular files only), reporting every problem of every file.
    pub fn load(paths: &[PathBuf]) -> Result<Suppression, Vec<SuppressionError>> {
        let mut suppression = Suppression::default();
        let mut errors = Vec::new();
        for path in paths {
            let file: Arc<Path> = Arc::from(path.as_path());
            match crate::input::open(path) {
                Ok((reader, _)) => suppression.read(&file, reader, &mut errors),
                Err(e) => errors.push(SuppressionError::File { path: path.clone(), reason: e.to_string() }),
            }
        }
        if errors.is_empty() { Ok(suppression) } else { Err(errors) }
    }

    fn read(&mut self, file: &Arc<Path>, reader: impl std::io::Read, errors: &mut Vec<SuppressionError>) {
        let path = file.to_path_buf();
        let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(reader);
        let column = match csv.headers() {
            Ok(headers) => headers.iter().position(|h| h.trim().eq_ignore_ascii_case(EMAIL_COLUMN)),
            Err(e) => return errors.push(SuppressionError::File { path, reason: e.to_string() }),
        };
        let Some(column) = column else { return errors.push(SuppressionError::NoEmailColumn { path }) };
        for record in csv.records() {
            let line = |position: Option<&csv::Position>| position.map_or(0, csv::Position::line);
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    let line = line(e.position());
                    errors.push(SuppressionError::Record { path: path.clone(), line, reason: e.to_string() });
                    continue;
                }
            };
            let cell = record.get(column).unwrap_or("");
            match Mailbox::parse(cell) {
                Ok(mailbox) => {
                    self.by_address.entry(mailbox.dedup_key()).or_insert_with(|| Arc::clone(file));
                }
                Err(e) => errors.push(SuppressionError::Address {
                    path: path.clone(),
                    line: line(record.position()),
                    reason: format!("invalid address {:?}: {e}", super::row::short(cell)),
                }),
            }
        }
    }

    /// The file that excludes `mailbox`, if one does.
    pub fn file_for(&self, mailbox: &Mailbox) -> Option<&Arc<Path>> {
        if self.by_address.is_empty() {
            return None;
        }
        self.by_address.get(&mailbox.dedup_key())
    }

    /// Whether `address` (any form `Mailbox::parse` takes) is on a list.
    pub fn contains(&self, address: &str) -> bool {
        Mailbox::parse(address).is_ok_and(|m| self.file_for(&m).is_some())
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the files (a `None` text is left missing) and loads them in order.
    fn load(files: &[(&str, Option<&str>)]) -> (tempfile::TempDir, Result<Suppression, Vec<SuppressionError>>) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| {
                let path = dir.path().join(name);
                text.map(|t| std::fs::write(&path, t).unwrap());
                path
            })
            .collect();
        let loaded = Suppression::load(&paths);
        (dir, loaded)
    }

    #[test]
    fn addresses_match_as_duplicates_do_case_and_idna() {
        let (dir, s) =
            load(&[("s.csv", Some("reason,Email\nbounced,Bob@Bücher.Example\nunsubscribed,<ann@x.test>\n"))]);
        let s = s.unwrap();
        assert_eq!(s.len(), 2);
        let bob = Mailbox::parse("bob@xn--bcher-kva.example").unwrap();
        assert_eq!(s.file_for(&bob).map(|p| p.to_path_buf()), Some(dir.path().join("s.csv")));
        assert!(s.contains("Ann Other <ANN@x.test>"));
        assert!(!s.contains("carol@x.test"));
    }

    #[test]
    fn the_first_file_naming_an_address_is_the_one_reported() {
        let (dir, s) = load(&[("a.csv", Some("email\nz@x.test\n")), ("b.csv", Some("email\nz@x.test\ny@x.test\n"))]);
        let s = s.unwrap();
        let file = |a: &str| s.file_for(&Mailbox::parse(a).unwrap()).unwrap().to_path_buf();
        assert_eq!(file("z@x.test"), dir.path().join("a.csv"));
        assert_eq!(file("y@x.test"), dir.path().join("b.csv"));
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let (dir, s) = load(&[
            ("bad.csv", Some("email,reason\nok@x.test,a\nnot an address,b\n\"multi\nline\",c,extra\n")),
            ("none.csv", Some("address\na@x.test\n")),
            ("missing.csv", None),
        ]);
        let errors: Vec<String> = s.unwrap_err().iter().map(ToString::to_string).collect();
        let bad = dir.path().join("bad.csv").display().to_string();
        assert!(errors[0].starts_with(&format!("{bad}:3: column `email`: invalid address \"not an address\"")));
        assert!(
            errors[1].starts_with(&format!("{bad}:4: column `email`: invalid address \"multi\\nline\"")),
            "{errors:?}"
        );
        let none = dir.path().join("none.csv").display().to_string();
        assert_eq!(errors[2], format!("{none}:1: no column named `email` (a suppression list needs one)"));
        let missing = dir.path().join("missing.csv").display().to_string();
        assert!(errors[3].starts_with(&format!("{missing}: cannot open: ")), "{errors:?}");
        assert_eq!(errors.len(), 4, "{errors:?}");
    }
}
