//! Streams the CSV on its own thread, decides per recipient what this run does (send, carry an earlier
//! outcome, skip), renders the ones to send and hands them to the workers through a bounded channel, so
//! memory stays flat and the network tasks never wait on a render.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc;

use super::journal::{Replayed, Settled, State};
use super::outcome::{Outcome, Status};
use super::work::{Event, Lost, Work};
use super::worker::Shared;
use crate::jobdef::Job;
use crate::recipients::{Entry, Recipient};
use crate::smtp;

pub struct Plan {
    pub job: Arc<Job>,
    pub journal: Option<Arc<Replayed>>,
    pub resend_uncertain: bool,
    /// At most this many messages go out in this run (`--limit`, the daily budget).
    pub limit: Option<u64>,
    /// The limit is the daily budget (the rest waits for tomorrow), not `--limit`.
    pub by_budget: bool,
    pub now: DateTime<Utc>,
}

/// How the production ended.
#[derive(Debug, Default, Clone, Copy)]
pub struct Produced {
    pub sent: u64,
    /// The limit left recipients pending.
    pub limited: bool,
    pub by_budget: bool,
}

pub fn produce(plan: Plan, work: mpsc::Sender<Work>, events: mpsc::Sender<Event>, shared: Arc<Shared>) -> Produced {
    let mut produced = Produced { by_budget: plan.by_budget, ..Produced::default() };
    let limit_reason = if plan.by_budget { "the daily budget is used up" } else { "--limit reached" };
    let reader = match plan.job.recipients() {
        Ok(reader) => reader,
        Err(problems) => {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let _ = events.blocking_send(Event::Log(format!("cannot read the recipients: {}", text.join("; "))));
            return produced;
        }
    };
    for entry in reader {
        let settle = |outcome, carried| events.blocking_send(Event::Settled { outcome, carried }).is_ok();
        let ok = match entry {
            Err(error) => settle(bare(error.row, "", Status::Skipped, format!("not sent: {error}")), false),
            Ok(Entry::Duplicate { row, first_row, address }) => {
                settle(bare(row, &address, Status::Skipped, format!("duplicate of row {first_row}, sent once")), false)
            }
            Ok(Entry::Recipient(recipient)) => match decide(&plan, &recipient) {
                Decision::Carry(status) => {
                    let text = format!("{status} in an earlier run");
                    settle(bare(recipient.row, &recipient.mailbox.envelope(), status, text), true)
                }
                Decision::Send(_) if shared.stop.is_set() => settle(
                    bare(recipient.row, &recipient.mailbox.envelope(), Status::Skipped, "not sent: the run stopped"),
                    false,
                ),
                Decision::Send(_) if plan.limit.is_some_and(|l| produced.sent >= l) => {
                    produced.limited = true;
                    let text = format!("not sent: {limit_reason}");
                    settle(bare(recipient.row, &recipient.mailbox.envelope(), Status::Skipped, text), false)
                }
                Decision::Send(date) => match render(&plan.job, &recipient, date, &shared.lost) {
                    Ok(item) => {
                        produced.sent += 1;
                        work.blocking_send(item).is_ok()
                    }
                    Err(text) => {
                        settle(bare(recipient.row, &recipient.mailbox.envelope(), Status::Failed, text), false)
                    }
                },
            },
        };
        if !ok {
            break;
        }
    }
    produced
}

enum Decision {
    Carry(Status),
    /// Send, with this Date (the journal's, for a retry, so the bytes are the same).
    Send(DateTime<Utc>),
}

fn decide(plan: &Plan, recipient: &Recipient) -> Decision {
    let Some(entry) = plan.journal.as_ref().and_then(|j| j.get(&recipient.key)) else {
        return Decision::Send(plan.now);
    };
    let earlier = Utc.timestamp_opt(entry.date, 0).single().unwrap_or(plan.now);
    match entry.state {
        State::Settled(Settled::Delivered) => Decision::Carry(Status::Delivered),
        State::Settled(Settled::Failed) => Decision::Carry(Status::Failed),
        State::Uncertain if !plan.resend_uncertain => Decision::Carry(Status::Uncertain),
        State::Uncertain | State::Released | State::Settled(Settled::Deferred) => Decision::Send(earlier),
    }
}

fn render(job: &Job, recipient: &Recipient, date: DateTime<Utc>, lost: &Arc<Lost>) -> Result<Work, String> {
    let message = job.render(recipient, date).map_err(|e| format!("not sent: {e}"))?;
    let e = &message.envelope;
    let envelope = smtp::Envelope::new(e.from.clone(), e.to.iter().cloned()).map_err(|e| format!("not sent: {e}"))?;
    let envelope = if e.smtputf8 { envelope.with_smtputf8() } else { envelope };
    let lost = lost.clone();
    Ok(Work { message, envelope, date, attempts: 0, first_attempt: None, last: None, committing: false, lost })
}

fn bare(row: u64, email: &str, status: Status, reply: impl Into<String>) -> Outcome {
    Outcome {
        row,
        email: email.to_owned(),
        status,
        code: None,
        enhanced: None,
        reply: reply.into(),
        attempts: 0,
        message_id: String::new(),
        first_attempt: None,
        last_attempt: None,
    }
}
