//! How a run hears that it should stop: Ctrl-C (SIGINT), SIGTERM (`timeout`, systemd, Kubernetes) and SIGHUP
//! (a closed terminal) all mean the same: stop taking new messages, finish those in flight, write the
//! summary, the report and the run-end record, and exit with 128 + the signal's number (130, 143, 129). A
//! second signal quits at once, after the journal is flushed and synced (so what was recorded stays).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::journal::Journal;
use super::work::Event;
use super::worker::WorkerContext;
use crate::stop_signals::StopSignals;

/// How long a second signal waits for the journal's last sync before quitting anyway.
const LAST_SYNC: Duration = Duration::from_secs(2);

/// The handlers, installed when a run starts so that no signal meets the default action mid-run.
pub struct Signals {
    signals: StopSignals,
    /// The exit code of the first signal, 0 until one came.
    received: Arc<AtomicU8>,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals { signals: StopSignals::install()?, received: Arc::new(AtomicU8::new(0)) })
    }

    /// The exit code the first signal asks for (130, 143, 129), if one came.
    pub fn received(&self) -> Arc<AtomicU8> {
        self.received.clone()
    }

    /// First signal: stop the run gently. Second: sync the journal and exit at once.
    pub async fn watch(mut self, shared: Arc<WorkerContext>, journal: Journal) {
        let (code, name) = self.signals.next().await;
        self.received.store(code, Ordering::SeqCst);
        let line = format!("{name}: finishing the messages in flight (a second signal quits at once)");
        let _ = shared.events.try_send(Event::Log(line));
        shared.halt(None);
        let (_, again) = self.signals.next().await;
        let which = if again == name { format!("{name} twice") } else { format!("{again} after {name}") };
        crate::job::progress::log_line(&format!("mailshot: {which}, quitting now (the journal is synced first)"));
        let _ = tokio::time::timeout(LAST_SYNC, journal.finish_now()).await;
        std::process::exit(i32::from(code));
    }
}
