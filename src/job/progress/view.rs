//! What the progress display knows about a run: filled in from the recorder's events, read by [`lines`]
//! (super::lines). No clock and no terminal in here, so that every state can be built in a test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::eta;
use crate::config::rate::Pace;
use crate::job::settlement::{Settlement, Status, Tally};
use crate::jobdef::Job;

/// The facts of a run known before it starts, for the first log line and the ETA.
#[derive(Debug, Clone)]
pub struct Start {
    /// The job file, absolute where possible (a cron mail names the job without a working directory).
    pub job: PathBuf,
    /// `[message] campaign`, if set.
    pub campaign: Option<String>,
    /// This run's number in the journal (1 for a new campaign).
    pub run: u32,
    pub began: DateTime<Utc>,
    /// The configured rate in messages per second (`[rate]`, `--rate`).
    pub rate: Option<f64>,
}

impl Start {
    pub fn of(job_file: &Path, job: &Job, run: u32, began: DateTime<Utc>, pace: Option<Pace>) -> Start {
        Start {
            job: std::path::absolute(job_file).unwrap_or_else(|_| job_file.to_owned()),
            campaign: job.campaign.clone(),
            run,
            began,
            rate: pace.map(|p| p.per_second_rate()),
        }
    }
}

/// The producer's plan for this run, counted from the CSV and the journal before the first message goes out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Planned {
    /// Rows in the CSV (duplicates and bad rows included).
    pub recipients: u64,
    /// Messages this run will try to send (after `--limit` and the daily budget).
    pub to_send: u64,
    /// Delivered or failed in earlier runs: nothing is done for them now.
    pub settled_earlier: u64,
    /// Left uncertain by earlier runs and not sent again (no `--resend-uncertain`): not settled, as the
    /// prompt and `status` say, so not counted with the settled ones.
    pub uncertain_earlier: u64,
}

/// A message refused for now, waiting for its next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub row: u64,
    pub email: String,
    /// The attempt that comes next, and how many the job allows.
    pub attempt: u32,
    pub attempts: u32,
    pub due: DateTime<Utc>,
    /// The server's reply (or the local error) that deferred it.
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct View {
    pub start: Start,
    /// The CSV's row count from the check, until the plan is known.
    pub rows: u64,
    pub planned: Option<Planned>,
    /// Outcomes of this run only (the summary's tally also counts the earlier runs').
    pub run: Tally,
    /// Recipients settled in earlier runs that the producer has passed so far (left uncertain included).
    pub carried: u64,
    /// Of `carried`, those an earlier run left uncertain.
    pub carried_uncertain: u64,
    /// Transactions that ended in this run: settled by a reply or an error, or deferred for a retry.
    pub attempts: u64,
    /// Waiting retries by CSV row (a row retried again replaces its entry; settling removes it).
    pub retries: BTreeMap<u64, Retry>,
    /// Each connection's state ("connecting", "→ row 4 ann@example.com", "idle" …).
    pub connections: Vec<String>,
    /// Sessions open now, when the pool counts them.
    pub sessions_open: Option<usize>,
}

impl View {
    pub fn new(start: Start, rows: u64, connections: usize) -> View {
        View {
            start,
            rows,
            planned: None,
            run: Tally::default(),
            carried: 0,
            carried_uncertain: 0,
            attempts: 0,
            retries: BTreeMap::new(),
            connections: vec!["starting".to_owned(); connections],
            sessions_open: None,
        }
    }

    pub fn settled(&mut self, settlement: &Settlement, carried: bool) {
        self.retries.remove(&settlement.row);
        if carried {
            self.carried += 1;
            self.carried_uncertain += u64::from(settlement.status == Status::Uncertain);
            return;
        }
        self.run.add(settlement);
        if !matches!(settlement.status, Status::Skipped | Status::Suppressed) {
            self.attempts += 1;
        }
    }

    pub fn retrying(&mut self, retry: Retry) {
        self.attempts += 1;
        self.retries.insert(retry.row, retry);
    }

    pub fn connection(&mut self, worker: usize, state: String) {
        if let Some(line) = self.connections.get_mut(worker) {
            *line = state;
        }
    }

    /// Messages of this run that reached an outcome (skipped and suppressed ones are not counted: they were
    /// never tried).
    pub fn sent(&self) -> u64 {
        self.run.done() - self.run.skipped - self.run.suppressed
    }

    /// Messages this run means to send: the plan's count, or until it is known, the rows not yet settled
    /// some other way.
    pub fn to_send(&self) -> u64 {
        match self.planned {
            Some(plan) => plan.to_send,
            None => self.rows.saturating_sub(self.carried + self.run.skipped + self.run.suppressed),
        }
    }

    /// Retries still waiting at `now`, the latest due last. (A due one is back in line, no longer waiting.)
    pub fn waiting(&self, now: DateTime<Utc>) -> Vec<&Retry> {
        let mut waiting: Vec<&Retry> = self.retries.values().filter(|r| r.due > now).collect();
        waiting.sort_by_key(|r| (r.due, r.row));
        waiting
    }

    pub fn elapsed(&self, now: DateTime<Utc>) -> Duration {
        (now - self.start.began).to_std().unwrap_or_default()
    }

    pub fn eta(&self, now: DateTime<Utc>) -> Option<Duration> {
        let last_retry_in = self.waiting(now).last().and_then(|r| (r.due - now).to_std().ok());
        eta::eta(eta::EtaInputs {
            remaining: self.to_send().saturating_sub(self.sent()),
            attempts: self.attempts,
            elapsed: self.elapsed(now),
            rate: self.start.rate,
            last_retry_in,
        })
    }

    /// Messages per second that reached an outcome in this run.
    pub fn pace(&self, now: DateTime<Utc>) -> f64 {
        self.sent() as f64 / self.elapsed(now).as_secs_f64().max(1e-3)
    }
}
