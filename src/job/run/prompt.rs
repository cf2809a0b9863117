//! The confirmation before a run sends anything: it says what is true, a fresh send ("Send up to 60 …?") or a
//! resume ("26 of 60 were settled in earlier runs; send the remaining 34 …?"), naming the recipients an earlier
//! run left uncertain or deferred.

use std::io::{BufRead, IsTerminal, Write};

use chrono::{DateTime, Utc};

use super::{JobPaths, StartError};
use crate::cli::SendArgs;
use crate::job::journal::{JournalState, Replayed, Settled};
use crate::jobdef::Job;
use crate::recipients::Entry;

/// Where the job stands before this run, by the journal (read, not opened: nothing is written before "yes").
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub total: u64,
    /// Delivered or failed in earlier runs: not sent again.
    pub settled: u64,
    /// Maybe delivered: not sent again unless `--resend-uncertain`.
    pub uncertain: u64,
    /// Refused for now in an earlier run: sent again in this one.
    pub deferred: u64,
}

impl Standing {
    /// Counts the CSV's recipients by what `replayed` says of them.
    pub fn of(job: &Job, replayed: &Replayed) -> Standing {
        let mut standing = Standing::default();
        let Ok(reader) = job.recipients() else { return standing };
        for entry in reader.filter_map(Result::ok) {
            let Entry::Recipient(r) = entry else { continue };
            standing.total += 1;
            match replayed.get(&r.key).map(|e| e.state) {
                Some(JournalState::Settled(Settled::Delivered | Settled::Failed)) => standing.settled += 1,
                Some(JournalState::Settled(Settled::Deferred)) => standing.deferred += 1,
                Some(JournalState::Uncertain) => standing.uncertain += 1,
                Some(JournalState::Released) | None => {}
            }
        }
        standing
    }

    /// The recipients this run would send (before any `--limit` or daily budget).
    fn remaining(&self, resend_uncertain: bool) -> u64 {
        let uncertain = if resend_uncertain { 0 } else { self.uncertain };
        self.total - self.settled - uncertain
    }
}

/// The question, ending in `[y/N] `. `standing` is `None` for a job with no earlier run (or `--fresh`).
pub fn question(args: &SendArgs, job: &Job, total: u64, connections: usize, standing: Option<&Standing>) -> String {
    let via = format!(
        "from {} through {}:{} with {connections} connection(s)",
        job.from.envelope(),
        job.smtp.server,
        job.smtp.port()
    );
    let Some(s) = standing.filter(|s| s.settled + s.uncertain + s.deferred > 0) else {
        return format!("Send up to {total} messages {via}? [y/N] ");
    };
    let remaining = s.remaining(args.resend_uncertain);
    let mut earlier = format!("{} of {} were settled in earlier runs", s.settled, s.total);
    if s.uncertain > 0 {
        let (again, stay) = if s.uncertain == 1 { ("is", "stays") } else { ("are", "stay") };
        earlier += &match args.resend_uncertain {
            true => format!("; {} uncertain (maybe delivered) {again} sent again as asked", s.uncertain),
            false => format!("; {} uncertain (maybe delivered) {stay} unsent (--resend-uncertain)", s.uncertain),
        };
    }
    let send = match args.limit {
        Some(limit) if limit < remaining => format!("send {limit} of the remaining {remaining}"),
        _ => format!("send the remaining {remaining}"),
    };
    let retried = match s.deferred {
        0 => String::new(),
        n => format!(" ({n} deferred earlier, tried again)"),
    };
    format!("{earlier}; {send}{retried} {via}? [y/N] ")
}

/// Asks on the terminal, unless `--yes`. Without a terminal (cron) `--yes` is required.
pub fn confirm(
    args: &SendArgs,
    job: &Job,
    total: u64,
    connections: usize,
    now: DateTime<Utc>,
) -> Result<(), StartError> {
    if args.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(StartError::Input("not asking for confirmation without a terminal: pass --yes to send".into()));
    }
    let standing = if args.fresh { None } else { standing(&JobPaths::of(&args.job), job, now) };
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{}", question(args, job, total, connections, standing.as_ref()));
    let _ = stderr.flush();
    drop(stderr);
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(StartError::Input("not confirmed; nothing was sent".into())),
    }
}

/// The journal as it stands, if there is one that reads (a damaged one is reported once the run opens it).
fn standing(paths: &JobPaths, job: &Job, now: DateTime<Utc>) -> Option<Standing> {
    let file = std::fs::File::open(&paths.journal).ok()?;
    let replayed = Replayed::read(file, now, &paths.journal).ok()?;
    Some(Standing::of(job, &replayed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_leaves_out_the_settled_and_the_uncertain_unless_asked() {
        let s = Standing { total: 60, settled: 26, uncertain: 2, deferred: 3 };
        assert_eq!((s.remaining(false), s.remaining(true)), (32, 34));
    }
}
