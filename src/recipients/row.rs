//! What a CSV row becomes: a [`Recipient`], a duplicate, or a [`RowError`] that names the row and column.
//! Below the readers (`columns`, `dedup`, `header`) that build them, so that none imports the module above.

use std::sync::Arc;

use super::address::{AddressError, Mailbox};
use super::columns::Columns;
use super::copies::{CopyError, CopyErrorKind, CopyRecipient, Twice};

/// How much of one cell or name a message quotes.
const QUOTED_CHARS: usize = 60;

/// One valid, first-seen recipient: what `render` needs, owned so it can move to a worker thread.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The CSV line number where the record starts.
    pub row: u64,
    /// Identity for the journal and the Message-ID: the `key` column, or the case-folded envelope address.
    pub key: String,
    pub mailbox: Mailbox,
    /// Cc, then Bcc copies (`[recipients] cc`, `bcc`, `[message] bcc`), in the order of `RCPT TO`.
    pub copies: Vec<CopyRecipient>,
    /// Every cell, in header order.
    pub fields: Vec<String>,
    /// The header row these fields belong to (shared by all rows).
    pub columns: Arc<Columns>,
}

impl Recipient {
    /// One record read with the header: parses the address, reconciles the display name, takes the key.
    pub fn from_fields(columns: &Arc<Columns>, row: u64, fields: Vec<String>) -> Result<Recipient, RowError> {
        let error = |column: usize, kind| RowError { row, column: Some(columns.names[column].clone()), kind };
        let cell = &fields[columns.email];
        let mut mailbox = Mailbox::parse(cell)
            .map_err(|e| error(columns.email, RowErrorKind::Address { value: cell.clone(), error: e }))?;
        if let Some(column) = columns.name {
            mailbox.name = Self::reconcile_name(mailbox.name, fields[column].trim()).map_err(|k| error(column, k))?;
        }
        let key = match columns.key {
            Some(column) if fields[column].trim().is_empty() => return Err(error(column, RowErrorKind::EmptyKey)),
            Some(column) => fields[column].trim().to_owned(),
            None => mailbox.dedup_key(),
        };
        let copies =
            (columns.copies.copies_of(&fields, &mailbox, columns.email)).map_err(|CopyError { column, kind }| {
                RowError { row, column: column.map(|c| columns.names[c].clone()), kind: kind.into() }
            })?;
        Ok(Recipient { row, key, mailbox, copies, fields, columns: Arc::clone(columns) })
    }

    /// A name in the address cell and a different one in the name column is ambiguous: refuse, never pick one.
    fn reconcile_name(in_cell: Option<String>, column: &str) -> Result<Option<String>, RowErrorKind> {
        if column.chars().any(char::is_control) {
            return Err(RowErrorKind::ControlInName);
        }
        match in_cell {
            Some(cell) if !column.is_empty() && cell != column => {
                Err(RowErrorKind::NameConflict { cell, column: column.to_owned() })
            }
            Some(cell) => Ok(Some(cell)),
            None if column.is_empty() => Ok(None),
            None => Ok(Some(column.to_owned())),
        }
    }
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
    /// On a suppression list (`[recipients] exclude`): never sent; `file` is the list that names it.
    Suppressed {
        row: u64,
        address: String,
        file: Arc<std::path::Path>,
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
    #[error("invalid address {:?}: {error}", short(value))]
    Address { value: String, error: AddressError },
    #[error("the cell's display name {:?} differs from the name column's {:?}", short(cell), short(column))]
    NameConflict { cell: String, column: String },
    #[error("control characters (CR, LF, …) are not allowed in a name (header injection)")]
    ControlInName,
    #[error("the key is empty")]
    EmptyKey,
    #[error("the key {:?} was already used by row {first_row} for another address", short(key))]
    DuplicateKey { key: String, first_row: u64 },
    #[error("{:?}: separate the addresses of a copy with `,`", short(value))]
    CopySeparator { value: String },
    #[error("{address} is the row's own address{}", if *fixed { " and also [message] bcc" } else { "; it cannot be a copy too" })]
    CopyIsOwnAddress { address: String, fixed: bool },
    #[error("{address} {twice}")]
    DuplicateCopy { address: String, twice: Twice },
    #[error("{count} copies (Cc and Bcc, [message] bcc included), more than [recipients] max_copies ({limit})")]
    TooManyCopies { count: usize, limit: usize },
    #[error("the cell is {bytes} bytes, more than [limits] cell_bytes ({limit})")]
    CellTooLong { bytes: u64, limit: u64 },
    /// Reading stopped here: the record did not end within `row_bytes`.
    #[error("the row is longer than [limits] row_bytes ({limit} bytes); nothing after it was read")]
    RowTooLong { limit: u64 },
    /// Reading stopped here (I/O error); nothing after this row was read.
    #[error("cannot read further: {0}")]
    Read(String),
}

impl From<CopyErrorKind> for RowErrorKind {
    fn from(kind: CopyErrorKind) -> RowErrorKind {
        match kind {
            CopyErrorKind::Address { value, error } => RowErrorKind::Address { value, error },
            CopyErrorKind::Separator { value } => RowErrorKind::CopySeparator { value },
            CopyErrorKind::OwnAddress { address, fixed } => RowErrorKind::CopyIsOwnAddress { address, fixed },
            CopyErrorKind::Duplicate { address, twice } => RowErrorKind::DuplicateCopy { address, twice },
            CopyErrorKind::TooMany { count, limit } => RowErrorKind::TooManyCopies { count, limit },
        }
    }
}

/// A name or cell as a message quotes it: at most 60 characters, then `…` and the full length.
pub fn short(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cuts_at_a_character_boundary() {
        assert_eq!(short("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(short(&long), format!("{}… (200 bytes)", "é".repeat(60)));
    }
}
