//! The wall clock for everything a run records (journal times, the daily budget, report times).
//!
//! `MAILSHOT_NOW` (RFC 3339) shifts it, so tests can run "tomorrow" against the rolling 24-hour budget; the
//! shifted clock still advances in real time.

use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};

static OFFSET: OnceLock<TimeDelta> = OnceLock::new();

pub fn now() -> DateTime<Utc> {
    let offset = OFFSET.get_or_init(|| {
        std::env::var("MAILSHOT_NOW")
            .ok()
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map_or(TimeDelta::zero(), |t| t.with_timezone(&Utc) - Utc::now())
    });
    Utc::now() + *offset
}
