//! The rules and the records of [`Step::Serve`](super::Step::Serve), the server that answers whatever comes,
//! for tests that drive a whole run rather than pin a transcript. No I/O here: `serve` holds the conversation.
//!
//! It accepts every message unless told otherwise, and injects the faults a real server cannot, or not
//! countably: a delay before each flight of replies, a sender or recipient refused a set number of times,
//! every login refused, the connection closed at a final dot (or a chosen reply to it), a cap on concurrent
//! sessions (a `421` greeting) with a slow greeting, the n-th MAIL FROM refused. It offers PIPELINING when
//! asked, answering each flight of commands in order with one write (RFC 2920), and can refuse commands sent
//! behind a final dot as Haraka does. Every connection served by one [`Mailbox`] shares its rules and counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Haraka's answer to a command that came behind a final dot, before the dot's reply (SMTP smuggling defence).
pub const PIPELINED_AFTER_DOT: &str = "503 5.5.0 Bad sequence of commands - pipelined after end of DATA\r\n";

/// How the server answers one address `times` times before it behaves normally again.
#[derive(Debug, Clone)]
enum Fault {
    /// This reply to MAIL FROM or RCPT TO.
    Reject(String),
    /// No reply to the final dot: the connection is closed instead.
    CloseAfterDot,
    /// This reply to the final dot instead of 250 (a `421` then closes the connection).
    ReplyAfterDot(String),
}

/// Called with each recipient of a message at its final dot; false counts as a failed check.
type DotCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Default)]
struct MailboxState {
    delay: Duration,
    pipelining: bool,
    chunking: bool,
    reject_behind_dot: bool,
    faults: HashMap<String, (Fault, u32)>,
    /// Offer AUTH and refuse every login with 535.
    reject_auth: bool,
    /// Commands received, by verb (`MAIL`, `AUTH`, …).
    verbs: HashMap<String, u32>,
    /// The verbs of each flight (what one read brought), `.` for a final dot.
    flights: Vec<Vec<String>>,
    rejected_behind_dot: u32,
    /// Every message body whose final dot arrived, per recipient (accepted or not).
    dots: HashMap<String, Vec<Vec<u8>>>,
    /// Messages answered with 250 after the dot, per recipient.
    accepted: HashMap<String, u32>,
    dot_check: Option<DotCheck>,
    failed_dot_checks: Vec<String>,
    connections: u32,
    open: u32,
    max_open: u32,
    queue_id: u64,
    /// At most this many sessions at once; one more is greeted `421 4.7.0` at once and closed.
    session_cap: Option<u32>,
    /// Admitted sessions are greeted after this long (a busy or tarpitting server).
    greeting_delay: Duration,
    rejected_sessions: u32,
    /// MAIL FROM commands so far, over all connections, and (number, reply): that one MAIL gets the reply.
    mails: u32,
    nth_mail: Option<(u32, String)>,
}

/// The rules and counts shared by every connection it serves; clones share them too.
#[derive(Clone, Default)]
pub struct Mailbox {
    state: Arc<Mutex<MailboxState>>,
}

impl Mailbox {
    /// Advertise PIPELINING (off by default: one command, one reply, RFC 5321 §4.1).
    pub fn offer_pipelining(&self) {
        self.state().pipelining = true;
    }

    /// Advertise PIPELINING, but answer every command that arrived behind a final dot, before its reply,
    /// with [`PIPELINED_AFTER_DOT`] and do nothing else with it, as Haraka does.
    pub fn reject_behind_dot(&self) {
        let mut s = self.state();
        (s.pipelining, s.reject_behind_dot) = (true, true);
    }

    /// Advertise CHUNKING (RFC 3030) and PIPELINING: `BDAT size LAST` and its bytes end a message like a final
    /// dot (the same faults, counts and, with [`reject_behind_dot`](Self::reject_behind_dot), the same refusal
    /// of commands behind it in its flight).
    pub fn offer_chunking(&self) {
        let mut s = self.state();
        (s.pipelining, s.chunking) = (true, true);
    }

    /// Every flight of replies (greeting included) waits this long first: in lock-step, every reply.
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// RCPT TO (or MAIL FROM) `address` is answered with `reply` (e.g. `450 4.2.0 Busy`) the next `times` times.
    pub fn reject(&self, address: &str, reply: &str, times: u32) {
        self.state().faults.insert(address.to_owned(), (Fault::Reject(reply.to_owned()), times));
    }

