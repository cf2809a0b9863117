//! `[recipients]`: where the rows come from and which columns mean what. Every column is also a template variable.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientsSection {
    /// The CSV file, relative to the job file. UTF-8, a header row, comma-separated.
    pub csv: Spanned<PathBuf>,
    /// The column holding one address per row (`a@b` or `Name <a@b>`); default `email`.
    pub email: Option<Spanned<String>>,
    /// An optional column holding the display name.
    pub name: Option<Spanned<String>>,
    /// An optional column that identifies a recipient for the journal and the Message-ID; default the address.
    pub key: Option<Spanned<String>>,
    /// An optional column of Cc addresses (zero or more per row, comma-separated): a `Cc` header and `RCPT TO`.
    pub cc: Option<Spanned<String>>,
    /// An optional column of Bcc addresses: `RCPT TO` only, never in a header.
    pub bcc: Option<Spanned<String>>,
    /// The most copies one row may have (Cc, Bcc and `[message] bcc` together); default 10, at most 99.
    pub max_copies: Option<Spanned<u64>>,
    /// Suppression lists, relative to the job file: CSV files with an `email` column whose addresses are
    /// never sent to (hard bounces from `mailshot bounces`, unsubscribes).
    #[serde(default)]
    pub exclude: Vec<Spanned<PathBuf>>,
}

impl RecipientsSection {
    pub const DEFAULT_EMAIL_COLUMN: &'static str = "email";

    pub fn email_column(&self) -> &str {
        self.email.as_ref().map_or(Self::DEFAULT_EMAIL_COLUMN, |c| c.get_ref().as_str())
    }
}
