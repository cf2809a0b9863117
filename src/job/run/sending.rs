//! The run itself: the recorder, the producer and the workers started over one shared state, then joined,
//! and what never went out reported as not sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::start::{Kept, Started, Tokens};
use crate::cli::SendArgs;
use crate::job::pool::Pool;
use crate::job::producer::{self, Produced, ProducerPlan};
use crate::job::progress::log_line;
use crate::job::progress::{Mode, Progress, Start};
use crate::job::queue::WorkQueue;
use crate::job::recorder::{self, Recorded};
use crate::job::report::ReportError;
use crate::job::settlement::Status;
use crate::job::signals::Signals;
use crate::job::throttle::Throttle;
use crate::job::work::{Event, Work};
use crate::job::worker::{self, Stop, WorkerContext};
use crate::jobdef::Job;
use crate::smtp::{self, Connector};

/// How the sending ended, for the wind-down.
pub struct Sent {
    pub recorded: Recorded,
    pub produced: Produced,
    /// Why the job stopped (a refused login, a refused sender …), if it did.
    pub aborted: Option<String>,
    /// A bug stopped the run (a task panicked).
    pub internal: Option<String>,
    /// The exit code a stopping signal asked for (130, 143, 129), or 0.
    pub signal: u8,
    /// What the pool learned about the server, with the keys that would set it.
    pub lessons: Vec<String>,
    pub report_path: std::path::PathBuf,
    pub kept: Kept,
}

/// Sends until every recipient is settled or the run stops. `run` owns the journal handle this needs.
pub async fn send(args: &SendArgs, started: Started, signals: Signals, now: chrono::DateTime<chrono::Utc>) -> Sent {
    let Started {
        job,
        total,
        planned,
        connector,
        tokens,
        pace,
        connections,
        replayed,
        limit,
        by_budget,
        report,
        kept,
        shard,
        spool,
    } = started;
    let report_path = report.path().to_owned();
    let (events_tx, events_rx) = mpsc::channel(4096);
    let mode = Mode::detect(args.verbosity.quiet);
    let pool = pool(connector, tokens, &job, &events_tx);
    let start = Start::of(&args.job, &job, kept.run_number, now, pace);
    let progress =
        Progress::new(mode, args.verbosity.verbose > 0, start, total, connections).with_sessions(pool.open_counter());
    let recorder = tokio::spawn(recorder::record(events_rx, progress, report));
    let (work_tx, work_rx) = mpsc::channel::<Work>(producer::queue_capacity(&job, connections));
    let shared = Arc::new(WorkerContext {
        queue: WorkQueue::new(work_rx),
        throttle: Throttle::new(pace),
        events: events_tx.clone(),
        journal: Some(kept.journal.clone()),
        pool,
        retry: job.retry.clone(),
        stop: Stop::default(),
        show_connections: mode == Mode::Bars,
        lost: Arc::default(),
    });
    let resend_uncertain = args.resend_uncertain;
    let journal = Some(Arc::new(replayed));
    let plan =
        ProducerPlan { job: Arc::new(job), journal, resend_uncertain, limit, by_budget, now, shard, spool, planned };
    let producer = producer::spawn(plan, work_tx, events_tx.clone(), shared.clone());
    let interrupted: Arc<AtomicU8> = signals.received();
    let watcher = tokio::spawn(signals.watch(shared.clone(), kept.journal.clone()));
    let workers: JoinSet<()> = (0..connections).map(|id| worker::run(id, shared.clone())).collect();
    let mut internal = join_workers(workers, &shared).await;
    watcher.abort();
    let produced = wind_down(&shared, producer).await.unwrap_or_else(|error| {
        shared.halt(Some(error.clone()));
        internal.get_or_insert(error);
        Produced::default()
    });
    let (aborted, lessons) = (shared.stop.abort_reason(), shared.pool.lessons(connections));
    if let Some(reason) = &aborted {
        // The cause before the counts (the recorder prints the summary once every sender is gone).
        lead_with(mode, &shared.events, reason).await;
    }
    drop((shared, events_tx));
    let recorded = recorded(recorder, &mut internal, &report_path).await;
    let signal = interrupted.load(Ordering::SeqCst);
    Sent { recorded, produced, aborted, internal, signal, lessons, report_path, kept }
}

/// The pool of sessions, its connector's hints going to the log.
fn pool(mut connector: Connector, tokens: Option<Tokens>, job: &Job, events: &mpsc::Sender<Event>) -> Arc<Pool> {
    connector.set_hints(hints_once(events.clone()));
    let pool = Pool::new(connector, job.smtp.max_messages_per_connection);
    Arc::new(match tokens {
        Some((source, first)) => pool.with_tokens(source, first),
        None => pool,
    })
}

/// The recorder's tallies and report, once every event is in; a recorder that panicked is a bug (exit 70).
async fn recorded(
    recorder: tokio::task::JoinHandle<Recorded>,
    internal: &mut Option<String>,
    report_path: &std::path::Path,
) -> Recorded {
    recorder.await.unwrap_or_else(|e| {
        internal.get_or_insert(internal_error("the recorder", e));
        let source = std::io::Error::other("the recorder stopped (internal error): the report is incomplete");
        let report = Err(ReportError { path: report_path.to_owned(), source });
        Recorded { tally: Default::default(), report, undelivered: Default::default() }
    })
}

/// The reason the job stopped, printed before the summary: through the recorder (which owns the terminal)
/// while bars or log lines are shown, directly under `-q` (no bars to tear, and cron must hear it).
async fn lead_with(mode: Mode, events: &mpsc::Sender<Event>, reason: &str) {
    let line = format!("mailshot: the job stopped: {reason}");
    match mode {
        Mode::Quiet => log_line(&line),
        Mode::Bars | Mode::Plain => {
            let _ = events.send(Event::Log(line)).await;
        }
    }
}

/// Waits for every worker. One that panicked (a bug) stops the run as a fatal error would: the others
/// finish what they hold, and the message it held is reported from [`Lost`](crate::job::work::Lost). Returns
/// the first such error.
async fn join_workers(mut workers: JoinSet<()>, shared: &WorkerContext) -> Option<String> {
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

/// After the workers stopped: what never went out is reported as not sent, the producer is joined, and the
/// messages whose holder panicked are reported (`Err` when the producer itself panicked).
async fn wind_down(shared: &WorkerContext, producer: std::thread::JoinHandle<Produced>) -> Result<Produced, String> {
    for mut work in shared.queue.stop() {
        // Refused for now, and the run ends before its retry: deferred, as the journal says.
        let last = work.last.take();
        let settlement =
            last.unwrap_or_else(|| work.settlement(Status::NotSent, "not sent: the run stopped before its retry"));
        let _ = shared.events.send(Event::Settled { settlement, carried: false }).await;
    }
    while let Some(work) = shared.queue.leftover().await {
        // Rendered but never taken: no journal record, pending for the next run.
        let settlement = work.settlement(Status::NotSent, "not sent: the run stopped");
        let _ = shared.events.send(Event::Settled { settlement, carried: false }).await;
    }
    let joined = tokio::task::spawn_blocking(move || producer.join()).await.expect("joined");
    for settlement in shared.lost.take() {
        let _ = shared.events.send(Event::Settled { settlement, carried: false }).await;
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
