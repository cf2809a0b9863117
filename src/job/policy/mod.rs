//! The one place that decides what a reply or an error means for the run (ARCHITECTURE: "policy").
//!
//! 2xx → delivered. 4xx at RCPT, DATA or after the data → deferred, retried later with backoff. 421
//! anywhere → the session ends, the message is retried on a new one. 5xx at RCPT or data → failed for that
//! recipient. 5xx at MAIL FROM about the message itself (552/`x.3.4` too big, 555/`x.5.4` a parameter) →
//! failed for that recipient; any other 5xx at MAIL FROM, authentication or TLS failures → the whole job
//! stops: they would hit every recipient. The connection lost after the final dot → uncertain, never retried
//! automatically. [`connect_failure`] is the one classifier of failures while opening a session.

use std::time::Duration;

use crate::smtp::{AuthError, ConnectError, ConnectionError, Delivery, EnhancedCode, HandshakeCause, Reply};
use crate::smtp::{Phase, RejectedCopy, SessionError, Severity, Stage, TlsError};

/// What happens next for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Delivered,
    /// Try again later in this run. `after` is the server's own hint, if it gave one.
    Retry {
        after: Option<Duration>,
        session_ends: bool,
        throttled: bool,
    },
    Failed,
    Uncertain,
    /// Stop the whole job: this would fail for every recipient.
    Abort,
}

/// A disposition with the facts behind it, for the report and the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub disposition: Disposition,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    /// The full reply (every line) or the error, in one line.
    pub text: String,
    /// The copies (Cc/Bcc) the server rejected although the message went out, as `address: reply`, joined
    /// with `; ` (the report's `copies` column); empty when every copy was accepted or nothing was sent.
    pub copies: String,
}

impl Verdict {
    fn new(disposition: Disposition, reply: Option<&Reply>, text: String) -> Verdict {
        Verdict {
            disposition,
            code: reply.map(Reply::code),
            enhanced: reply.and_then(Reply::enhanced).map(|e| e.to_string()),
            text,
            copies: String::new(),
        }
    }
}

/// Classifies the result of one `Session::send`.
pub fn classify(result: &Result<Delivery, SessionError>) -> Verdict {
    match result {
        Ok(Delivery::Accepted { reply, rejected_copies }) => Verdict {
            copies: copies(rejected_copies),
            ..Verdict::new(Disposition::Delivered, Some(reply), one_line(reply))
        },
        Ok(Delivery::Rejected { stage, reply }) => rejected(*stage, reply),
        // Refused locally before MAIL (too large for SIZE, no SMTPUTF8/8BITMIME): this server never takes it.
        Ok(Delivery::Refused(refusal)) => Verdict::new(Disposition::Failed, None, refusal.to_string()),
        Err(error) => session_error(error),
    }
}

fn rejected(stage: Stage, reply: &Reply) -> Verdict {
    let text = format!("{stage}: {}", one_line(reply));
    let disposition = match (reply.severity(), stage) {
        (Severity::Permanent, Stage::Mail) if about_the_message(reply) => Disposition::Failed,
        (Severity::Permanent, Stage::Mail) => Disposition::Abort,
        (Severity::Permanent, _) => Disposition::Failed,
        _ => Disposition::Retry { after: retry_hint(reply), session_ends: false, throttled: is_throttling(reply) },
    };
    Verdict::new(disposition, Some(reply), text)
}

/// A 5xx at MAIL FROM that concerns this message, not the sender or the account: too big (`552`, `x.3.4`,
/// e.g. from a server that checks SIZE= at MAIL without advertising its limit) or a bad parameter (`555`,
/// `x.5.4`). `530`, `550`, `553` and `x.7.x` are about who sends, and would hit every recipient.
fn about_the_message(reply: &Reply) -> bool {
    let enhanced = reply.enhanced().map(|e| (e.subject, e.detail));
    match enhanced {
        Some((7, _)) => false,
        Some((3, 4) | (5, 4)) => true,
        _ => matches!(reply.code(), 552 | 555),
    }
}

