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

/// Where a row's copies come from: the header's `cc` and `bcc` columns (by index) and the rules.
#[derive(Debug, Clone, Default)]
pub struct CopyColumns {
    pub cc: Option<usize>,
    pub bcc: Option<usize>,
    pub rules: CopyRules,
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

/// A row's copies that cannot be sent; `column` is the index of the cell at fault, if one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyError {
    pub column: Option<usize>,
    pub kind: CopyErrorKind,
}

/// What is wrong (worded by the row's error, `RowErrorKind`, which the reader reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyErrorKind {
    Address {
        value: String,
        error: AddressError,
    },
    /// `;` between addresses.
    Separator {
        value: String,
    },
    /// `fixed`: the copy is `[message] bcc`.
    OwnAddress {
        address: String,
        fixed: bool,
    },
    Duplicate {
        address: String,
        twice: Twice,
    },
    TooMany {
        count: usize,
        limit: usize,
    },
}

/// Where a copy given twice was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twice {
    InOneCell,
    CcAndBcc,
    /// In a cell and as `[message] bcc`.
    FixedBcc,
}

impl std::fmt::Display for Twice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Twice::InOneCell => "is given twice in the cell",
            Twice::CcAndBcc => "is given twice among the row's copies (Cc and Bcc)",
            Twice::FixedBcc => "is also [message] bcc",
        })
    }
}

impl CopyColumns {
    /// Reads a row's copies: Cc first, then the Bcc column, then the fixed Bcc (the order of `RCPT TO`).
    /// `own` is the row's address, in column `email` (where a clash with the fixed Bcc is reported).
    pub fn copies_of(&self, fields: &[String], own: &Mailbox, email: usize) -> Result<Vec<CopyRecipient>, CopyError> {
        let mut copies: Vec<(CopyRecipient, usize)> = Vec::new();
        for (kind, column) in [(CopyKind::Cc, self.cc), (CopyKind::Bcc, self.bcc)] {
            let Some(column) = column else { continue };
            for item in split(&fields[column]) {
                let kind_error = |e| CopyError { column: Some(column), kind: item_error(item, e) };
                let mailbox = Mailbox::parse(item).map_err(kind_error)?;
                copies.push((CopyRecipient { kind, mailbox }, column));
            }
        }
        if let Some(mailbox) = &self.rules.fixed_bcc {
            copies.push((CopyRecipient { kind: CopyKind::Bcc, mailbox: mailbox.clone() }, email));
        }
        self.check(&copies, own, email)?;
        Ok(copies.into_iter().map(|(copy, _)| copy).collect())
    }

    /// The row's own address among its copies, an address twice, or too many copies.
    fn check(&self, copies: &[(CopyRecipient, usize)], own: &Mailbox, email: usize) -> Result<(), CopyError> {
        let own_key = own.dedup_key();
        let mut seen = std::collections::HashMap::with_capacity(copies.len());
        for (copy, column) in copies {
            let key = copy.mailbox.dedup_key();
            if key == own_key {
                // The fixed Bcc has no column of its own: it is reported at the row's address column.
                let kind = CopyErrorKind::OwnAddress { address: copy.mailbox.envelope(), fixed: *column == email };
                return Err(CopyError { column: Some(*column), kind });
            }
            let Some(&(first, first_column)) = seen.get(&key) else {
                seen.insert(key, (copy, *column));
                continue;
            };
            // The fixed Bcc comes last, so a clash with it is the cell's (named with the cell's spelling).
            let (address, column, twice) = match *column {
                _ if *column == email => (first.mailbox.envelope(), first_column, Twice::FixedBcc),
                c if c == first_column => (copy.mailbox.envelope(), c, Twice::InOneCell),
                c => (copy.mailbox.envelope(), c, Twice::CcAndBcc),
            };
            return Err(CopyError { column: Some(column), kind: CopyErrorKind::Duplicate { address, twice } });
        }
        let limit = self.rules.max;
        match copies.len() {
            count if count > limit => Err(CopyError { column: None, kind: CopyErrorKind::TooMany { count, limit } }),
            _ => Ok(()),
        }
    }
}

fn item_error(item: &str, error: AddressError) -> CopyErrorKind {
    match error {
        AddressError::Several => CopyErrorKind::Separator { value: item.to_owned() },
        error => CopyErrorKind::Address { value: item.to_owned(), error },
    }
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
