//! What travels between the producer, the workers and the recorder.

use chrono::{DateTime, Utc};

use super::clock::now;

use super::outcome::{Outcome, Status};
use crate::message::OutgoingMessage;
use crate::smtp;

/// One message on its way: rendered once, retried as the same bytes.
#[derive(Debug)]
pub struct Work {
    pub message: OutgoingMessage,
    pub envelope: smtp::Envelope,
    /// The Date the message was rendered with (kept in the journal so a later retry is byte-identical).
    pub date: DateTime<Utc>,
    pub attempts: u32,
    pub first_attempt: Option<DateTime<Utc>>,
    /// How the last attempt ended, while a retry waits: what the report says if the retry never comes.
    pub last: Option<Outcome>,
    /// This message's bytes, counted against `[limits] queue_bytes` until it is dropped.
    pub charge: Option<super::producer::Charge>,
}

impl Work {
    pub fn email(&self) -> &str {
        self.message.envelope.to.first().map_or("", String::as_str)
    }

    /// An outcome for this message with no server reply behind it.
    pub fn outcome(&self, status: Status, reply: impl Into<String>) -> Outcome {
        Outcome {
            row: self.message.row,
            email: self.email().to_owned(),
            status,
            code: None,
            enhanced: None,
            reply: reply.into(),
            attempts: self.attempts,
            message_id: self.message.message_id.clone(),
            first_attempt: self.first_attempt,
            last_attempt: self.first_attempt.map(|_| now()),
        }
    }
}

/// What the recorder hears about.
#[derive(Debug)]
pub enum Event {
    /// A worker's connection changed state (for its progress line).
    Connection { worker: usize, state: String },
    /// A recipient is settled for this run. `carried`: settled in an earlier run, nothing done now.
    Settled { outcome: Outcome, carried: bool },
    /// A line for the person (through the one terminal owner).
    Log(String),
}
