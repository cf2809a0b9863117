//! `mailshot send`: one run of a job, from the check to the exit code.
//!
//! Order matters for safety: the check runs first (nothing is sent from a job with errors); the lock is
//! taken before the journal is read (one run at a time); the journal is replayed before anything is sent
//! (delivered and failed recipients are skipped, uncertain ones are not re-sent unless asked); and the
//! journal is closed, synced, after every worker has stopped.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::clock::now;
use super::journal::{Journal, JournalWriter, Record, Replayed, set_aside_names};
use super::outcome::Status;
use super::pool::Pool;
use super::producer::{self, Plan, Produced};
use super::progress::{Mode, Progress, Start};
use super::queue::WorkQueue;
use super::recorder::{self, Recorded};
use super::report::{Report, ReportError};
use super::signals::Signals;
use super::throttle::Throttle;
use super::work::{Event, Work};
use super::worker::{self, Shared, Stop};
use super::{evidence, fingerprint, lock};
use crate::check::{self, Reporter};
use crate::cli::SendArgs;
use crate::config::numbers;
use crate::config::rate::Pace;
use crate::exit_codes;
use crate::jobdef::Job;
use crate::output::{err_line, out_line};
use crate::smtp;

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

/// Files beside the job: `job.toml` → `job.journal.jsonl`, `job.lock`, `reports/`.
pub struct JobPaths {
    pub dir: PathBuf,
    pub journal: PathBuf,
    pub lock: PathBuf,
    pub reports: PathBuf,
}

impl JobPaths {
    pub fn of(job_file: &Path) -> JobPaths {
        let dir = match job_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let stem = job_file.file_stem().map_or("job".into(), |s| s.to_string_lossy().into_owned());
        JobPaths {
            journal: dir.join(format!("{stem}.journal.jsonl")),
            lock: dir.join(format!("{stem}.lock")),
            reports: dir.join("reports"),
            dir,
        }
    }
}

pub fn send(args: &SendArgs) -> u8 {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            e.exit_code()
        }
    }
}