/// A transaction refused at MAIL FROM by the session rather than for the message: a `421` (the server ends
/// the session) or a 4xx that speaks of the session ("too many messages in this session"). On a session
/// that already delivered messages, nothing of this one was sent and a fresh session will take it: not an
/// attempt. Any other 4xx at MAIL FROM (a sender refused for now) is an ordinary deferral.
pub fn session_quota_reply(result: &Result<Delivery, SessionError>) -> Option<&Reply> {
    let reply = match result {
        Ok(Delivery::Rejected { stage: Stage::Mail, reply }) => reply,
        Err(SessionError::ServiceClosing { stage: Stage::Mail, reply }) => reply,
        _ => return None,
    };
    let about_session = reply.code() == 421 || speaks_of_a_session_limit(reply);
    (reply.severity() == Severity::Transient && about_session).then_some(reply)
}

/// Words with which servers state a limit of messages per session or connection. Only such a reply teaches
/// the run a per-session limit; a bare `421` ("try again later, closing connection") does not.
pub fn speaks_of_a_session_limit(reply: &Reply) -> bool {
    let text = reply.lines().join(" ").to_ascii_lowercase();
    let per_session = ["this session", "per session", "in session", "session limit", "messages per connection"];
    per_session.iter().any(|p| text.contains(p))
        || (text.contains("too many messages") && (text.contains("session") || text.contains("connection")))
}

fn session_error(error: &SessionError) -> Verdict {
    let reply = error.reply();
    let disposition = if error.is_uncertain() {
        Disposition::Uncertain
    } else if matches!(error, SessionError::Gate { .. }) {
        // The journal could not record the commit: sending on would risk sending twice.
        Disposition::Abort
    } else {
        let throttled = reply.is_some_and(is_throttling);
        Disposition::Retry { after: reply.and_then(retry_hint), session_ends: true, throttled }
    };
    Verdict::new(disposition, reply, error.to_string())
}

/// What a failed attempt to open a session means: the one classifier of setup failures.
///
/// Transient (back off and try again): a connection reset or closed anywhere before the first MAIL, a TLS
/// handshake broken by the network, a `421` or any 4xx to the greeting, EHLO, STARTTLS or AUTH. Timeouts
/// and a refused connect are transient once a session has been opened in this run (`ever_connected`);
/// before that they most likely mean a wrong host, port or `security`, and stop the job at once. Fatal at
/// once: a 5xx greeting, a refused login (535 and other permanent AUTH refusals), certificate and other TLS
/// errors, a server without the STARTTLS that was required, configuration errors.
pub fn connect_failure(error: &ConnectError, ever_connected: bool) -> ConnectVerdict {
    let transient = match error {
        ConnectError::ServiceClosing { .. } => true,
        ConnectError::Greeting { reply } | ConnectError::Ehlo { reply } | ConnectError::StartTlsRejected { reply } => {
            reply.severity() == Severity::Transient
        }
        ConnectError::Auth(AuthError::Temporary { .. }) => true,
        ConnectError::Auth(AuthError::Connection(e)) | ConnectError::Connection(e) => match e {
            ConnectionError::Io { .. } | ConnectionError::Closed { .. } => true,
            ConnectionError::Timeout { .. } => ever_connected,
            ConnectionError::Reply(_) | ConnectionError::Command(_) => false,
        },
        ConnectError::Tls(TlsError::Handshake { cause: HandshakeCause::Io, .. }) => true,
        // A server that accepts and resets at once (at its cap) can make connect() itself fail with a reset.
        ConnectError::Unreachable { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) =>
        {
            true
        }
        ConnectError::Unreachable { .. } | ConnectError::ConnectTimeout { .. } | ConnectError::TlsTimeout { .. } => {
            ever_connected
        }
        _ => false,
    };
    if transient { ConnectVerdict::Backoff } else { ConnectVerdict::Abort }
}

