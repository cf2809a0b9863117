//! The header row: which column is the address, the name, the key; and turning one record into a `Recipient`.

use std::sync::Arc;

use super::{Mailbox, Recipient, RowError, RowErrorKind};

/// The name templates find mailshot's own values under (`mailshot.date`); no column may have it.
pub const RESERVED_COLUMN: &str = "mailshot";

/// The column names the job file asks for (`[recipients] email`, `name`, `key`).
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub email: String,
    pub name: Option<String>,
    pub key: Option<String>,
}

/// The header row, resolved against a `ColumnSpec`. Every name is a template variable.
#[derive(Debug, Clone)]
pub struct Columns {
    pub names: Vec<String>,
    pub email: usize,
    pub name: Option<usize>,
    pub key: Option<usize>,
}

impl Columns {
    /// The cells as strings, or the name of the first column that is not UTF-8.
    pub fn decode(&self, record: &csv::ByteRecord) -> Result<Vec<String>, String> {
        record
            .iter()
            .enumerate()
            .map(|(i, cell)| std::str::from_utf8(cell).map(str::to_owned).map_err(|_| self.names[i].clone()))
            .collect()
    }

    /// Parses the address, reconciles the display name, takes the key.
    pub fn recipient(self: &Arc<Self>, row: u64, fields: Vec<String>) -> Result<Recipient, RowError> {
        let error = |column: usize, kind| RowError { row, column: Some(self.names[column].clone()), kind };
        let cell = &fields[self.email];
        let mut mailbox = Mailbox::parse(cell)
            .map_err(|e| error(self.email, RowErrorKind::Address { value: cell.clone(), error: e }))?;
        if let Some(column) = self.name {
            mailbox.name = self.reconcile_name(mailbox.name, fields[column].trim()).map_err(|k| error(column, k))?;
        }
        let key = match self.key {
            Some(column) if fields[column].trim().is_empty() => return Err(error(column, RowErrorKind::EmptyKey)),
            Some(column) => fields[column].trim().to_owned(),
            None => mailbox.dedup_key(),
        };
        Ok(Recipient { row, key, mailbox, fields, columns: Arc::clone(self) })
    }

    /// A name in the address cell and a different one in the name column is ambiguous: refuse, never pick one.
    fn reconcile_name(&self, in_cell: Option<String>, column: &str) -> Result<Option<String>, RowErrorKind> {
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
