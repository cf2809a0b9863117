//! mailshot: batch mail-merge jobs sent through a small pool of reused, authenticated SMTP sessions.
//!
//! Data flows one way (see `ARCHITECTURE` in the README): CSV row → rendered message → rate limiter →
//! a worker's SMTP session → reply → policy → recorder. The `smtp` module is our own client, written from
//! the socket up, and knows nothing about jobs.
//!
//! # Vocabulary
//! One word per idea, in the code as in the output:
//! - **rejected**: a server's negative reply (4xx/5xx): [`smtp::Delivery::Rejected`], `AuthError::Rejected`,
//!   `ConnectError::StartTlsRejected`. The session survives it unless it was a 421.
//! - **refused**: mailshot declines before the server sees anything: a bad input, a template function,
//!   a message the server cannot take ([`smtp::Refusal`], [`smtp::Delivery::Refused`]).
//! - **delivery**: what became of one message on a live session ([`smtp::Delivery`]); a [`smtp::SessionError`]
//!   means the session is gone. **Stage** is where in a transaction (MAIL, RCPT, DATA, end of data);
//!   **phase** is which network deadline applies ([`smtp::Phase`]).
//! - **verdict** / **disposition**: the retry policy's reading of a delivery or error ([`job::policy`]):
//!   delivered, retry, failed, uncertain, or abort the job.
//! - **status**: a recipient's word for this run ([`job::settlement::Status`]: delivered, *failed* (for good),
//!   deferred, uncertain, not sent, skipped, suppressed), the report's column. A **settlement** is that status with the
//!   reply that decided it; `mailshot status` prints a [`job::status::StatusSummary`].
//! - **outcome**: the journal record of a settled attempt (`{"t":"outcome"}`, [`job::journal::Record::Outcome`]);
//!   its `status` is [`job::journal::Settled`]. A committing record with no outcome after it is *uncertain*.
//!   What the journal says of a recipient is its [`job::journal::JournalState`].
//! - **copy**: a Cc or Bcc recipient of a row's message ([`recipients::CopyRecipient`]): one more `RCPT TO`
//!   in the row's one transaction. The row's own address decides its status; a *rejected copy* is noted
//!   ([`smtp::RejectedCopy`], the report's `copies` column) and never retried on its own.
//! - **suppressed**: on a suppression list (`[recipients] exclude`), so never sent
//!   ([`recipients::Entry::Suppressed`]). A **bounce** is a delivery status notification (RFC 3464) about a
//!   recipient, read by `mailshot bounces` ([`bounces`]): *hard* (5.x.x) or *soft* (4.x.x, delayed).
//! - **plan**: what is decided before acting: [`job::producer::ProducerPlan`] (which rows to send),
//!   `smtp::transaction::TransactionPlan` (a message's MAIL parameters and grouping).

pub mod app;
pub mod bounces;
pub mod check;
pub mod cli;
pub mod config;
#[cfg(test)]
mod exhaustive;
pub mod exit_codes;
pub mod init;
pub mod input;
pub mod job;
pub mod jobdef;
pub mod message;
pub mod output;
pub mod preview;
pub mod probe;
pub mod recipients;
pub mod render;
pub mod shell;
pub mod smtp;
pub mod stop_signals;
