//! The one scripted SMTP server for tests: an interpreter of [`Step`]s over any `AsyncRead + AsyncWrite`,
//! used in-memory by the unit tests (tier 2, [`peer`]) and over TCP by the integration tests (tier 3,
//! [`ScriptServer`], and [`MailServer`] for whole `mailshot send` runs).
//!
//! ```text
//! peer(steps) ─► duplex pipe ─┐
//! ScriptServer ─► TCP [TLS] ──┼─► run(io, steps): Send | Expect | Data | StartTls | Sleep | Close | Drain
//! MailServer ─► TCP ──────────┘                   └─ Serve(Mailbox): answer each flight in order (RFC 2920)
//! ```
//!
//! Where it lives: compiled for this crate's own unit tests (`cfg(test)`) and, for `tests/it`, behind the
//! `testing` feature, which the crate turns on for itself through a dev-dependency on itself
//! (`mailshot = { path = ".", features = ["testing"] }`): a release build carries none of it, and both test
//! tiers share one copy instead of keeping their own. It lives under `smtp` because it speaks only SMTP and
//! would move with that module into a crate of its own.

mod conn;
mod mailbox;
mod recorded;
mod script;
mod serve;
mod tcp;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use conn::Io;
pub use mailbox::{Mailbox, PIPELINED_AFTER_DOT};
pub use recorded::{Recorded, Tap};
pub use script::{Record, Step, accept_message, ehlo_reply, expect, expect_prefix, greet, peer, run, send};
pub use tcp::{MailServer, ScriptServer};

use super::phase::Timeouts;
use super::transcript::{Direction, TranscriptSink};

/// The same deadline for every phase: long enough for a loaded machine, short enough that a hung test fails.
pub fn timeouts(all: Duration) -> Timeouts {
    Timeouts { connect: all, tls: all, greeting: all, command: all, data: all, data_block: all, data_end: all }
}

/// Deadlines for in-memory tests, where nothing waits on a network.
pub fn quick_timeouts() -> Timeouts {
    timeouts(Duration::from_millis(500))
}

/// A transcript sink and the lines it collected.
pub fn transcript() -> (TranscriptSink, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = Arc::clone(&lines);
    let sink: TranscriptSink = Arc::new(move |dir, line| {
        let arrow = if dir == Direction::Client { "C:" } else { "S:" };
        sink_lines.lock().unwrap().push(format!("{arrow} {line}"));
    });
    (sink, lines)
}

/// CRLF only, every line at most 998 octets without its CRLF (RFC 5322 §2.1.1, §2.3; RFC 5321 §4.5.3.1.6).
pub fn assert_wire_clean(bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        assert!(b != b'\n' || (i > 0 && bytes[i - 1] == b'\r'), "bare LF at {i}");
        assert!(b != b'\r' || bytes.get(i + 1) == Some(&b'\n'), "bare CR at {i}");
    }
    let lines = bytes.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l).len());
    let longest = lines.max().unwrap_or(0);
    assert!(longest <= 998, "a line of {longest} octets");
}
