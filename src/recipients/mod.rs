//! Recipients: the CSV streamed row by row into `Recipient`s, with strict addresses and duplicates detected.
//!
//! Streaming matters: a million-row file must not be held in memory. The only state that grows is the
//! duplicate detector (`dedup`), 16 bytes per distinct recipient. Rows are numbered by their CSV line
//! (where the record starts), which is what a person sees in an editor.

pub mod address;
mod columns;
mod dedup;
mod lines;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use address::{AddressError, Mailbox};
pub use columns::{ColumnSpec, Columns, RESERVED_COLUMN};
use dedup::Seen;
use lines::LineCounter;

/// One valid, first-seen recipient: what `render` needs, owned so it can move to a worker thread.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The CSV line number where the record starts.
    pub row: u64,
    /// Identity for the journal and the Message-ID: the `key` column, or the case-folded envelope address.
    pub key: String,
    pub mailbox: Mailbox,
    /// Every cell, in header order.
    pub fields: Vec<String>,
    /// The header row these fields belong to (shared by all rows).
    pub columns: Arc<Columns>,
}

/// What each CSV row becomes.
#[derive(Debug, Clone)]
pub enum Entry {
    Recipient(Recipient),
    /// The same address again: a warning; only the first row is sent.
    Duplicate {
        row: u64,
        first_row: u64,
        address: String,
    },
}

/// A problem with one row; the rest of the file is still read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}{}: {kind}", column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
pub struct RowError {
    pub row: u64,
    pub column: Option<String>,
    pub kind: RowErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowErrorKind {
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("{found} fields where the header has {expected}")]
    Ragged { expected: u64, found: u64 },
    #[error("invalid address {value:?}: {error}")]
    Address { value: String, error: AddressError },
    #[error("the cell's display name {cell:?} differs from the name column's {column:?}")]
    NameConflict { cell: String, column: String },
    #[error("control characters (CR, LF, …) are not allowed in a name (header injection)")]
    ControlInName,
    #[error("the key is empty")]
    EmptyKey,
    #[error("the key {key:?} was already used by row {first_row} for another address")]
    DuplicateKey { key: String, first_row: u64 },
    /// Reading stopped here (I/O error); nothing after this row was read.
    #[error("cannot read further: {0}")]
    Read(String),
}

/// Problems with the file as a whole: it cannot be opened, or its header row does not fit the job.
#[derive(Debug, thiserror::Error)]
pub enum RecipientsError {
    #[error("{0}")]
    Open(crate::input::InputError),
    #[error("{path}:1: {message}")]
    Header { path: PathBuf, message: String },
}

/// The streaming reader: an iterator of `Result<Entry, RowError>`, one item per CSV record.
pub struct RecipientReader<R: Read> {
    csv: csv::Reader<LineCounter<R>>,
    columns: Arc<Columns>,
    record: csv::ByteRecord,
    seen: Seen,
    done: bool,
}

impl RecipientReader<File> {
    pub fn open(path: &Path, spec: &ColumnSpec) -> Result<Self, Vec<RecipientsError>> {
        let (file, _) = crate::input::open(path).map_err(|e| vec![RecipientsError::Open(e)])?;
        Self::from_reader(file, path, spec)
    }
}

impl<R: Read> RecipientReader<R> {
    /// Reads the header row and matches it against the configured columns; every mismatch is reported.
    pub fn from_reader(reader: R, path: &Path, spec: &ColumnSpec) -> Result<Self, Vec<RecipientsError>> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(LineCounter::new(reader));
        let header = |message: String| RecipientsError::Header { path: path.to_owned(), message };
        let headers = csv.byte_headers().map_err(|e| vec![header(e.to_string())])?.clone();
        let columns =
            Columns::from_headers(&headers, spec).map_err(|ms| ms.into_iter().map(header).collect::<Vec<_>>())?;
        let seen = Seen::new(columns.key.is_some());
        Ok(RecipientReader { csv, columns: Arc::new(columns), record: csv::ByteRecord::new(), seen, done: false })
    }

    /// The header names and the roles of the columns, shared with the renderer.
    pub fn columns(&self) -> &Arc<Columns> {
        &self.columns
    }

    fn entry(&mut self) -> Result<Entry, RowError> {
        let row = self.line_of(self.record.position().map(csv::Position::byte));
        let fields = self.columns.decode(&self.record).map_err(|column| RowError {
            row,
            column: Some(column),
            kind: RowErrorKind::NotUtf8,
        })?;
        let recipient = Columns::recipient(&self.columns, row, fields)?;
        self.seen.admit(recipient)
    }

    /// The physical line where the record at byte `start` starts (see `lines`).
    fn line_of(&mut self, start: Option<u64>) -> u64 {
        let start = start.unwrap_or_else(|| self.csv.position().byte());
        self.csv.get_mut().line_at(start)
    }

    fn csv_error(&mut self, error: csv::Error) -> RowError {
        // An I/O error has no position of its own; the record being read still has its start.
        let row = self.line_of(error.position().or(self.record.position()).map(csv::Position::byte));
        if let csv::ErrorKind::UnequalLengths { expected_len, len, .. } = error.kind() {
            return RowError { row, column: None, kind: RowErrorKind::Ragged { expected: *expected_len, found: *len } };
        }
        self.done = true;
        RowError { row, column: None, kind: RowErrorKind::Read(error.to_string()) }
    }
}

impl<R: Read> Iterator for RecipientReader<R> {
    type Item = Result<Entry, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.csv.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => Some(self.entry()),
            Err(error) => Some(Err(self.csv_error(error))),
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
