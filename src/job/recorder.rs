//! The one task that owns the report, the progress display and the tallies; everyone else sends it events.

use std::path::PathBuf;

use tokio::sync::mpsc;

use super::progress::Progress;
use super::report::{Report, ReportError};
use super::settlement::Tally;
use super::undelivered::Undelivered;
use super::work::Event;

pub struct Recorded {
    pub tally: Tally,
    pub report: Result<PathBuf, ReportError>,
    /// This run's recipients not delivered, for `-q`.
    pub undelivered: Undelivered,
}

pub async fn record(mut events: mpsc::Receiver<Event>, mut progress: Progress, mut report: Report) -> Recorded {
    let mut error = None;
    let mut undelivered = Undelivered::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = tick.tick() => { progress.tick(); continue; }
        };
        let Some(event) = event else { break };
        match event {
            Event::Connection { worker, state } => progress.connection(worker, state),
            Event::Log(line) => progress.log(&line),
            Event::Planned(plan) => progress.planned(plan),
            Event::Retrying(retry) => progress.retrying(retry),
            Event::Settled { settlement, carried: was_carried } => {
                if let Err(e) = report.write(&settlement) {
                    error.get_or_insert(e);
                }
                if was_carried {
                    progress.carried(&settlement);
                } else {
                    undelivered.note(&settlement);
                    progress.settled(&settlement);
                }
            }
        }
    }
    let tally = progress.finish();
    let report = match error {
        Some(e) => Err(e),
        None => report.finish(),
    };
    Recorded { tally, report, undelivered }
}
