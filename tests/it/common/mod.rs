//! Shared test helpers: the lab's environment (Postfix and aiosmtpd) and reading it back, hermetic binary
//! runs. The scripted SMTP server is the library's `mailshot::smtp::testing` (the `testing` feature).

pub mod browser;
pub mod lab_aiosmtpd;
pub mod lab_env;
pub mod lab_mail;
pub mod lab_oauth;
pub mod pty;
pub mod send_job;
pub mod strace;

use std::sync::atomic::{AtomicU32, Ordering};

/// A tag no other test, run or session uses (letters, digits and `-`, fit for a local part).
pub fn unique_tag(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{:x}-{n}", std::process::id(), nanos % (1 << 40))
}

/// A stderr line without the ISO 8601 UTC time that non-terminal output puts in front of it
/// (`2026-12-02T22:40:01Z `); other lines unchanged.
pub fn untimed(line: &str) -> &str {
    let stamped = line.len() > 21
        && line.as_bytes()[20] == b' '
        && chrono::NaiveDateTime::parse_from_str(&line[..19], "%Y-%m-%dT%H:%M:%S").is_ok()
        && line.as_bytes()[19] == b'Z';
    if stamped { &line[21..] } else { line }
}
