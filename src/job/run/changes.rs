//! The refusal to resume a campaign whose messages would now differ from the ones already sent, naming what
//! changed (a `job.toml` key or a template) so that the person can undo it or accept it knowingly.

use std::path::Path;

use super::StartError;
use crate::job::fingerprint::{self, Inputs};
use crate::job::journal::Replayed;
use crate::job::progress::log_line;

pub fn check(replayed: &Replayed, now: &Inputs, job_file: &Path, accept: bool) -> Result<(), StartError> {
    let Some(last) = &replayed.last_run else { return Ok(()) };
    if last.fingerprint == now.fingerprint || replayed.entries.is_empty() {
        return Ok(());
    }
    let what = match &last.inputs {
        Some(before) => match fingerprint::changed(before, now, job_file) {
            changed if changed.is_empty() => "the message settings or templates".to_owned(),
            changed => changed.join(", "),
        },
        None => "the message settings or templates (the journal, written by an older mailshot, keeps one digest \
                 for all of them and cannot tell which)"
            .to_owned(),
    };
    if accept {
        log_line(&format!("note: {what} changed since the last run; resuming as asked"));
        return Ok(());
    }
    Err(StartError::Input(format!(
        "{what} changed since the last run of this job; pass --accept-changes to resume with the new ones, or \
         --fresh to start a new campaign"
    )))
}
