//! One mail transaction before any I/O (RFC 5321 §3.3): its commands in order, what is decided about a
//! message before a byte is written (size, 8-bit, SMTPUTF8, MAIL parameters, grouping), and what a reply
//! means at each stage. Sans-IO, so the session's state machine only sequences these.

use super::capabilities::Capabilities;
use super::command::{Command, MailParams};
use super::data;
use super::delivery::{Refusal, Stage};
use super::envelope::Envelope;
use super::phase::Phase;
use super::reply::{Reply, Severity};

/// One message to send: its envelope and its body as built (any line ends; canonicalised on the wire).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub envelope: &'a Envelope,
    pub body: &'a [u8],
}

/// What a reply means at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Judgement {
    /// 2xx (354 to DATA): go on.
    Wanted,
    /// 4xx/5xx: this transaction is refused, the session lives.
    Rejected,
    /// 421: the server is closing the session.
    Closing,
    /// Anything else (a 3xx to MAIL, a 2xx to DATA): the session cannot be trusted any more.
    Unexpected,
}

pub(super) fn judge(stage: Stage, reply: &Reply) -> Judgement {
    let wanted = if stage == Stage::Data { reply.code() == 354 } else { reply.is_positive() };
    match reply.severity() {
        _ if wanted => Judgement::Wanted,
        _ if reply.code() == 421 => Judgement::Closing,
        Severity::Transient | Severity::Permanent => Judgement::Rejected,
        Severity::Positive | Severity::Intermediate => Judgement::Unexpected,
    }
}

/// A refusal of a command that was written behind a final dot, before the dot's reply, meaning "don't do
/// that": Haraka answers `503 5.5.0 Bad sequence of commands - pipelined after end of DATA` to each one (an
/// SMTP-smuggling defence). Right after a dot and a RSET nothing else explains a 503.
pub(super) fn rejects_pipelining(reply: &Reply) -> bool {
    let says_so = || reply.lines().iter().any(|l| l.to_ascii_lowercase().contains("pipelin"));
    reply.severity() == Severity::Permanent && (reply.code() == 503 || says_so())
}

/// A transaction's commands in order, with the stage and deadline of each reply.
pub(super) fn commands(
    env: &Envelope,
    params: MailParams,
    data: bool,
) -> impl Iterator<Item = (Stage, Command<'_>, Phase)> {
    let mail = (Stage::Mail, Command::Mail { from: env.from(), params }, Phase::Command);
    let rcpt = env.to().iter().map(|to| (Stage::Rcpt, Command::Rcpt { to }, Phase::Command));
    std::iter::once(mail).chain(rcpt).chain(data.then_some((Stage::Data, Command::Data, Phase::Data)))
}

/// Walks alongside [`commands`]: which `RCPT TO` is for a copy (see [`Envelope::with_copies`]), whose
/// rejection is noted instead of ending the transaction.
pub(super) struct Copies<'a> {
    envelope: &'a Envelope,
    next: usize,
}

impl<'a> Copies<'a> {
    pub fn of(envelope: &'a Envelope) -> Self {
        Copies { envelope, next: 0 }
    }

    /// Called once per command, in order: the copy's address when this command is a copy's `RCPT TO`.
    pub fn copy_at(&mut self, stage: Stage) -> Option<&'a str> {
        if stage != Stage::Rcpt {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let envelope = self.envelope;
        envelope.is_copy(index).then(|| envelope.to()[index].as_str())
    }
}

/// What is decided about a message before any of its commands is written.
pub(super) struct TransactionPlan {
    pub params: MailParams,
    pub wire_len: usize,
    /// DATA goes in the same group as MAIL and RCPT (pipelining, one recipient).
    pub grouped_data: bool,
}

impl TransactionPlan {
    /// Size, 8-bit and SMTPUTF8 checks against what the server offered (RFC 1870 §6, RFC 6152 §3,
    /// RFC 6531 §3.4), and the MAIL parameters. `pipelining`: commands are grouped on this session.
    ///
    /// Envelopes with several recipients keep `DATA` out of the group: once `DATA` got `354` the only way
    /// out is a dot, which would deliver an empty message to the recipients that were accepted, so `DATA`
    /// waits until every `RCPT` was answered (one more round trip): all or nothing for decisive recipients,
    /// and a copy's rejection is known before the data goes out.
    pub fn new(
        Message { envelope, body }: Message<'_>,
        caps: &Capabilities,
        pipelining: bool,
    ) -> Result<TransactionPlan, Refusal> {
        let wire_len = data::wire_len(body);
        let size = (wire_len as u64).saturating_sub(3); // RFC 1870 counts the data without `.` CRLF
        let eight_bit = data::is_eight_bit(body);
        match caps.size_limit() {
            Some(limit) if size > limit => return Err(Refusal::TooLarge { size, limit }),
            _ if envelope.smtputf8() && !caps.smtputf8 => return Err(Refusal::SmtpUtf8NotOffered),
            _ if eight_bit && !caps.eight_bit_mime => return Err(Refusal::EightBitNotOffered),
            _ => {}
        }
        let params = MailParams { size: caps.size.map(|_| size), eight_bit, smtputf8: envelope.smtputf8() };
        let grouped_data = pipelining && envelope.to().len() == 1;
        Ok(TransactionPlan { params, wire_len, grouped_data })
    }
}
