//! Every number in the job file, checked before anything uses it: finite, positive where it is a duration or
//! a count, and below a documented ceiling (README, "Numbers in the job file").
//!
//! Why: TOML accepts `inf`, `nan` and `1e300`, and `Duration::from_secs_f64` panics on each (a worker died on
//! the first retry of `max_delay = 1e300`); a timeout of `0` or `-1` made every reply time out. `check` reports
//! each bad number with its key and line, so `send` never starts with one.

use std::fmt;

use super::JobFile;
use super::rate::RateSection;
use super::retry::RetrySection;
pub use super::seconds::MAX_SECONDS;
use super::smtp::SmtpSection;

/// The shortest duration (seconds) a timeout or delay may be: anything shorter is a typo, not a wish.
pub const MIN_SECONDS: f64 = 0.001;
/// `[smtp] connections` (and `--connections`): at most this many sessions at once.
pub const MAX_CONNECTIONS: u32 = 100;
/// `[smtp] window`: transactions in flight per session (the producer queues 16 per connection ahead).
pub const MAX_WINDOW: u32 = 16;
/// `[smtp] max_messages_per_connection`.
pub const MAX_MESSAGES_PER_CONNECTION: u32 = 100_000;
/// `[retry] attempts`.
pub const MAX_ATTEMPTS: u32 = 100;
/// `[rate] burst`.
pub const MAX_BURST: u32 = 1_000;
/// `[rate] max_per_day`.
pub const MAX_PER_DAY: u64 = 100_000_000;
/// The fastest rate (`[rate]`, `--rate`), in messages per second …
pub const MAX_PER_SECOND: f64 = 10_000.0;
/// … and the slowest: one a day.
pub const MIN_PER_SECOND: f64 = 1.0 / 86_400.0;

/// One number out of its range: where it is (`table`, and `key`, dotted inside the table) and what it must be.
#[derive(Debug, Clone, PartialEq)]
pub struct BadNumber {
    pub table: &'static str,
    pub key: String,
    pub value: String,
    pub rule: String,
}

impl BadNumber {
    /// The key's path in the TOML document, for finding its line.
    pub fn path(&self) -> Vec<&str> {
        std::iter::once(self.table).chain(self.key.split('.')).collect()
    }
}

impl fmt::Display for BadNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {} = {}: {}", self.table, self.key, self.value, self.rule)
    }
}

/// Every number of the job file that is out of its range.
pub fn check(file: &JobFile) -> Vec<BadNumber> {
    let mut bad = smtp(&file.smtp);
    bad.extend(retry(&file.retry));
    bad.extend(rate(&file.rate));
    bad
}

/// `[smtp]`: the port, the pool's sizes and every timeout.
pub fn smtp(s: &SmtpSection) -> Vec<BadNumber> {
    let mut bad = Vec::new();
    let mut count = |key: &str, value: Option<u64>, max: u64| {
        bad.extend(value.and_then(|v| Some(found("smtp", key, v.to_string(), out_of(v, 1, max)?))));
    };
    count("port", s.port.map(u64::from), 65_535);
    count("connections", Some(u64::from(s.connections)), u64::from(MAX_CONNECTIONS));
    count("window", Some(u64::from(s.window)), u64::from(MAX_WINDOW));
    let per_session = u64::from(s.max_messages_per_connection);
    count("max_messages_per_connection", Some(per_session), u64::from(MAX_MESSAGES_PER_CONNECTION));
    let t = &s.timeouts;
    let timeouts = [
        ("connect", t.connect),
        ("tls", t.tls),
        ("greeting", t.greeting),
        ("command", t.command),
        ("data", t.data),
        ("data_block", t.data_block),
        ("data_end", t.data_end),
    ];
    for (key, value) in timeouts {
        bad.extend(duration("smtp", &format!("timeouts.{key}"), value));
    }
    bad.extend(duration("smtp", "password_command_timeout", s.password_command_timeout));
    bad.extend(duration("smtp", "token_lifetime", s.token_lifetime));
    bad
}

fn retry(r: &RetrySection) -> Vec<BadNumber> {
    let attempts = out_of(u64::from(r.attempts), 1, u64::from(MAX_ATTEMPTS));
    let mut bad: Vec<BadNumber> =
        attempts.map(|rule| found("retry", "attempts", r.attempts.to_string(), rule)).into_iter().collect();
    bad.extend(duration("retry", "initial_delay", r.initial_delay));
    bad.extend(duration("retry", "max_delay", r.max_delay));
    bad
}

fn rate(r: &RateSection) -> Vec<BadNumber> {
    let mut bad = Vec::new();
    for (key, value, per) in
        [("per_second", r.per_second, 1.0), ("per_minute", r.per_minute, 60.0), ("per_hour", r.per_hour, 3600.0)]
    {
        let Some(value) = value else { continue };
        if let Some(rule) = rate_rule(value / per) {
            let range = format!("{} to {}", MIN_PER_SECOND * per, MAX_PER_SECOND * per);
            bad.push(found("rate", key, format!("{value:?}"), format!("{rule} (for {key}: {range})")));
        }
    }
    if let Some(burst) = r.burst
        && let Some(rule) = out_of(u64::from(burst), 1, u64::from(MAX_BURST))
    {
        bad.push(found("rate", "burst", burst.to_string(), rule));
    }
    if let Some(max) = r.max_per_day
        && let Some(rule) = out_of(max, 1, MAX_PER_DAY)
    {
        bad.push(found("rate", "max_per_day", max.to_string(), rule));
    }
    bad
}