async fn run(args: &SendArgs) -> Result<u8, StartError> {
    let signals = Signals::install().map_err(|e| StartError::Input(format!("cannot watch for signals: {e}")))?;
    let started = now().trunc_subsecs(0);
    let (job, total) = load_and_check(&args.job, args.verbosity.quiet, started)?;
    let paths = JobPaths::of(&args.job);
    let client =
        job.smtp.client_config(&paths.dir).map_err(|e| StartError::Input(format!("{}: {e}", args.job.display())))?;
    if let Some(warning) = job.smtp.password_file_warning(&paths.dir) {
        err_line(&format!("warning: {}: {warning}", args.job.display()));
    }
    // OAuth2 with `token_command`: the token fetched with the configuration is the first; later sessions
    // get fresh ones (pool).
    let tokens = job.smtp.token_source(&paths.dir).zip(client.credentials.as_ref().map(|c| c.secret.clone()));
    let mut connector = smtp::Connector::new(client).map_err(|e| StartError::Input(format!("[smtp]: {e}")))?;
    let pace = pace(args, &job)?;
    let connections = connections(args, &job)?;
    confirm(args, &job, total, connections)?;
    // One run at a time, and only then the journal: what it says is this run's to act on.
    let _lock = lock::acquire(&paths.lock).map_err(|e| match e {
        lock::LockError::Held { .. } => StartError::Busy(e.to_string()),
        lock::LockError::Io { .. } => StartError::Input(e.to_string()),
    })?;
    if args.fresh {
        // Reports first: stopped between the two, the old campaign simply goes on (its journal is there),
        // never a new journal facing the old campaign's reports.
        set_aside_reports(&paths.reports, started)?;
        set_aside(&paths.journal, started)?;
    }
    let (journal, writer, replayed) =
        Journal::open(&paths.journal, started).map_err(|e| StartError::Input(e.to_string()))?;
    let print = fingerprint::of(&args.job).map_err(StartError::Input)?;
    check_changes(&replayed, &print, args.accept_changes)?;
    let missing = evidence::check(&paths.reports, &replayed)
        .map_err(|e| StartError::Input(format!("{}: {e}", paths.reports.display())))?;
    if !missing.is_empty() {
        return Err(StartError::Input(missing.refusal(&args.job)));
    }
    let (limit, by_budget) = if job.rate.max_per_day.is_some() {
        limit(args, &job, sent_last_24h(&paths, &replayed, started))
    } else {
        limit(args, &job, 0)
    };

    let run_number = replayed.last_run.as_ref().map_or(1, |r| r.run + 1);
    let record = Record::Run { run: run_number, started, pid: std::process::id(), fingerprint: print };
    // Durable before anything is sent: a disk that is already full stops the run here, as a temporary
    // condition (75: run again once there is room), not as bad input.
    journal.commit(record).await.map_err(|e| match e.is_disk_full() {
        true => StartError::Busy(format!("{e}: the disk is full; nothing was sent")),
        false => StartError::Input(e.to_string()),
    })?;
    let report = Report::create(&paths.reports, now()).map_err(|e| StartError::Input(e.to_string()))?;
    let report_path = report.path().to_owned();

    let (events_tx, events_rx) = mpsc::channel(4096);
    connector.set_hints(hints_once(events_tx.clone()));
    let mut pool = Pool::new(connector, job.smtp.max_messages_per_connection);
    if let Some((source, first)) = tokens {
        pool = pool.with_tokens(source, first);
    }
    let pool = Arc::new(pool);
    let mode = Mode::detect(args.verbosity.quiet);
    let start = Start::of(&args.job, &job, run_number, started, pace);
    let progress =
        Progress::new(mode, args.verbosity.verbose > 0, start, total, connections).with_sessions(pool.open_counter());
    let recorder = tokio::spawn(recorder::record(events_rx, progress, report));

    let (work_tx, work_rx) = mpsc::channel::<Work>(producer::queue_capacity(&job, connections));
    let shared = Arc::new(Shared {
        queue: WorkQueue::new(work_rx),
        throttle: Throttle::new(pace),
        events: events_tx.clone(),
        journal: Some(journal.clone()),
        pool,
        retry: job.retry.clone(),
        stop: Stop::default(),
        show_connections: mode == Mode::Bars,
        lost: Arc::default(),
    });
    let plan = Plan {
        job: Arc::new(job),
        journal: Some(Arc::new(replayed)),
        resend_uncertain: args.resend_uncertain,
        limit,
        by_budget,
        now: started,
    };
    let producer = {
        let (events, shared) = (events_tx.clone(), shared.clone());
        producer::spawn(plan, work_tx, events, shared)
    };
    let interrupted = signals.received();
    let watcher = tokio::spawn(signals.watch(shared.clone(), journal.clone()));
    let workers: JoinSet<()> = (0..connections).map(|id| worker::run(id, shared.clone())).collect();
    let mut internal = join_workers(workers, &shared).await;
    watcher.abort();
    let produced = wind_down(&shared, producer).await;
    let produced = produced.unwrap_or_else(|error| {
        shared.halt(Some(error.clone()));
        internal.get_or_insert(error);
        Produced::default()
    });
    let aborted = shared.stop.abort_reason();
    let lessons = shared.pool.lessons(connections);
    drop(shared);
    drop(events_tx);
    let recorded = recorder.await.unwrap_or_else(|e| {
        internal.get_or_insert(internal_error("the recorder", e));
        let source = std::io::Error::other("the recorder stopped (internal error): the report is incomplete");
        Recorded { tally: Default::default(), report: Err(ReportError { path: report_path.clone(), source }) }
    });
    let signal = interrupted.load(std::sync::atomic::Ordering::SeqCst);
    let code = match internal {
        Some(_) => exit_codes::SOFTWARE,
        None => exit_code(&recorded, aborted.as_deref(), signal, produced),
    };
    finish_journal(journal, writer, run_number, code, &recorded);
    report_end(&recorded, &report_path, aborted.as_deref(), &lessons);
    if produced.limited && produced.by_budget && aborted.is_none() {
        err_line("mailshot: the daily sending budget is used up; the rest is pending for a later run (exit 75)");
    }
    Ok(code)
}

