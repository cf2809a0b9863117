//! `mailshot send`: one run of a job, from the check to the exit code, in three steps:
//!
//! ```text
//! start    check the job → ask → lock → [--fresh: set aside] → replay the journal → refuse changed inputs
//!          or missing evidence → the run's record, durable → the report file
//! sending  recorder ◄─ events ─ producer (renders) ─► queue ─► workers (sessions) ; joined, leftovers not sent
//! finish   exit code → run-end record, journal synced and closed → lessons, report path, -q's undelivered list
//! ```
//!
//! Order matters for safety: the check runs first (nothing is sent from a job with errors); the lock is
//! taken before the journal is read (one run at a time); the journal is replayed before anything is sent
//! (delivered and failed recipients are skipped, uncertain ones are not re-sent unless asked); and the
//! journal is closed, synced, after every worker has stopped.

mod changes;
mod finish;
mod prompt;
mod sending;
mod start;

use std::path::{Path, PathBuf};

use chrono::SubsecRound;

use super::clock::now;
use super::progress::log_line;
use super::shard::Shard;
use super::signals::Signals;
use crate::cli::SendArgs;
use crate::exit_codes;

/// Why a run could not start; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Busy(String),
}

impl StartError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Input(_) => exit_codes::INPUT_ERROR,
            StartError::Busy(_) => exit_codes::TEMPFAIL,
        }
    }
}

/// Files beside the job: `job.toml` → `job.journal.jsonl`, `job.lock`, `reports/`; shard I of N has its own
/// `job.shard-I-of-N.journal.jsonl`, `job.shard-I-of-N.lock` and `reports/shard-I-of-N/`.
pub struct JobPaths {
    pub dir: PathBuf,
    pub journal: PathBuf,
    pub lock: PathBuf,
    pub reports: PathBuf,
}

impl JobPaths {
    pub fn of(job_file: &Path) -> JobPaths {
        JobPaths::for_shard(job_file, None)
    }

    pub fn for_shard(job_file: &Path, shard: Option<Shard>) -> JobPaths {
        let dir = match job_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let stem = job_file.file_stem().map_or("job".into(), |s| s.to_string_lossy().into_owned());
        let (name, reports) = match shard {
            Some(shard) => (format!("{stem}.{}", shard.tag()), dir.join("reports").join(shard.tag())),
            None => (stem, dir.join("reports")),
        };
        JobPaths {
            journal: dir.join(format!("{name}.journal.jsonl")),
            lock: dir.join(format!("{name}.lock")),
            reports,
            dir,
        }
    }
}

/// One runtime thread for the workers and the recorder (the producer and the journal writer have their own):
/// on 2 cores against the lab's sink it spent ~7 % less CPU per message than the multi-thread runtime, with
/// ~15 % fewer context switches (no wakeups between runtime threads), and as much under TLS. Nothing in
/// `send` needs a second runtime thread: blocking work goes to `spawn_blocking`.
pub fn send(args: &SendArgs) -> u8 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            log_line(&format!("mailshot: {e}"));
            e.exit_code()
        }
    }
}

async fn run(args: &SendArgs) -> Result<u8, StartError> {
    let signals = Signals::install().map_err(|e| StartError::Input(format!("cannot watch for signals: {e}")))?;
    let started = now().trunc_subsecs(0);
    let ready = start::start(args, started).await?;
    let sent = sending::send(args, ready, signals, started).await;
    Ok(finish::finish(sent, args.verbosity.quiet))
}

pub use super::pending::uncertain_bound;
pub use start::repair_hint;
