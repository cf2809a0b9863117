//! The lab's aiosmtpd listeners (`scripts/lab-smtpd.py`), each playing one real server's limit or refusal, and
//! the messages they stored.
//!
//! A listener stores each message before its `250`, so once `send` has exited, everything it delivered is on
//! disk: no polling. The store is shared by every test and never emptied, so a reader looks only at files
//! written since it was made and at its own recipients (test addresses are unique).
//!
//! Every integration test runs in one binary, in parallel. Three listeners keep state beyond one session (the
//! sessions open now, the cycle of failures); a test using one of them holds [`Mode::serial`] for its run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Deserialize;

use crate::common::lab_env::{port, required, var};
use crate::common::send_job::Smtp;

/// One listener's behaviour (`scripts/lab-smtpd.py` documents each).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An ordinary server without PIPELINING.
    Accept,
    /// PIPELINING, but `503 5.5.0` to every command sent behind a final dot before its reply (Haraka).
    StrictDot,
    /// At most `session_cap` sessions at once; the next is greeted `421 4.7.0`.
    SessionCap,
    /// `421 4.7.0` at the MAIL FROM after `messages_per_session` messages.
    PerSessionCap,
    /// `SIZE` without a limit; `552 5.3.4` at MAIL FROM when `SIZE=` exceeds `size_limit`.
    SizeAtMail,
    /// A `554 5.7.1` greeting.
    Greeting554,
    /// AUTH over plaintext; setups fail in a cycle of five per EHLO name: ok, 451 to EHLO, a reset at AUTH,
    /// ok, 454 to AUTH.
    FlakySetup,
    /// CHUNKING (BDAT) with PIPELINING, and per-session-cap's `421 4.7.0` after `messages_per_session`.
    Chunking,
}

const MODES: [Mode; 8] = [
    Mode::Accept,
    Mode::StrictDot,
    Mode::SessionCap,
    Mode::PerSessionCap,
    Mode::SizeAtMail,
    Mode::Greeting554,
    Mode::FlakySetup,
    Mode::Chunking,
];

impl Mode {
    /// The listener's name, also its folder in the store.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Accept => "accept",
            Mode::StrictDot => "strict-dot",
            Mode::SessionCap => "session-cap",
            Mode::PerSessionCap => "per-session-cap",
            Mode::SizeAtMail => "size-at-mail",
            Mode::Greeting554 => "greeting-554",
            Mode::FlakySetup => "flaky-setup",
            Mode::Chunking => "chunking",
        }
    }

    /// Held for a whole run by each test of a listener whose state outlives a session, so that two tests never
    /// share it. (A test that failed while holding it does not block the others.)
    pub fn serial(self) -> MutexGuard<'static, ()> {
        static LOCKS: [Mutex<()>; MODES.len()] = [const { Mutex::new(()) }; MODES.len()];
        LOCKS[self as usize].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The listeners, as `scripts/smtp-lab env` prints them.
#[derive(Debug, Clone)]
pub struct Aiosmtpd {
    ports: Vec<u16>,
    store: PathBuf,
    pub session_cap: usize,
    pub messages_per_session: usize,
    pub size_limit: usize,
    /// The lab's SASL user and password, which flaky-setup checks.
    pub user: String,
    pub password: String,
}

impl Aiosmtpd {
    fn from_env() -> Option<Aiosmtpd> {
        let port_of =
            |m: Mode| port(&format!("MAILSHOT_LAB_AIOSMTPD_{}_PORT", m.name().replace('-', "_").to_uppercase()));
        Some(Aiosmtpd {
            ports: MODES.iter().map(|&m| port_of(m)).collect::<Option<_>>()?,
            store: var("MAILSHOT_LAB_AIOSMTPD_STORE")?.into(),
            session_cap: var("MAILSHOT_LAB_AIOSMTPD_SESSION_CAP")?.parse().ok()?,
            messages_per_session: var("MAILSHOT_LAB_AIOSMTPD_MESSAGES_PER_SESSION")?.parse().ok()?,
            size_limit: var("MAILSHOT_LAB_AIOSMTPD_SIZE_LIMIT")?.parse().ok()?,
            user: var("MAILSHOT_LAB_USER")?,
            password: var("MAILSHOT_LAB_PASSWORD")?,
        })
    }