/// Waits for every worker. One that panicked (a bug) stops the run as a fatal error would: the others
/// finish what they hold, and the message it held is reported from [`Lost`](super::work::Lost). Returns
/// the first such error.
async fn join_workers(mut workers: JoinSet<()>, shared: &Shared) -> Option<String> {
    let mut internal = None;
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            let error = internal_error("a connection's task", e);
            shared.halt(Some(error.clone()));
            internal.get_or_insert(error);
        }
    }
    internal
}

/// A task that panicked, in words for the person (the panic message itself was printed by the panic hook).
fn internal_error(what: &str, error: tokio::task::JoinError) -> String {
    let cause = match error.try_into_panic() {
        Ok(payload) => panic_text(payload.as_ref()),
        Err(e) => e.to_string(),
    };
    format!("internal error: {what} panicked ({cause}); this is a bug in mailshot (exit 70)")
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "no message".to_owned(),
    }
}

/// After the workers stopped: what never went out is reported as skipped, the producer is joined, and the
/// messages whose holder panicked are reported (`Err` when the producer itself panicked).
async fn wind_down(shared: &Shared, producer: std::thread::JoinHandle<Produced>) -> Result<Produced, String> {
    for mut work in shared.queue.stop() {
        // Refused for now, and the run ends before its retry: deferred, as the journal says.
        let last = work.last.take();
        let outcome =
            last.unwrap_or_else(|| work.outcome(Status::Skipped, "not sent: the run stopped before its retry"));
        let _ = shared.events.send(Event::Settled { outcome, carried: false }).await;
    }
    while let Some(work) = shared.queue.leftover().await {
        // Rendered but never taken: no journal record, pending for the next run.
        let outcome = work.outcome(Status::Skipped, "not sent: the run stopped");
        let _ = shared.events.send(Event::Settled { outcome, carried: false }).await;
    }
    let joined = tokio::task::spawn_blocking(move || producer.join()).await.expect("joined");
    for outcome in shared.lost.take() {
        let _ = shared.events.send(Event::Settled { outcome, carried: false }).await;
    }
    joined.map_err(|payload| {
        let cause = panic_text(payload.as_ref());
        format!("internal error: the producer panicked ({cause}); this is a bug in mailshot (exit 70)")
    })
}

/// The connector's hints (a likely `security`/port mix-up) as log lines, each once per run.
fn hints_once(events: mpsc::Sender<Event>) -> smtp::HintSink {
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    Arc::new(move |hint: &str| {
        if seen.lock().expect("hint lock").insert(hint.to_owned()) {
            let _ = events.try_send(Event::Log(format!("hint: {hint}")));
        }
    })
}

/// The job and its CSV's row count (for the progress bar), after a clean check.
fn load_and_check(path: &Path, quiet: bool, now: DateTime<Utc>) -> Result<(Job, u64), StartError> {
    let mut reporter = Reporter::new(std::io::stderr().lock());
    let job = match Job::load(path) {
        Ok(job) => job,
        Err(failure) => {
            failure.problems.into_iter().for_each(|p| reporter.report(p));
            let _ = reporter.finish();
            return Err(StartError::Input(format!("{}: the job has errors; nothing was sent", path.display())));
        }
    };
    let summary = check::check_job(&job, &mut reporter, now);
    let _ = reporter.finish();
    if !summary.is_clean() {
        return Err(StartError::Input(format!(
            "{}: check found {} error(s); nothing was sent (see `mailshot check`)",
            path.display(),
            summary.errors
        )));
    }
    if !quiet {
        super::progress::log_line(&check::summary_line(&summary));
    }
    Ok((job, summary.rows))
}

