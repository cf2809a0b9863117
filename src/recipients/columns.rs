//! The header row: which column is the address, the name, the key ([`super::Recipient::from_fields`] reads a
//! record with it).

/// The name templates find mailshot's own values under (`mailshot.date`); no column may have it.
pub const RESERVED_COLUMN: &str = "mailshot";

use super::copies::{CopyColumns, CopyRules};

/// The column names the job file asks for (`[recipients] email`, `name`, `key`, `cc`, `bcc`), and the rules
/// for copies.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub email: String,
    pub name: Option<String>,
    pub key: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub copy_rules: CopyRules,
}

impl ColumnSpec {
    /// Only the address column, no copies.
    pub fn email(column: &str) -> ColumnSpec {
        let (name, key, cc, bcc) = (None, None, None, None);
        ColumnSpec { email: column.to_owned(), name, key, cc, bcc, copy_rules: CopyRules::default() }
    }
}

/// The header row, resolved against a `ColumnSpec`. Every name is a template variable.
#[derive(Debug, Clone)]
pub struct Columns {
    pub names: Vec<String>,
    pub email: usize,
    pub name: Option<usize>,
    pub key: Option<usize>,
    /// The `cc` and `bcc` columns and the rules for copies.
    pub copies: CopyColumns,
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
}
