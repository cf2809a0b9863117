//! The one owner of the terminal during a send: progress bars on a terminal, plain log lines under cron,
//! only the summary with `-q`. Everything a run prints goes through here, so a log line never tears a bar.
//!
//! The lines themselves come from [`lines`], a pure function of the run's [`View`] and the time; this
//! module only keeps the view up to date and puts the lines where they belong.

mod eta;
mod fit;
pub mod lines;
pub mod view;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Local, Offset, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::clock::now;
use super::settlement::{Settlement, Status, Tally};
use crate::output::{err_line, escape_controls};
pub use view::{Planned, Retry, Start, View};

/// How often a plain (non-terminal) run logs a progress line.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// The least time between two redraws on a terminal prompted by events (the recorder's tick redraws too).
const REDRAW_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars on stderr (a terminal).
    Bars,
    /// Log lines on stderr, each with its time, and a progress line every 10 s (cron, a pipe).
    Plain,
    /// Only the summary.
    Quiet,
}

impl Mode {
    pub fn detect(quiet: bool) -> Mode {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Bars,
            (false, false) => Mode::Plain,
        }
    }
}

pub struct Progress {
    mode: Mode,
    verbose: bool,
    view: View,
    /// The carried outcomes are counted here too, for the summary.
    tally: Tally,
    bar: Option<ProgressBar>,
    last_plain: DateTime<Utc>,
    last_draw: Instant,
    /// Sessions open right now (the pool's count), shown with the counts.
    sessions: Option<Arc<AtomicUsize>>,
    /// Plain mode: lines logged before the first line (which waits for the plan's counts) was printed.
    held: Option<Vec<String>>,
    started: Instant,
}

impl Progress {
    /// `rows`: the CSV's row count from the check, shown until the producer's plan is known.
    pub fn new(mode: Mode, verbose: bool, start: Start, rows: u64, connections: usize) -> Progress {
        let bar = (mode == Mode::Bars).then(bar);
        let last_plain = start.began;
        Progress {
            mode,
            verbose,
            view: View::new(start, rows, connections),
            tally: Tally::default(),
            bar,
            last_plain,
            last_draw: Instant::now(),
            sessions: None,
            held: (mode == Mode::Plain).then(Vec::new),
            started: Instant::now(),
        }
    }

    /// Shows how many sessions are open, from the pool's live count.
    pub fn with_sessions(mut self, open: Arc<AtomicUsize>) -> Progress {
        self.sessions = Some(open);
        self
    }

    /// The producer counted what this run will do: the first log line can be written.
    pub fn planned(&mut self, plan: Planned) {
        self.view.planned = Some(plan);
        self.release_held();
    }

    /// A worker's connection changed state ("connecting", "→ row 4 alice@example.com", "idle" …).
    pub fn connection(&mut self, worker: usize, state: String) {
        self.view.connection(worker, state);
        self.redraw(false);
    }

    /// A message was refused for now and waits for its next attempt.
    pub fn retrying(&mut self, retry: Retry) {
        let zone = (self.mode == Mode::Bars).then(local_zone);
        self.log(&lines::deferred(&retry, zone));
        self.view.retrying(retry);
        self.redraw(false);
    }

    /// A recipient settled in an earlier run: counted, logged only with `-v`.
    pub fn carried(&mut self, settlement: &Settlement) {
        self.tally.add(settlement);
        self.view.settled(settlement, true);
        if self.verbose {
            self.log(&describe(settlement));
        }
        self.redraw(false);
    }

    pub fn settled(&mut self, settlement: &Settlement) {
        self.tally.add(settlement);
        self.view.settled(settlement, false);
        let noteworthy = matches!(settlement.status, Status::Failed | Status::Deferred | Status::Uncertain)
            || !settlement.copies.is_empty();
        if self.verbose || noteworthy {
            self.log(&describe(settlement));
        }
        self.redraw(false);
    }

    /// A line for the person, printed above the bars (wrapped between words) or with its time without a
    /// terminal, never through them. Quiet prints nothing. Server text in it is shown with its control characters escaped;
    /// a closed stderr is ignored.
    pub fn log(&mut self, line: &str) {
        match (&self.bar, self.mode, &mut self.held) {
            (Some(bar), _, _) => {
                let rows = fit::wrap(&escape_controls(line), terminal_width());
                bar.suspend(|| rows.iter().for_each(|row| err_line(row)));
            }
            (None, Mode::Quiet, _) => {}
            (None, _, Some(held)) => held.push(lines::stamped(now(), line)),
            (None, _, None) => err_line(&lines::stamped(now(), line)),
        }
    }

    /// Called every second: the bars move on (countdowns, elapsed time) even while nothing happens, and a
    /// plain run logs its progress line every [`PLAIN_EVERY`].
    pub fn tick(&mut self) {
        self.redraw(true);
        let now = now();
        if self.mode == Mode::Plain
            && self.held.is_none()
            && (now - self.last_plain).to_std().unwrap_or_default() >= PLAIN_EVERY
        {
            self.last_plain = now;
            self.view.sessions_open = self.open_sessions();
            err_line(&lines::stamped(now, &lines::plain(&self.view, now)));
        }
    }

