//! The wind-down: the exit code, the journal closed with the run-end record, and what follows the summary
//! (lessons about the server, the report's path, `-q`'s list of recipients not delivered).

use std::path::Path;

use super::sending::Sent;
use super::start::Kept;
use crate::exit_codes;
use crate::job::clock::now;
use crate::job::journal::Record;
use crate::job::progress::log_line;
use crate::job::recorder::Recorded;
use crate::job::settlement::Tally;
use crate::output::out_line;

/// Closes the run and returns its exit code.
pub fn finish(sent: Sent, quiet: bool) -> u8 {
    let code = match &sent.internal {
        Some(_) => exit_codes::SOFTWARE,
        None => exit_code(&sent),
    };
    let Sent { recorded, produced, aborted, lessons, report_path, kept, .. } = sent;
    close_journal(kept, code, &recorded.tally);
    for lesson in &lessons {
        out_line(&format!("  learned    {lesson}"));
    }
    report_line(&recorded, &report_path);
    if quiet {
        recorded.undelivered.lines(&report_path).iter().for_each(|line| out_line(line));
    }
    if produced.limited && produced.by_budget && aborted.is_none() {
        log_line("mailshot: the daily sending budget is used up; the rest is pending for a later run (exit 75)");
    }
    code
}

fn exit_code(sent: &Sent) -> u8 {
    let t = &sent.recorded.tally;
    if sent.aborted.is_some() {
        exit_codes::ABORTED
    } else if sent.signal != 0 {
        sent.signal
    } else if sent.produced.limited && sent.produced.by_budget {
        // More is waiting for tomorrow's budget: cron must hear "run again", whatever else happened.
        exit_codes::TEMPFAIL
    } else if t.failed + t.deferred + t.uncertain + t.copies_rejected > 0 {
        exit_codes::PARTIAL
    } else {
        exit_codes::SUCCESS
    }
}

/// The run-end record, then the journal synced and closed (every other handle is gone by now).
fn close_journal(kept: Kept, code: u8, t: &Tally) {
    let summary = format!(
        "delivered {} failed {} deferred {} uncertain {} not sent {} skipped {} suppressed {}",
        t.delivered, t.failed, t.deferred, t.uncertain, t.not_sent, t.skipped, t.suppressed
    );
    let Kept { lock, journal, writer, run_number: run } = kept;
    let _ = journal.append(Record::RunEnd { run, ended: now(), exit_code: code, summary, bounce: None });
    drop(journal);
    if let Err(e) = writer.close() {
        log_line(&format!("mailshot: {e}"));
    }
    drop(lock);
}

/// Where the report is. Server text is escaped and a closed pipe is ignored (`output`): nothing here may
/// stop the run's end.
fn report_line(recorded: &Recorded, path: &Path) {
    match &recorded.report {
        Ok(_) => out_line(&format!("  report     {}", path.display())),
        Err(e) => log_line(&format!("mailshot: {e}")),
    }
}