    /// At most `cap` sessions at once: one more is greeted `421 4.7.0 Too many concurrent connections` at
    /// once and closed; an admitted session is greeted after `greeting_delay`.
    pub fn cap_sessions(&self, cap: u32, greeting_delay: Duration) {
        let mut s = self.state();
        (s.session_cap, s.greeting_delay) = (Some(cap), greeting_delay);
    }

    /// Sessions the cap refused so far.
    pub fn rejected_sessions(&self) -> u32 {
        self.state().rejected_sessions
    }

    /// The `n`-th MAIL FROM over all connections (1-based) is answered `reply`; every other one as usual.
    pub fn reject_nth_mail(&self, n: u32, reply: &str) {
        self.state().nth_mail = Some((n, reply.to_owned()));
    }

    /// The next `times` messages to `rcpt` get `reply` to their final dot (a `421` then closes).
    pub fn reply_after_dot(&self, rcpt: &str, reply: &str, times: u32) {
        self.state().faults.insert(rcpt.to_owned(), (Fault::ReplyAfterDot(reply.to_owned()), times));
    }

    /// The next `times` messages to `rcpt` get no reply to their final dot: the connection closes instead.
    pub fn close_after_dot(&self, rcpt: &str, times: u32) {
        self.state().faults.insert(rcpt.to_owned(), (Fault::CloseAfterDot, times));
    }

    /// Offer AUTH PLAIN LOGIN and answer every AUTH with `535 5.7.8`.
    pub fn reject_logins(&self) {
        self.state().reject_auth = true;
    }

    /// From now on, at each final dot, call `check` with each recipient (e.g. "is its committing record
    /// already in the journal?"); the ones it says no to are in [`Mailbox::failed_dot_checks`].
    pub fn check_at_dot(&self, check: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.state().dot_check = Some(Arc::new(check));
    }

    pub fn failed_dot_checks(&self) -> Vec<String> {
        self.state().failed_dot_checks.clone()
    }

    /// How many commands with this verb (`MAIL`, `AUTH`, `QUIT`, …) arrived, over all connections.
    pub fn commands(&self, verb: &str) -> u32 {
        self.state().verbs.get(verb).copied().unwrap_or(0)
    }

    /// The verbs of each flight of commands, in arrival order over all connections (`.` for a final dot):
    /// `["MAIL", "RCPT", "DATA"]` is a pipelined envelope, `[".", "RSET", "MAIL", …]` commands behind a dot.
    pub fn flights(&self) -> Vec<Vec<String>> {
        self.state().flights.clone()
    }

    /// Commands answered with [`PIPELINED_AFTER_DOT`].
    pub fn rejected_behind_dot(&self) -> u32 {
        self.state().rejected_behind_dot
    }

    /// Messages accepted (250 after the dot) per recipient.
    pub fn accepted(&self) -> HashMap<String, u32> {
        self.state().accepted.clone()
    }

    pub fn accepted_total(&self) -> u32 {
        self.state().accepted.values().sum()
    }

    /// Every message body whose final dot arrived for `rcpt`, in order.
    pub fn bodies(&self, rcpt: &str) -> Vec<Vec<u8>> {
        self.state().dots.get(rcpt).cloned().unwrap_or_default()
    }

    /// Final dots received, for any recipient (a message the server saw, accepted or not).
    pub fn dots_total(&self) -> usize {
        self.state().dots.values().map(Vec::len).sum()
    }

    /// (connections admitted so far, the most that were open at once).
    pub fn connections(&self) -> (u32, u32) {
        let s = self.state();
        (s.connections, s.max_open)
    }

    /// Polls (blocking the thread) until `done` holds; panics after `timeout`.
    pub fn wait_until(&self, timeout: Duration, what: &str, done: impl Fn(&Mailbox) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < timeout, "scripted SMTP server: no {what} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn state(&self) -> MutexGuard<'_, MailboxState> {
        self.state.lock().unwrap()
    }

    pub(super) fn greeting_delay(&self) -> Duration {
        self.state().greeting_delay
    }

    pub(super) fn offers_chunking(&self) -> bool {
        self.state().chunking
    }

    pub(super) fn delay(&self) -> Duration {
        self.state().delay
    }

