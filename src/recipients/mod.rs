//! Recipients: the CSV streamed row by row into `Recipient`s, with strict addresses and duplicates detected.
//!
//! Streaming matters: a million-row file must not be held in memory. The only state that grows is the
//! duplicate detector (`dedup`), 16 bytes per distinct recipient. Rows are numbered by their CSV line
//! (where the record starts), which is what a person sees in an editor. Nothing a row holds can make
//! reading it costly: `CsvLimits` bounds the bytes of a record and of a cell, and the number of columns.

pub mod address;
mod columns;
pub mod copies;
mod dedup;
mod header;
mod lines;
mod row;
mod suppression;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use address::{AddressError, Mailbox};
pub use columns::{ColumnSpec, Columns, RESERVED_COLUMN};
pub use copies::{CopyKind, CopyRecipient, CopyRules};
use dedup::Seen;
use lines::LineCounter;
pub use row::{Entry, Recipient, RowError, RowErrorKind};
pub use suppression::{Suppression, SuppressionError};

/// How much one CSV record may be (`[limits]`, see `config::limits` for the defaults and ceilings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvLimits {
    pub cell_bytes: u64,
    /// Reading stops at a record longer than this (a file without line breaks, a quote never closed).
    pub row_bytes: u64,
    pub columns: u64,
}

/// Read ahead of a record by the csv parser's buffer (8 KiB), allowed on top of `row_bytes`.
const READ_AHEAD: u64 = 64 << 10;

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
    suppression: Arc<Suppression>,
    limits: CsvLimits,
    done: bool,
}

impl RecipientReader<File> {
    pub fn open(path: &Path, spec: &ColumnSpec, limits: CsvLimits) -> Result<Self, Vec<RecipientsError>> {
        let (file, _) = crate::input::open(path).map_err(|e| vec![RecipientsError::Open(e)])?;
        Self::from_reader(file, path, spec, limits)
    }
}

impl<R: Read> RecipientReader<R> {
    /// Reads the header row and matches it against the configured columns; every mismatch is reported.
    pub fn from_reader(
        reader: R,
        path: &Path,
        spec: &ColumnSpec,
        limits: CsvLimits,
    ) -> Result<Self, Vec<RecipientsError>> {
        let mut lines = LineCounter::new(reader);
        lines.allow_until(limits.row_bytes + READ_AHEAD);
        let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(lines);
        let header = |message: String| vec![RecipientsError::Header { path: path.to_owned(), message }];
        let headers = csv.byte_headers().cloned();
        let headers = match headers {
            Ok(headers) => headers,
            Err(_) if csv.get_ref().exceeded() => {
                return Err(header(format!("the header row is longer than [limits] row_bytes ({})", limits.row_bytes)));
            }
            Err(e) => return Err(header(e.to_string())),
        };
        if headers.len() as u64 > limits.columns {
            let message =
                format!("the header has {} columns, more than [limits] columns ({})", headers.len(), limits.columns);
            return Err(header(message));
        }
        let columns =
            Columns::from_headers(&headers, spec).map_err(|ms| ms.into_iter().flat_map(header).collect::<Vec<_>>())?;
        let seen = Seen::new(columns.key.is_some());
        let record = csv::ByteRecord::new();
        let suppression = Arc::default();
        Ok(RecipientReader { csv, columns: Arc::new(columns), record, seen, suppression, limits, done: false })
    }

    /// Rows whose address is on one of these lists become [`Entry::Suppressed`].
    pub fn excluding(self, suppression: Arc<Suppression>) -> Self {
        RecipientReader { suppression, ..self }
    }

    /// The header names and the roles of the columns, shared with the renderer.
    pub fn columns(&self) -> &Arc<Columns> {
        &self.columns
    }

    fn entry(&mut self) -> Result<Entry, RowError> {
        let row = self.line_of(self.record.position().map(csv::Position::byte));
        let limit = self.limits.cell_bytes;
        if let Some((i, cell)) = self.record.iter().enumerate().find(|(_, cell)| cell.len() as u64 > limit) {
            let kind = RowErrorKind::CellTooLong { bytes: cell.len() as u64, limit };
            return Err(RowError { row, column: self.columns.names.get(i).cloned(), kind });
        }
        let fields = self.columns.decode(&self.record).map_err(|column| RowError {
            row,
            column: Some(column),
            kind: RowErrorKind::NotUtf8,
        })?;
        let recipient = Recipient::from_fields(&self.columns, row, fields)?;
        if let Some(file) = self.suppression.file_for(&recipient.mailbox) {
            let (address, file) = (recipient.mailbox.dedup_key(), Arc::clone(file));
            return Ok(Entry::Suppressed { row, address, file });
        }
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
        if self.csv.get_ref().exceeded() {
            return RowError { row, column: None, kind: RowErrorKind::RowTooLong { limit: self.limits.row_bytes } };
        }
        RowError { row, column: None, kind: RowErrorKind::Read(error.to_string()) }
    }
}

impl<R: Read> Iterator for RecipientReader<R> {
    type Item = Result<Entry, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.csv.position().byte();
        self.csv.get_mut().allow_until(start + self.limits.row_bytes + READ_AHEAD);
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