/// A failure to open a session that says "no more sessions for you now" rather than "try again": refused
/// or reset before the greeting, a 4xx greeting, a `421`, or words such as "too many connections". Only
/// these teach the pool a cap on concurrent sessions; a 4xx to EHLO or AUTH is a mere hiccup.
pub fn rejects_more_sessions(error: &ConnectError) -> bool {
    let says_so = |reply: &Reply| {
        let text = reply.lines().join(" ").to_ascii_lowercase();
        ["too many", "connection limit", "connections"].iter().any(|p| text.contains(p))
    };
    match error {
        ConnectError::ServiceClosing { .. } | ConnectError::Unreachable { .. } => true,
        ConnectError::Greeting { reply } => reply.severity() == Severity::Transient,
        ConnectError::Connection(ConnectionError::Io { phase, .. } | ConnectionError::Closed { phase }) => {
            *phase == Phase::Greeting
        }
        ConnectError::Ehlo { reply } | ConnectError::Auth(AuthError::Temporary { reply }) => says_so(reply),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectVerdict {
    /// Wait and try again (the server is busy or briefly away).
    Backoff,
    /// Stop the job: wrong password, TLS failure, no server there.
    Abort,
}

/// Replies that mean "you are sending too fast" rather than "this recipient has a problem".
pub fn is_throttling(reply: &Reply) -> bool {
    if reply.severity() != Severity::Transient {
        return false;
    }
    let by_code = matches!(
        reply.enhanced(),
        Some(EnhancedCode { class: 4, subject: 7, detail: 0 })
            | Some(EnhancedCode { class: 4, subject: 2, detail: 1 })
            | Some(EnhancedCode { class: 4, subject: 7, detail: 28 })
            | Some(EnhancedCode { class: 4, subject: 3, detail: 2 })
    );
    let text = reply.lines().join(" ").to_ascii_lowercase();
    // "too much mail": Postfix's per-client message rate limit (anvil), `450 4.7.1 Error: too much mail from`.
    let by_text = ["too many", "too much mail", "rate limit", "throttl", "slow down", "try again later", "too fast"]
        .iter()
        .any(|p| text.contains(p));
    by_code || by_text || (reply.code() == 421 && reply.enhanced().is_none())
}

/// "try again in 30 seconds", "retry in 5 minutes", "try again after 120s": the server's own wait, if any.
pub fn retry_hint(reply: &Reply) -> Option<Duration> {
    let text = reply.lines().join(" ").to_ascii_lowercase();
    let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == ',' || c == ';').collect();
    (1..words.len()).find_map(|i| {
        if !matches!(words[i - 1], "in" | "after") {
            return None;
        }
        let (digits, unit) = split_number(words[i], words.get(i + 1).copied().unwrap_or(""))?;
        let n: u64 = digits.parse().ok()?;
        let seconds = match unit.trim_end_matches('.') {
            "s" | "sec" | "secs" | "second" | "seconds" => n,
            "m" | "min" | "mins" | "minute" | "minutes" => n * 60,
            "h" | "hour" | "hours" => n * 3600,
            _ => return None,
        };
        Some(Duration::from_secs(seconds.min(24 * 3600)))
    })
}

/// `("30", "seconds")` from `30 seconds`, or `("30", "s")` from `30s`.
fn split_number<'a>(word: &'a str, next: &'a str) -> Option<(&'a str, &'a str)> {
    let end = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    if end == 0 {
        return None;
    }
    let (digits, rest) = word.split_at(end);
    Some((digits, if rest.is_empty() { next } else { rest }))
}

/// Exponential backoff with ±25 % jitter: `initial · 2^(attempt-1)`, at most `max`.
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX)).min(max);
    exp.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.75..=1.25))
}

/// A reply on one line for reports and logs: every line kept, joined with " / ".
/// The report's `copies` cell: each rejected copy as `address: reply` (the reply in one line), `; ` between.
/// A copy's rejection never retries the row: its main recipient has the message, and a retry would send
/// it twice (a 4xx to a copy is reported like a 5xx).
fn copies(rejected: &[RejectedCopy]) -> String {
    let each: Vec<String> = rejected.iter().map(|c| format!("{}: {}", c.address, one_line(&c.reply))).collect();
    each.join("; ")
}

pub fn one_line(reply: &Reply) -> String {
    let mut text = reply.code().to_string();
    for (i, line) in reply.lines().filter(|l| !l.is_empty()).enumerate() {
        text.push_str(if i == 0 { " " } else { " / " });
        text.push_str(line);
    }
    if text.len() == 3 {
        text.push(' ');
    }
    text
}

#[cfg(test)]
mod tests;