    /// Counts a command; true when it came behind a final dot in its flight and is to be refused for that.
    pub(super) fn count(&self, verb: &str, behind_dot: bool) -> bool {
        let mut s = self.state();
        *s.verbs.entry(verb.to_owned()).or_default() += 1;
        let refuse = behind_dot && s.reject_behind_dot;
        s.rejected_behind_dot += u32::from(refuse);
        refuse
    }

    pub(super) fn record_flight(&self, verbs: Vec<String>) {
        self.state().flights.push(verbs);
    }

    pub(super) fn ehlo_reply(&self) -> String {
        let s = self.state();
        let auth = if s.reject_auth { "250-AUTH PLAIN LOGIN\r\n" } else { "" };
        let pipelining = if s.pipelining { "250-PIPELINING\r\n" } else { "" };
        let chunking = if s.chunking { "250-CHUNKING\r\n" } else { "" };
        format!(
            "250-fake.test\r\n{auth}{pipelining}{chunking}250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"
        )
    }

    /// The reply to MAIL FROM `from`.
    pub(super) fn mail_reply(&self, from: &str) -> String {
        let mut s = self.state();
        s.mails += 1;
        let fault = match &s.nth_mail {
            Some((n, reply)) if *n == s.mails => Some(Fault::Reject(reply.clone())),
            _ => take_fault(&mut s, from, false),
        };
        match fault {
            Some(Fault::Reject(reply)) => format!("{reply}\r\n"),
            _ => "250 2.1.0 Ok\r\n".to_owned(),
        }
    }

    /// The reply to RCPT TO `rcpt`, or `None` when it is accepted.
    pub(super) fn rcpt_rejection(&self, rcpt: &str) -> Option<String> {
        match take_fault(&mut self.state(), rcpt, false) {
            Some(Fault::Reject(reply)) => Some(format!("{reply}\r\n")),
            _ => None,
        }
    }

    /// A final dot: the message is recorded per recipient, then accepted unless a fault is armed. Returns
    /// the reply (none: the connection closes without one) and whether the connection closes after it.
    pub(super) fn final_dot(&self, rcpts: Vec<String>, body: Vec<u8>) -> (Option<String>, bool) {
        let mut s = self.state();
        if let Some(check) = s.dot_check.clone() {
            let failed = rcpts.iter().filter(|r| !check(r)).cloned().collect::<Vec<_>>();
            s.failed_dot_checks.extend(failed);
        }
        let (mut close, mut instead) = (false, None);
        for rcpt in &rcpts {
            s.dots.entry(rcpt.clone()).or_default().push(body.clone());
            match take_fault(&mut s, rcpt, true) {
                Some(Fault::CloseAfterDot) => close = true,
                Some(Fault::ReplyAfterDot(reply)) => instead = Some(reply),
                _ => {}
            }
        }
        if let Some(reply) = instead {
            let close = reply.starts_with("421");
            return (Some(format!("{reply}\r\n")), close);
        }
        if close {
            return (None, true);
        }
        for rcpt in rcpts {
            *s.accepted.entry(rcpt).or_default() += 1;
        }
        s.queue_id += 1;
        (Some(format!("250 2.0.0 Ok: queued as FAKE{}\r\n", s.queue_id)), false)
    }

    /// A place for one more session under the cap, or `None` (counted as refused).
    pub(super) fn admit(&self) -> Option<Admitted<'_>> {
        let mut s = self.state();
        if s.session_cap.is_some_and(|cap| s.open >= cap) {
            s.rejected_sessions += 1;
            return None;
        }
        s.connections += 1;
        s.open += 1;
        s.max_open = s.max_open.max(s.open);
        Some(Admitted(self))
    }
}

/// An open session, counted until dropped.
pub(super) struct Admitted<'a>(&'a Mailbox);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.state().open -= 1;
    }
}

/// The fault for `address` at this stage (`at_dot`: after the final dot, else at MAIL or RCPT), if one is
/// still armed; counts it down.
fn take_fault(s: &mut MailboxState, address: &str, at_dot: bool) -> Option<Fault> {
    let (fault, times) = s.faults.get_mut(address)?;
    if *times == 0 || matches!(fault, Fault::CloseAfterDot | Fault::ReplyAfterDot(_)) != at_dot {
        return None;
    }
    *times -= 1;
    Some(fault.clone())
}
