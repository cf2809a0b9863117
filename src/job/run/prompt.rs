//! The confirmation before a run sends anything: it says what is true, a fresh send ("Send up to 60 …?") or a
//! resume ("26 of 60 were settled in earlier runs; send the remaining 34 …?"), naming the recipients an earlier
//! run left uncertain or deferred.

use std::io::{BufRead, IsTerminal, Write};

use chrono::{DateTime, Utc};

use super::{JobPaths, StartError};
use crate::cli::SendArgs;
use crate::job::journal::last_day::LastDay;
use crate::job::journal::{JournalState, Replayed, Settled};
use crate::job::shard::Shard;
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
    pub fn of(job: &Job, replayed: &Replayed, shard: Option<Shard>) -> Standing {
        let mut standing = Standing::default();
        let Ok(reader) = job.recipients() else { return standing };
        for entry in reader.filter_map(Result::ok) {
            let Entry::Recipient(r) = entry else { continue };
            if shard.is_some_and(|s| !s.contains(&r.key)) {
                continue;
            }
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

/// The question, ending in `[y/N] `. `standing` is `None` for a job with no earlier run (or `--fresh`);
/// `budget_left` is what `[rate] max_per_day` still allows, where it is set.
pub fn question(
    args: &SendArgs,
    job: &Job,
    total: u64,
    connections: usize,
    standing: Option<&Standing>,
    budget_left: Option<u64>,
) -> String {
    let via = format!(
        "from {} through {}:{} with {connections} connection(s)",
        job.from.envelope(),
        job.smtp.server,
        job.smtp.port()
    );
    // `--limit` and the daily budget cap the run as `limit` in `start` does: the smaller one.
    let cap = match (args.limit, budget_left) {
        (Some(l), Some(b)) => Some(l.min(b)),
        (l, b) => l.or(b),
    };
    let Some(s) = standing.filter(|s| s.settled + s.uncertain + s.deferred > 0) else {
        return match cap {
            Some(cap) if cap < total => format!("Send up to {cap} of {total} messages{} {via}? [y/N] ", why(cap, args)),
            _ => format!("Send up to {total} messages {via}? [y/N] "),
        };
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
    let send = match cap {
        Some(cap) if cap < remaining => format!("send {cap} of the remaining {remaining}{}", why(cap, args)),
        _ => format!("send the remaining {remaining}"),
    };
    let retried = match s.deferred {
        0 => String::new(),
        n => format!(" ({n} deferred earlier, tried again)"),
    };
    format!("{earlier}; {send}{retried} {via}? [y/N] ")
}

/// What caps the run, when it is the daily budget rather than `--limit`.
fn why(cap: u64, args: &SendArgs) -> String {
    match args.limit {
        Some(limit) if limit == cap => String::new(),
        _ => format!(" (the daily budget allows {cap} more)"),
    }
}

/// Asks on the terminal, unless `--yes`. Without a terminal (cron) `--yes` is required.
pub fn confirm(
    args: &SendArgs,
    job: &Job,
    paths: &JobPaths,
    shard: Option<Shard>,
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
    // A shard offers its own part of the CSV, not the whole.
    let total = match shard {
        Some(s) => crate::check::shards::sizes(job, s.count).map_or(total, |sizes| sizes[s.index as usize]),
        None => total,
    };
    let replayed = replayed(paths, now);
    let standing = match (&replayed, args.fresh) {
        (Some(replayed), false) => Some(Standing::of(job, replayed, shard)),
        _ => None,
    };
    let budget_left = job.rate.max_per_day.map(|max| {
        let sent = LastDay::of(&paths.journal, replayed.as_ref().unwrap_or(&Replayed::default()), now).sent;
        max.saturating_sub(sent)
    });
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{}", question(args, job, total, connections, standing.as_ref(), budget_left));
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
fn replayed(paths: &JobPaths, now: DateTime<Utc>) -> Option<Replayed> {
    Replayed::read_unlocked(&paths.journal, now, false).ok()
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
