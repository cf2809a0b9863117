//! What became of one recipient in a run (its [`Settlement`]: a [`Status`] word and the reply that decided it):
//! the record the report, the progress display and the summary share. The journal keeps its own, smaller
//! form ([`super::journal::Record::Outcome`]), which older journals also hold.

use std::fmt;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The server accepted the message (2xx after the final dot).
    Delivered,
    /// Refused for good (5xx), or a bad row.
    Failed,
    /// Refused for now (4xx) and retries ran out in this run; a later run retries it.
    Deferred,
    /// The connection was lost after the final dot and before the reply: maybe delivered. Never resent
    /// automatically.
    Uncertain,
    /// Never attempted in this run because the run ended first (the job stopped, Ctrl-C, `--limit`, the daily
    /// budget): the next run sends it. `status` uses the same words for recipients the journal has not settled.
    NotSent,
    /// Never to be sent from this row: a duplicate of an earlier row, or a row that cannot be read.
    Skipped,
    /// Never sent: the address is on a suppression list (`[recipients] exclude`); the reply names the list.
    Suppressed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Deferred => "deferred",
            Status::Uncertain => "uncertain",
            Status::NotSent => "not sent",
            Status::Skipped => "skipped",
            Status::Suppressed => "suppressed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient's settlement in a run: its status and what decided it.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// The CSV line number the recipient came from.
    pub row: u64,
    pub email: String,
    pub status: Status,
    /// The SMTP reply code that decided it, if a server replied.
    pub code: Option<u16>,
    /// The RFC 3463 enhanced status code, e.g. `5.1.1`.
    pub enhanced: Option<String>,
    /// The server's full reply (every line, joined with " / "), or what went wrong locally.
    pub reply: String,
    pub attempts: u32,
    pub message_id: String,
    pub first_attempt: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    /// The row's copies (Cc/Bcc) the server rejected although its message went out (`address: reply; …`).
    pub copies: String,
}

/// Counts by status, for the progress display and the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub delivered: u64,
    pub failed: u64,
    pub deferred: u64,
    pub uncertain: u64,
    pub not_sent: u64,
    pub skipped: u64,
    pub suppressed: u64,
    /// Rows delivered (in this run or an earlier one) while some of their copies (Cc/Bcc) were rejected:
    /// those people got nothing, so the run exits 1 as for a failed row. Not in [`Tally::done`].
    pub copies_rejected: u64,
}

impl Tally {
    pub fn add(&mut self, settlement: &Settlement) {
        self.copies_rejected += u64::from(!settlement.copies.is_empty());
        *match settlement.status {
            Status::Delivered => &mut self.delivered,
            Status::Failed => &mut self.failed,
            Status::Deferred => &mut self.deferred,
            Status::Uncertain => &mut self.uncertain,
            Status::NotSent => &mut self.not_sent,
            Status::Skipped => &mut self.skipped,
            Status::Suppressed => &mut self.suppressed,
        } += 1;
    }

    pub fn done(&self) -> u64 {
        self.delivered + self.failed + self.deferred + self.uncertain + self.not_sent + self.skipped + self.suppressed
    }
}