/// `--fresh`: the old journal is kept under a name no earlier campaign has (hard link, then unlink, so an
/// existing file is never replaced).
fn set_aside(journal: &Path, now: DateTime<Utc>) -> Result<(), StartError> {
    if !journal.exists() {
        return Ok(());
    }
    let fail =
        |e: std::io::Error| StartError::Input(format!("{}: cannot set the old journal aside: {e}", journal.display()));
    for name in set_aside_names("", now, ".jsonl") {
        let kept = journal.with_extension(name);
        match std::fs::hard_link(journal, &kept) {
            Ok(()) => {
                std::fs::remove_file(journal).map_err(fail)?;
                super::journal::sync_dir(journal.parent().unwrap_or(Path::new("."))).map_err(fail)?;
                err_line(&format!("started a fresh campaign; the old journal is kept as {}", kept.display()));
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    unreachable!("some suffix is free")
}

/// `--fresh`: the old campaign's reports go aside with its journal (`reports-<UTC>/`, never over an earlier
/// one), so that they are not taken as evidence against the new, empty journal.
fn set_aside_reports(reports: &Path, now: DateTime<Utc>) -> Result<(), StartError> {
    if !reports.is_dir() {
        return Ok(());
    }
    let fail =
        |e: std::io::Error| StartError::Input(format!("{}: cannot set the old reports aside: {e}", reports.display()));
    let kept = set_aside_names("reports-", now, "")
        .map(|name| reports.with_file_name(name))
        .find(|kept| !kept.exists())
        .expect("some suffix is free");
    std::fs::rename(reports, &kept).map_err(fail)?;
    super::journal::sync_dir(reports.parent().unwrap_or(Path::new("."))).map_err(fail)?;
    err_line(&format!("the old reports are kept in {}", kept.display()));
    Ok(())
}

fn check_changes(replayed: &Replayed, print: &str, accept: bool) -> Result<(), StartError> {
    let Some(last) = &replayed.last_run else { return Ok(()) };
    if last.fingerprint == print || replayed.entries.is_empty() {
        return Ok(());
    }
    if accept {
        err_line("note: the message settings or templates changed since the last run; resuming as asked");
        return Ok(());
    }
    Err(StartError::Input(
        "the message settings or templates changed since the last run of this job; pass --accept-changes to \
         resume with the new ones, or --fresh to start a new campaign"
            .into(),
    ))
}

/// How many messages this run may send, and whether the daily budget (not `--limit`) is what caps it. A
/// used-up budget is not an error by itself: a job with nothing left to send still ends with 0.
fn limit(args: &SendArgs, job: &Job, sent_last_24h: u64) -> (Option<u64>, bool) {
    let budget = job.rate.max_per_day.map(|max| max.saturating_sub(sent_last_24h));
    match (args.limit, budget) {
        (Some(l), Some(left)) if left < l => (Some(left), true),
        (Some(l), _) => (Some(l), false),
        (None, Some(left)) => (Some(left), true),
        (None, None) => (None, false),
    }
}

/// Messages sent in the last 24 hours by this job: this journal and the ones `--fresh` set aside (a new
/// campaign does not reset the provider's daily limit).
fn sent_last_24h(paths: &JobPaths, replayed: &Replayed, now: DateTime<Utc>) -> u64 {
    let current = paths.journal.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = current.trim_end_matches("jsonl");
    let kept = std::fs::read_dir(&paths.dir).into_iter().flatten().flatten().filter(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name != current && name.starts_with(prefix) && name.ends_with(".jsonl")
    });
    let earlier: u64 = kept
        .filter_map(|entry| std::fs::File::open(entry.path()).ok().map(|f| (entry.path(), f)))
        .filter_map(|(path, file)| Replayed::read(file, now, &path).ok())
        .map(|r| r.sent_last_24h)
        .sum();
    replayed.sent_last_24h + earlier
}

fn pace(args: &SendArgs, job: &Job) -> Result<Option<Pace>, StartError> {
    let rate = match args.rate {
        Some(r) => match numbers::rate_rule(r) {
            Some(rule) => return Err(StartError::Input(format!("--rate {r}: {rule}"))),
            None => Some(r),
        },
        None => job.rate.messages_per_second().map_err(|e| StartError::Input(format!("[rate]: {e}")))?,
    };
    Ok(rate.map(|r| Pace::per_second(r, job.rate.burst())))
}

/// `--connections`, else `[smtp] connections` (checked with the job).
fn connections(args: &SendArgs, job: &Job) -> Result<usize, StartError> {
    let n = args.connections.unwrap_or(job.smtp.connections);
    match numbers::connections_rule(n) {
        Some(rule) => Err(StartError::Input(format!("--connections {n}: {rule}"))),
        None => Ok(n as usize),
    }
}

fn confirm(args: &SendArgs, job: &Job, total: u64, connections: usize) -> Result<(), StartError> {
    if args.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(StartError::Input("not asking for confirmation without a terminal: pass --yes to send".into()));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(
        stderr,
        "Send up to {total} messages from {} through {}:{} with {connections} connection(s)? [y/N] ",
        job.from.envelope(),
        job.smtp.server,
        job.smtp.port()
    );
    let _ = stderr.flush();
    drop(stderr);
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(StartError::Input("not confirmed; nothing was sent".into())),
    }
}

/// `signal`: the exit code a stopping signal asked for (130, 143, 129), or 0.
fn exit_code(recorded: &Recorded, aborted: Option<&str>, signal: u8, produced: Produced) -> u8 {
    let t = &recorded.tally;
    if aborted.is_some() {
        exit_codes::ABORTED
    } else if signal != 0 {
        signal
    } else if produced.limited && produced.by_budget {
        // More is waiting for tomorrow's budget: cron must hear "run again", whatever else happened.
        exit_codes::TEMPFAIL
    } else if t.failed + t.deferred + t.uncertain > 0 {
        exit_codes::PARTIAL
    } else {
        exit_codes::SUCCESS
    }
}

fn finish_journal(journal: Journal, writer: JournalWriter, run: u32, code: u8, recorded: &Recorded) {
    let t = &recorded.tally;
    let summary = format!(
        "delivered {} failed {} deferred {} uncertain {} skipped {}",
        t.delivered, t.failed, t.deferred, t.uncertain, t.skipped
    );
    let _ = journal.append(Record::RunEnd { run, ended: now(), exit_code: code, summary });
    drop(journal);
    if let Err(e) = writer.close() {
        err_line(&format!("mailshot: {e}"));
    }
}

/// After the summary: what the run learned about the server, where the report is, and why the job stopped.
/// Server text is escaped and a closed pipe is ignored (`output`): nothing here may stop the run's end.
fn report_end(recorded: &Recorded, path: &Path, aborted: Option<&str>, lessons: &[String]) {
    for lesson in lessons {
        out_line(&format!("  learned    {lesson}"));
    }
    match &recorded.report {
        Ok(_) => out_line(&format!("  report     {}", path.display())),
        Err(e) => err_line(&format!("mailshot: {e}")),
    }
    if let Some(reason) = aborted {
        err_line(&format!("mailshot: the job stopped: {reason}"));
    }
}

/// Rendered messages waiting for a worker: enough that every worker finds its next message at hand for
/// pipelining (measured against the sink with 4 connections: 16c+4 ran ~1.6× faster than 2c+4). They have
/// no journal record yet (see `pending`), so a crash leaves them pending, not uncertain.
pub fn queue_depth(connections: usize) -> usize {
    connections * 16 + 4
}

pub use super::pending::uncertain_bound;