    /// Clears the bars and prints the summary table on stdout.
    pub fn finish(mut self) -> Tally {
        self.release_held();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let elapsed = self.started.elapsed();
        let mut out = std::io::stdout().lock();
        let _ =
            out.write_all(summary(&self.tally, (self.view.carried, self.view.carried_uncertain), elapsed).as_bytes());
        self.tally
    }

    /// Plain mode: the first line, then what waited for it.
    fn release_held(&mut self) {
        if let Some(held) = self.held.take() {
            err_line(&lines::stamped(now(), &lines::header(&self.view)));
            held.iter().for_each(|line| err_line(line));
        }
    }

    fn open_sessions(&self) -> Option<usize> {
        self.sessions.as_ref().map(|open| open.load(Ordering::Relaxed))
    }

    /// Draws the terminal's lines again; at most every [`REDRAW_EVERY`] unless `always`.
    fn redraw(&mut self, always: bool) {
        let Some(bar) = &self.bar else { return };
        if !always && self.last_draw.elapsed() < REDRAW_EVERY {
            return;
        }
        self.last_draw = Instant::now();
        self.view.sessions_open = self.open_sessions();
        let shown = lines::terminal(&self.view, now(), local_zone(), terminal_width());
        bar.set_message(shown.join("\n"));
    }
}

/// A line before or after the run's display (the check's summary, the end), as the display's own log lines:
/// wrapped between words on a terminal, with its time in front without one.
pub fn log_line(line: &str) {
    match std::io::stderr().is_terminal() {
        true => fit::wrap(&escape_controls(line), terminal_width()).iter().for_each(|row| err_line(row)),
        false => err_line(&lines::stamped(now(), line)),
    }
}

/// The columns a line may fill: one less than the terminal has, as a line that fills the last column makes
/// some terminals wrap.
fn terminal_width() -> usize {
    console::Term::stderr().size_checked().map_or(80, |(_, cols)| cols as usize).saturating_sub(1)
}

/// The person's time zone now, for times of day on the terminal.
fn local_zone() -> FixedOffset {
    Local::now().offset().fix()
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
    bar
}

fn describe(o: &Settlement) -> String {
    let code = o.code.map(|c| format!(" {c}")).unwrap_or_default();
    let copies = match o.copies.as_str() {
        "" => String::new(),
        copies => format!("; copies not delivered: {copies}"),
    };
    format!("row {} {} {}{code} {}{copies}", o.row, o.email, o.status, o.reply)
}

/// The end-of-run table: counts, elapsed time, average rate. `carried`: the recipients earlier runs dealt
/// with, and how many of those they left uncertain (not settled, as the prompt and `status` say).
pub fn summary(t: &Tally, carried: (u64, u64), elapsed: Duration) -> String {
    let (carried, uncertain_earlier) = carried;
    let secs = elapsed.as_secs_f64();
    let attempted = (t.delivered + t.failed + t.deferred + t.uncertain).saturating_sub(carried);
    let rate = if secs > 0.0 { attempted as f64 / secs } else { 0.0 };
    let rows = [
        ("delivered", t.delivered),
        ("failed", t.failed),
        ("deferred", t.deferred),
        ("uncertain", t.uncertain),
        ("not sent", t.not_sent),
        ("skipped", t.skipped),
        ("suppressed", t.suppressed),
        ("total", t.done()),
    ];
    let mut s = String::from("\nsummary\n");
    // The suppressed row only for jobs with suppression lists, so that others read as they always did.
    for (name, n) in rows.into_iter().filter(|&(name, n)| name != "suppressed" || n > 0) {
        s.push_str(&format!("  {name:<10} {n:>8}\n"));
    }
    let settled_earlier = carried - uncertain_earlier;
    match (settled_earlier, uncertain_earlier) {
        (0, 0) => {}
        (n, 0) => s.push_str(&format!("  ({n} of these were settled in earlier runs)\n")),
        (n, u) => s.push_str(&format!("  ({n} of these were settled in earlier runs, {u} left uncertain by them)\n")),
    }
    s.push_str(&format!("  {:<10} {:>8.1} s\n  {:<10} {:>8.1} msg/s\n", "elapsed", secs, "rate", rate));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_count_and_the_rate() {
        let t = Tally {
            delivered: 90,
            failed: 5,
            deferred: 3,
            uncertain: 2,
            not_sent: 0,
            skipped: 1,
            suppressed: 0,
            copies_rejected: 0,
        };
        let s = summary(&t, (0, 0), Duration::from_secs(10));
        assert!(s.contains("delivered        90\n"), "{s}");
        assert!(s.contains("skipped           1\n"), "{s}");
        assert!(s.contains("total           101\n"), "{s}");
        assert!(s.contains("rate           10.0 msg/s"), "{s}");
        let resumed = summary(&t, (9, 4), Duration::from_secs(10));
        assert!(
            resumed.contains("  (5 of these were settled in earlier runs, 4 left uncertain by them)\n"),
            "{resumed}"
        );
        assert!(summary(&t, (5, 0), Duration::from_secs(10)).contains("  (5 of these were settled in earlier runs)\n"));
    }
}