/// Why a rate in messages per second is unusable, if it is (also for `--rate`).
pub fn rate_rule(per_second: f64) -> Option<String> {
    let ok = (MIN_PER_SECOND..=MAX_PER_SECOND).contains(&per_second);
    (!ok).then(|| "must be a rate from one message a day to 10000 a second".to_owned())
}

/// Why a session count is unusable, if it is (also for `--connections`).
pub fn connections_rule(n: u32) -> Option<String> {
    out_of(u64::from(n), 1, u64::from(MAX_CONNECTIONS))
}

fn duration(table: &'static str, key: &str, seconds: f64) -> Option<BadNumber> {
    let ok = (MIN_SECONDS..=MAX_SECONDS).contains(&seconds);
    let rule = format!("must be a number of seconds from {MIN_SECONDS} to {MAX_SECONDS} (a day)");
    (!ok).then(|| found(table, key, format!("{seconds:?}"), rule))
}

fn out_of(value: u64, min: u64, max: u64) -> Option<String> {
    (!(min..=max).contains(&value)).then(|| format!("must be a whole number from {min} to {max}"))
}

/// `value` as the file could have written it (floats in `{:?}` form: `1e300`, `inf`, `NaN`, `0.5`).
fn found(table: &'static str, key: &str, value: String, rule: String) -> BadNumber {
    BadNumber { table, key: key.to_owned(), value, rule }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn bad(extra: &str) -> Vec<String> {
        let text = format!("[smtp]\nserver = \"mail.example.com\"\n{extra}");
        check(&JobFile::parse(Path::new("job.toml"), &text).unwrap()).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_and_ordinary_values_pass() {
        assert_eq!(bad(""), Vec::<String>::new());
        let ordinary = "port = 587\nconnections = 4\ntimeouts = { connect = 5, data_end = 600.5 }\n\
                        [retry]\nattempts = 5\ninitial_delay = 0.1\nmax_delay = 3600\n\
                        [rate]\nper_hour = 1\nburst = 1\nmax_per_day = 2000\n";
        assert_eq!(bad(ordinary), Vec::<String>::new());
    }

    #[test]
    fn every_bad_number_is_named_with_its_key() {
        let cases = [
            (
                "[retry]\nmax_delay = 1e300\n",
                "[retry] max_delay = 1e300: must be a number of seconds from 0.001 to 86400",
            ),
            ("[retry]\nmax_delay = inf\n", "[retry] max_delay = inf: must be a number of seconds"),
            ("[retry]\ninitial_delay = nan\n", "[retry] initial_delay = NaN: must be"),
            ("[retry]\ninitial_delay = -1\n", "[retry] initial_delay = -1.0: must be"),
            ("[retry]\nattempts = 0\n", "[retry] attempts = 0: must be a whole number from 1 to 100"),
            ("timeouts = { command = 0 }\n", "[smtp] timeouts.command = 0.0: must be a number of seconds"),
            ("timeouts = { greeting = -5 }\n", "[smtp] timeouts.greeting = -5.0: must be"),
            ("timeouts = { data = nan }\n", "[smtp] timeouts.data = NaN: must be"),
            ("port = 0\n", "[smtp] port = 0: must be a whole number from 1 to 65535"),
            ("password_command_timeout = 0\n", "[smtp] password_command_timeout = 0.0: must be"),
            ("connections = 0\n", "[smtp] connections = 0: must be a whole number from 1 to 100"),
            ("connections = 100000\n", "[smtp] connections = 100000: must be"),
            ("window = 0\n", "[smtp] window = 0: must be a whole number from 1 to 16"),
            ("window = 17\n", "[smtp] window = 17: must be a whole number from 1 to 16"),
            ("max_messages_per_connection = 0\n", "[smtp] max_messages_per_connection = 0: must be"),
            ("[rate]\nper_second = inf\n", "[rate] per_second = inf: must be a rate"),
            ("[rate]\nper_hour = 1e-300\n", "[rate] per_hour = 1e-300: must be a rate from one message a day"),
            ("[rate]\nper_minute = 0\n", "[rate] per_minute = 0.0: must be a rate"),
            ("[rate]\nburst = 0\n", "[rate] burst = 0: must be a whole number from 1 to 1000"),
            ("[rate]\nmax_per_day = 0\n", "[rate] max_per_day = 0: must be"),
        ];
        for (extra, expected) in cases {
            let found = bad(extra);
            assert_eq!(found.len(), 1, "{extra:?}: {found:?}");
            assert!(found[0].starts_with(expected), "{extra:?}: {found:?}");
        }
    }
}
