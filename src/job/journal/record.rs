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
        /// The shard this run sent (`--shard I/N`); absent for an unsharded run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<crate::job::shard::Shard>,
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
        #[serde(serialize_with = "rfc3339")]
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
        #[serde(serialize_with = "rfc3339")]
        at: DateTime<Utc>,
        /// The copies the server rejected while the message went out (absent when none, and in journals
        /// before 2026-12).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        copies: String,
    },
    /// A message taken (and committed ahead) was not sent after all: it is pending again, with this Date.
    Released { key: String, date: i64, at: DateTime<Utc> },
    /// A run ended (absent after a crash); or, with `bounce` set and `run` 0, a bounce report (see [`Bounce`]).
    RunEnd {
        run: u32,
        ended: DateTime<Utc>,
        exit_code: u8,
        summary: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bounce: Option<Bounce>,
    },
}

/// A time as chrono's `Serialize` writes it (RFC 3339, UTC as `Z`, the fraction in 3, 6 or 9 digits as
/// needed), formatted once and written as one string: chrono's own goes through `collect_str`, which has
/// serde_json escape each of the many small pieces the formatter writes (measured: most of a committing
/// record's serialising, two records per message).
fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The run number a bounce record carries: no run has it (runs count from 1).
pub const BOUNCE_RUN: u32 = 0;

/// A delivery status notification about one recipient, recorded by `mailshot bounces`.
///
/// Why it rides on a `run_end` record of run 0: a mailshot from before bounces fails on a record type it
/// does not know (the journal would read as damaged), but it folds a `run_end` only into the run it last saw
/// start, ignores fields it does not know, and never numbers a run 0. So older versions read past these
/// records without effect, and `send` and `status` of every version keep working on the same journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounce {
    pub key: String,
    pub row: u64,
    pub email: String,
    pub kind: BounceKind,
    /// RFC 3464 `Action` (`failed`, `delayed`).
    pub action: String,
    /// RFC 3463 status, e.g. `5.1.1`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub diagnostic: Option<String>,
    /// The report it came from (its Message-ID, or a digest of its bytes): the same report read again adds
    /// nothing.
    pub report: String,
}

/// Hard (5.x.x: the address is dead, it goes on the suppression list) or soft (4.x.x, `delayed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BounceKind {
    Hard,
    Soft,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    /// `rfc3339` through serde_json, as a record writes it.
    fn ours(at: DateTime<Utc>) -> String {
        let mut out = Vec::new();
        rfc3339(&at, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_are_written_as_chronos_serialize_writes_them() {
        // Second 59, where chrono also takes a leap second's nanoseconds (1e9 and over).
        let whole = Utc.with_ymd_and_hms(2026, 12, 3, 14, 1, 59).unwrap().timestamp();
        for nanos in [0, 1, 999, 1_000, 120_000, 295_861_459, 500_000_000, 999_999_999, 1_000_000_000, 1_999_999_999] {
            let at = Utc.timestamp_opt(whole, nanos).single().unwrap();
            assert_eq!(ours(at), serde_json::to_string(&at).unwrap(), "{nanos}");
        }
    }

    proptest! {
        #[test]
        fn any_time_is_written_as_chronos_serialize_writes_it(secs in -62_000_000_000i64..250_000_000_000, nanos in 0u32..2_000_000_000) {
            let Some(at) = Utc.timestamp_opt(secs, nanos).single() else { return Ok(()) };
            prop_assert_eq!(ours(at), serde_json::to_string(&at).unwrap());
        }
    }
}
