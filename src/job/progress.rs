//! The one owner of the terminal during a send: progress bars on a terminal, plain log lines under cron,
//! only the summary with `-q`. Everything a run prints goes through here, so a log line never tears a bar.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::outcome::{Outcome, Status, Tally};
use crate::output::err_line;

/// How often a plain (non-terminal) run logs a progress line.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars on stderr (a terminal).
    Bars,
    /// A log line every 10 s on stderr (cron, a pipe).
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

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    connections: Vec<ProgressBar>,
}

pub struct Progress {
    mode: Mode,
    verbose: bool,
    bars: Option<Bars>,
    total: u64,
    tally: Tally,
    /// Settled in earlier runs: counted in `tally`, not in this run's rate.
    carried: u64,
    started: Instant,
    last_line: Instant,
    /// Sessions open right now (the pool's count), shown with the counts.
    sessions: Option<Arc<AtomicUsize>>,
}

impl Progress {
    pub fn new(mode: Mode, verbose: bool, total: u64, connections: usize) -> Progress {
        let bars = (mode == Mode::Bars).then(|| bars(total, connections));
        let now = Instant::now();
        let tally = Tally::default();
        Progress { mode, verbose, bars, total, tally, carried: 0, started: now, last_line: now, sessions: None }
    }

    /// Shows how many sessions are open, from the pool's live count.
    pub fn with_sessions(mut self, open: Arc<AtomicUsize>) -> Progress {
        self.sessions = Some(open);
        self
    }

    fn sessions(&self) -> String {
        match &self.sessions {
            Some(open) => format!(" · {} open", plural(open.load(Ordering::Relaxed), "session")),
            None => String::new(),
        }
    }

    /// A worker's connection changed state ("connecting", "authenticating", "→ alice@example.com", …).
    pub fn connection(&self, worker: usize, state: &str) {
        if let Some(bar) = self.bars.as_ref().and_then(|b| b.connections.get(worker)) {
            bar.set_message(state.to_owned());
        }
    }

    /// A recipient settled in an earlier run: counted, logged only with `-v`.
    pub fn carried(&mut self, outcome: &Outcome) {
        self.tally.add(outcome.status);
        self.carried += 1;
        if self.verbose {
            self.log(&describe(outcome));
        }
        self.show();
    }

    pub fn settled(&mut self, outcome: &Outcome) {
        self.tally.add(outcome.status);
        let noteworthy = matches!(outcome.status, Status::Failed | Status::Deferred | Status::Uncertain);
        if self.verbose || (noteworthy && self.mode != Mode::Quiet) {
            self.log(&describe(outcome));
        }
        self.show();
    }

    fn show(&mut self) {
        if let Some(bars) = &self.bars {
            bars.overall.set_position(self.tally.done());
            let rate = (self.tally.done() - self.carried) as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            bars.overall.set_message(format!("{} · {rate:.0} msg/s{}", counts(&self.tally), self.sessions()));
        }
        self.tick();
    }

    /// A line for the person, printed above the bars (or plainly), never through them. Quiet prints nothing.
    /// Server text in it is shown with its control characters escaped; a closed stderr is ignored.
    pub fn log(&self, line: &str) {
        match (&self.bars, self.mode) {
            (Some(bars), _) => bars.multi.suspend(|| err_line(line)),
            (None, Mode::Quiet) => {}
            (None, _) => err_line(line),
        }
    }

    /// In plain mode, a progress line every [`PLAIN_EVERY`].
    pub fn tick(&mut self) {
        if self.mode == Mode::Plain && self.last_line.elapsed() >= PLAIN_EVERY {
            self.last_line = Instant::now();
            let rate = (self.tally.done() - self.carried) as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            let (done, total, counts) = (self.tally.done(), self.total, counts(&self.tally));
            err_line(&format!("progress: {done}/{total} {counts} ({rate:.1} msg/s{})", self.sessions()));
        }
    }

    /// Clears the bars and prints the summary table on stdout.
    pub fn finish(self) -> Tally {
        if let Some(bars) = &self.bars {
            bars.connections.iter().for_each(ProgressBar::finish_and_clear);
            bars.overall.finish_and_clear();
        }
        let elapsed = self.started.elapsed();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(summary(&self.tally, self.carried, elapsed).as_bytes());
        self.tally
    }
}

fn bars(total: u64, connections: usize) -> Bars {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {msg} · ETA {eta}")
        .expect("a valid template")
        .progress_chars("=> ");
    let overall = multi.add(ProgressBar::new(total).with_style(style));
    let line = ProgressStyle::with_template("  {prefix} {msg}").expect("a valid template");
    let connections = (0..connections)
        .map(|i| {
            let bar = multi.add(ProgressBar::new_spinner().with_style(line.clone()));
            bar.set_prefix(format!("conn {}", i + 1));
            bar.set_message("idle");
            bar
        })
        .collect();
    overall.enable_steady_tick(Duration::from_millis(200));
    Bars { multi, overall, connections }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

fn counts(t: &Tally) -> String {
    format!("delivered {} · deferred {} · failed {} · uncertain {}", t.delivered, t.deferred, t.failed, t.uncertain)
}

fn describe(o: &Outcome) -> String {
    let code = o.code.map(|c| format!(" {c}")).unwrap_or_default();
    format!("row {} {} {}{code} {}", o.row, o.email, o.status, o.reply)
}

/// The end-of-run table: counts, elapsed time, average rate.
pub fn summary(t: &Tally, carried: u64, elapsed: Duration) -> String {
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
        ("total", t.done()),
    ];
    let mut s = String::from("\nsummary\n");
    for (name, n) in rows {
        s.push_str(&format!("  {name:<10} {n:>8}\n"));
    }
    if carried > 0 {
        s.push_str(&format!("  ({carried} of these were settled in earlier runs)\n"));
    }
    s.push_str(&format!("  {:<10} {:>8.1} s\n  {:<10} {:>8.1} msg/s\n", "elapsed", secs, "rate", rate));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_count_and_the_rate() {
        let t = Tally { delivered: 90, failed: 5, deferred: 3, uncertain: 2, not_sent: 0, skipped: 1 };
        let s = summary(&t, 0, Duration::from_secs(10));
        assert!(s.contains("delivered        90\n"), "{s}");
        assert!(s.contains("skipped           1\n"), "{s}");
        assert!(s.contains("total           101\n"), "{s}");
        assert!(s.contains("rate           10.0 msg/s"), "{s}");
    }
}
