//! A row's copies: the addresses of its `cc` and `bcc` cells (`[recipients] cc`, `bcc`) and the job's fixed
//! `[message] bcc`, each parsed by the same strict parser as the row's own address.
//!
//! A cell holds zero or more mailboxes separated by commas (a comma inside a quoted display name does not
//! separate). Empty items (`a@x, , b@y`, a trailing comma) mean nothing and are skipped. What is refused,
//! naming the row and column: an invalid address; a copy equal to the row's own address (a Cc to oneself is a
//! mistake in the data, and the server would deliver one message twice or once, depending on it); the same
//! address twice among the row's copies, whether Cc and Bcc or twice in one cell (which one was meant cannot
//! be guessed); more copies than `max_copies`. Addresses are compared as duplicates are across rows
//! ([`Mailbox::dedup_key`]). Copies are not checked across rows: one account manager on many rows is normal.

use super::address::{AddressError, Mailbox};
use super::columns::Columns;
use super::row::{RowError, RowErrorKind};

/// `[recipients] max_copies` when not set.
pub const DEFAULT_MAX_COPIES: usize = 10;
/// The common provider limit of recipients in one transaction; with the row's own address, `max_copies`
/// may be at most one less.
pub const MAX_TRANSACTION_RECIPIENTS: usize = 100;

/// What the job file says about copies besides the column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRules {
    /// `[message] bcc`: one fixed Bcc on every message (an archive).
    pub fixed_bcc: Option<Mailbox>,
    /// `[recipients] max_copies`: every copy of a row counts, the fixed Bcc included.
    pub max: usize,
}

impl Default for CopyRules {
    fn default() -> Self {
        CopyRules { fixed_bcc: None, max: DEFAULT_MAX_COPIES }
    }
}

/// Whether a copy's address is in the `Cc` header or only in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    Cc,
    Bcc,
}

/// One copy of a row's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRecipient {
    pub kind: CopyKind,
    pub mailbox: Mailbox,
}

/// Reads a row's copies: Cc first, then the Bcc column, then the fixed Bcc (the order of `RCPT TO`).
pub(super) fn copies_of(
    columns: &Columns,
    row: u64,
    fields: &[String],
    own: &Mailbox,
) -> Result<Vec<CopyRecipient>, RowError> {
    let mut copies: Vec<(CopyRecipient, Option<usize>)> = Vec::new();
    for (kind, column) in [(CopyKind::Cc, columns.cc), (CopyKind::Bcc, columns.bcc)] {
        let Some(column) = column else { continue };
        let error = |kind| RowError { row, column: Some(columns.names[column].clone()), kind };
        for item in split(&fields[column]) {
            let mailbox = Mailbox::parse(item).map_err(|e| error(item_error(item, e)))?;
            copies.push((CopyRecipient { kind, mailbox }, Some(column)));
        }
    }
    if let Some(mailbox) = &columns.copy_rules.fixed_bcc {
        copies.push((CopyRecipient { kind: CopyKind::Bcc, mailbox: mailbox.clone() }, None));
    }
    check(columns, row, &copies, own)?;
    Ok(copies.into_iter().map(|(copy, _)| copy).collect())
}

fn item_error(item: &str, error: AddressError) -> RowErrorKind {
    match error {
        AddressError::Several => RowErrorKind::CopySeparator { value: item.to_owned() },
        error => RowErrorKind::Address { value: item.to_owned(), error },
    }
}

/// The row's own address among its copies, an address twice, or too many copies.
fn check(
    columns: &Columns,
    row: u64,
    copies: &[(CopyRecipient, Option<usize>)],
    own: &Mailbox,
) -> Result<(), RowError> {
    let name = |column: Option<usize>| column.map(|c: usize| columns.names[c].clone());
    let own_key = own.dedup_key();
    let mut seen = std::collections::HashSet::with_capacity(copies.len());
    for (copy, column) in copies {
        let (key, column) = (copy.mailbox.dedup_key(), *column);
        // The fixed Bcc has no column of its own: the row's address column is where the clash is.
        let (fixed, column) = (column.is_none(), name(column.or(Some(columns.email))));
        let kind = if key == own_key {
            RowErrorKind::CopyIsOwnAddress { address: copy.mailbox.envelope(), fixed }
        } else if !seen.insert(key) {
            RowErrorKind::DuplicateCopy { address: copy.mailbox.envelope() }
        } else {
            continue;
        };
        return Err(RowError { row, column, kind });
    }
    let limit = columns.copy_rules.max;
    if copies.len() > limit {
        return Err(RowError { row, column: None, kind: RowErrorKind::TooManyCopies { count: copies.len(), limit } });
    }
    Ok(())
}

/// The cell's items between commas outside double quotes, trimmed, empty ones left out.
fn split(cell: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    cell.split(move |c| {
        let separates = c == ',' && !quoted;
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
        separates
    })
    .map(str::trim)
    .filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_in_quoted_names_do_not_separate_and_empty_items_are_skipped() {
        let items: Vec<&str> = split(r#" "Smith, J." <j@x.test>, ,b@x.test, "a \" , b" <c@x.test>,"#).collect();
        assert_eq!(items, [r#""Smith, J." <j@x.test>"#, "b@x.test", r#""a \" , b" <c@x.test>"#]);
        assert_eq!(split("  ").count(), 0);
    }
}
