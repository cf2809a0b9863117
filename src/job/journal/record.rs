//! One journal line. JSON so that a person can read the journal with `grep`/`jq`; one object per line so that
//! a torn last write is just an unparseable last line.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a recipient's attempt ended, as the journal keeps it. (Uncertain is not written: it is a committing
/// record that never got an outcome.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Settled {
    Delivered,
    Failed,
    Deferred,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// A run began. `fingerprint` identifies the message settings and templates it rendered with; `inputs`
    /// holds one digest per setting and file, to name what changed (absent in journals before 2026-12).
    Run {
        run: u32,
        started: DateTime<Utc>,
        pid: u32,
        fingerprint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<BTreeMap<String, String>>,
    },
    /// Written durably before the final dot of this message is sent: from here on it may be delivered.
    Committing {
        key: String,
        row: u64,
        /// The envelope recipient, for `status --uncertain`.
        email: String,
        message_id: String,
        date: i64,
        attempt: u32,
        at: DateTime<Utc>,
    },
    /// The server's verdict (or the policy's, for a failure before DATA).
    Outcome {
        key: String,
        row: u64,
        email: String,
        status: Settled,
        code: Option<u16>,
        enhanced: Option<String>,
        reply: String,
        attempt: u32,
        /// The message's Date (unix seconds), so that a later retry renders byte-identically.
        date: i64,
        at: DateTime<Utc>,
        /// The copies the server rejected while the message went out (absent when none, and in journals
        /// before 2026-12).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        copies: String,
    },
    /// A message taken (and committed ahead) was not sent after all: it is pending again, with this Date.
    Released { key: String, date: i64, at: DateTime<Utc> },
    /// A run ended (absent after a crash).
    RunEnd { run: u32, ended: DateTime<Utc>, exit_code: u8, summary: String },
}