    pub fn port(&self, mode: Mode) -> u16 {
        self.ports[mode as usize]
    }

    /// The `[smtp]` table for a listener: plaintext, and for flaky-setup the lab's login over it.
    pub fn smtp(&self, mode: Mode) -> Smtp {
        match mode {
            Mode::FlakySetup => Smtp::plain_auth(self.port(mode), &self.user, &self.password),
            _ => Smtp::plain(self.port(mode)),
        }
    }

    /// The listener's stored messages from now on (with a second of slack).
    pub fn store(&self, mode: Mode) -> Store {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        Store { dir: self.store.join(mode.name()), since: now - 1 }
    }
}

/// The listeners, or `None` after printing why the calling test is skipped (a panic under
/// `MAILSHOT_REQUIRE_LAB=1`).
pub fn aiosmtpd(test: &str) -> Option<Aiosmtpd> {
    required(test, Aiosmtpd::from_env())
}

/// One stored message: the envelope and session facts from its first line, then its bytes.
#[derive(Debug, Clone, Deserialize)]
pub struct Stored {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The MAIL FROM parameters, upper-cased (`SIZE=1234`, `BODY=8BITMIME`).
    pub mail_options: Vec<String>,
    /// The session's number at its listener (for flaky-setup, per EHLO name).
    pub session: u64,
    pub message_in_session: u64,
    /// Commands and final dots of the session, up to this message's, that had more input waiting behind them.
    pub pipelined: u64,
    /// The session's successful AUTH, if any (`None` from a listener without AUTH).
    #[serde(default)]
    pub auth: Option<StoredAuth>,
    /// The message as received, transparency dots removed.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// How the session that delivered a message authenticated.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredAuth {
    /// `PLAIN`, `LOGIN`, `XOAUTH2`, `OAUTHBEARER`.
    pub mechanism: String,
    pub user: String,
}

/// A listener's folder of stored messages, from a moment on.
pub struct Store {
    dir: PathBuf,
    /// Unix seconds: files are named after the time they were stored, and older ones are never read.
    since: u64,
}

impl Store {
    /// The messages stored in `dir` from now on (with a second of slack), for a listener not in [`Mode`].
    pub fn since_now(dir: PathBuf) -> Store {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        Store { dir, since: now - 1 }
    }

    /// Every message stored since the mark.
    pub fn messages(&self) -> Vec<Stored> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stored_at: Option<u64> = name.split('.').next().and_then(|t| t.parse().ok());
            if name.ends_with(".msg") && stored_at.is_some_and(|t| t >= self.since) {
                found.push(read(&self.dir.join(name)));
            }
        }
        found
    }

    /// The copies stored for each of `wanted` (compared without case); absent when none.
    pub fn by_rcpt(&self, wanted: &[String]) -> HashMap<String, Vec<Stored>> {
        let wanted: HashMap<String, &String> = wanted.iter().map(|w| (w.to_ascii_lowercase(), w)).collect();
        let mut copies: HashMap<String, Vec<Stored>> = HashMap::new();
        for message in self.messages() {
            for rcpt in &message.rcpt_tos {
                if let Some(&w) = wanted.get(&rcpt.to_ascii_lowercase()) {
                    copies.entry(w.clone()).or_default().push(message.clone());
                }
            }
        }
        copies
    }
}

fn read(path: &std::path::Path) -> Stored {
    let raw = std::fs::read(path).unwrap();
    let split = raw.iter().position(|&b| b == b'\n').unwrap_or_else(|| panic!("{}: no envelope line", path.display()));
    let mut stored: Stored = serde_json::from_slice(&raw[..split]).unwrap();
    stored.bytes = raw[split + 1..].to_vec();
    stored
}
