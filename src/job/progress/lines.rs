//! The display's lines, made from a [`View`] and the time: on a terminal a bar, a line per connection and
//! the waiting retries, each cut to the width; without one (cron, a pipe) log lines, each starting with
//! the time in UTC (ISO 8601, `2026-12-02T22:40:01Z`: the journal and the reports' names use UTC too, and
//! a cron mail is read on other machines), the first naming the job, the run and its counts.

use chrono::{DateTime, FixedOffset, Utc};

use super::eta::human;
use super::fit::fit;
use super::view::{Retry, View};
use crate::job::settlement::Tally;
use crate::output::escape_controls;

/// Connection lines shown on a terminal; the rest are summed up in one line.
const CONNECTION_LINES: usize = 8;
/// Waiting retries shown one by one on a terminal.
const RETRY_LINES: usize = 3;
const BAR_WIDTH: usize = 24;

/// `line` with the time in front, for a log without a terminal.
pub fn stamped(now: DateTime<Utc>, line: &str) -> String {
    format!("{} {line}", iso(now))
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The first log line of a run: the job, its campaign, this run and what it is going to do.
pub fn header(view: &View) -> String {
    let start = &view.start;
    let campaign = match &start.campaign {
        Some(name) => format!("campaign \"{name}\""),
        None => "no campaign name".to_owned(),
    };
    let counts = match view.planned {
        Some(plan) => {
            let rest = plan.recipients.saturating_sub(plan.to_send + plan.settled_earlier + plan.uncertain_earlier);
            let rest = if rest > 0 { format!(", {rest} not sent in this run") } else { String::new() };
            let earlier = plan.settled_earlier;
            let uncertain = match plan.uncertain_earlier {
                0 => String::new(),
                n => format!(", {n} left uncertain by earlier runs (not sent again)"),
            };
            let recipients = recipients(plan.recipients);
            format!("{recipients}: {} to send, {earlier} settled in earlier runs{uncertain}{rest}", plan.to_send)
        }
        None => recipients(view.rows),
    };
    format!("job {} · {campaign} · run {} began {} · {counts}", start.job.display(), start.run, iso(start.began))
}

fn recipients(n: u64) -> String {
    if n == 1 { "1 recipient".to_owned() } else { format!("{n} recipients") }
}

/// Without a terminal, the line logged every few seconds.
pub fn plain(view: &View, now: DateTime<Utc>) -> String {
    let mut line = format!("progress {}", status(view, now));
    if let Some(last) = view.waiting(now).last() {
        line.push_str(&format!(" · waiting to retry {} until {}", view.waiting(now).len(), iso(last.due)));
    }
    line
}

/// On a terminal: the bar, the connections, the waiting retries, each cut to `width` columns. Times of
/// day are shown in `zone` (the person's local time).
pub fn terminal(view: &View, now: DateTime<Utc>, zone: FixedOffset, width: usize) -> Vec<String> {
    let mut lines = vec![format!("{} {}", bar(view.sent(), view.to_send()), status(view, now))];
    // One line more than the cap is shown as itself, not as "1 more".
    let shown = match view.connections.len() {
        n if n > CONNECTION_LINES + 1 => CONNECTION_LINES,
        n => n,
    };
    for (i, state) in view.connections.iter().enumerate().take(shown) {
        lines.push(format!("  conn {:<2} {state}", i + 1));
    }
    if view.connections.len() > shown {
        let busy = view.connections[shown..].iter().filter(|s| s.starts_with('→')).count();
        lines.push(format!("  … {} more connections, {busy} of them sending", view.connections.len() - shown));
    }
    let waiting = view.waiting(now);
    if let Some(last) = waiting.last() {
        let until = last.due.with_timezone(&zone).format("%H:%M:%S");
        lines.push(format!("  waiting to retry {} until {until} ({})", waiting.len(), in_time(last.due, now)));
        for retry in waiting.iter().take(RETRY_LINES) {
            lines.push(format!("    {}", retry_line(retry, now, zone)));
        }
        if waiting.len() > RETRY_LINES {
            lines.push(format!("    … and {} more", waiting.len() - RETRY_LINES));
        }
    }
    lines.iter().map(|line| fit(&escape_controls(line), width)).collect()
}

/// A deferral as logged: the row, the reply and when the next attempt is due (`zone` for the terminal's
/// time of day, `None` for an ISO time in UTC).
pub fn deferred(retry: &Retry, zone: Option<FixedOffset>) -> String {
    let at = match zone {
        Some(zone) => retry.due.with_timezone(&zone).format("%H:%M:%S").to_string(),
        None => iso(retry.due),
    };
    format!(
        "row {} {} deferred ({}); attempt {} of {} at {at}",
        retry.row, retry.email, retry.reason, retry.attempt, retry.attempts
    )
}

fn retry_line(retry: &Retry, now: DateTime<Utc>, zone: FixedOffset) -> String {
    let at = retry.due.with_timezone(&zone).format("%H:%M:%S");
    let (row, email, reason) = (retry.row, &retry.email, &retry.reason);
    format!("row {row} {email}: attempt {} at {at} ({}) after {reason}", retry.attempt, in_time(retry.due, now))
}

fn in_time(due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("in {}", human((due - now).to_std().unwrap_or_default()))
}

/// Progress, ETA, pace, elapsed time and counts, most telling first (a narrow terminal cuts the end): the
/// part of the first line both modes share.
fn status(view: &View, now: DateTime<Utc>) -> String {
    let eta = view.eta(now).map_or_else(|| "--".to_owned(), human);
    let (sent, to_send, pace, elapsed) = (view.sent(), view.to_send(), view.pace(now), human(view.elapsed(now)));
    let mut line = format!("{sent}/{to_send} this run · ETA {eta} · {pace:.1} msg/s · elapsed {elapsed} · ");
    line.push_str(&counts(&view.run));
    let settled_earlier = view.carried - view.carried_uncertain;
    if settled_earlier > 0 {
        line.push_str(&format!(" · {settled_earlier} settled earlier"));
    }
    if view.carried_uncertain > 0 {
        line.push_str(&format!(" · {} uncertain earlier", view.carried_uncertain));
    }
    if let Some(open) = view.sessions_open {
        line.push_str(&format!(" · {open} session{} open", if open == 1 { "" } else { "s" }));
    }
    line
}

fn counts(t: &Tally) -> String {
    let mut s = format!(
        "delivered {} · failed {} · deferred {} · uncertain {}",
        t.delivered, t.failed, t.deferred, t.uncertain
    );
    if t.skipped > 0 {
        s.push_str(&format!(" · skipped {}", t.skipped));
    }
    if t.suppressed > 0 {
        s.push_str(&format!(" · suppressed {}", t.suppressed));
    }
    s
}

fn bar(done: u64, of: u64) -> String {
    let filled = match of {
        0 => BAR_WIDTH,
        _ => (done.min(of) as usize * BAR_WIDTH) / of as usize,
    };
    let head = if filled < BAR_WIDTH { ">" } else { "" };
    let empty = BAR_WIDTH.saturating_sub(filled + head.len());
    format!("[{}{head}{}]", "=".repeat(filled), " ".repeat(empty))
}

#[cfg(test)]
mod tests;
