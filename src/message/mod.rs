//! MIME: one recipient's rendered values → the exact bytes that go on the wire (CRLF, before dot-stuffing).
//!
//! mail-builder does the encoding (RFC 2047 words for names and subjects, RFC 2231 for file names,
//! quoted-printable or base64 so no line exceeds 78/998 octets), except for a subject, header or display
//! name that holds `=?`: mail-builder writes such ASCII raw, and readers would decode it, so those are
//! encoded here (`headers::encoded_words`). We build the part tree ourselves only to
//! give each multipart a deterministic boundary (see `ids`). Structure: text → `text/plain`; text + html →
//! `multipart/alternative`; with attachments → `multipart/mixed` around it. A row's Cc copies go in one `Cc`
//! header; its Bcc copies only in the envelope: no `Bcc` header is ever written.

pub mod attachment;
pub mod headers;
pub mod ids;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use mail_builder::MessageBuilder;
use mail_builder::headers::HeaderType;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::url::URL;
use mail_builder::mime::{BodyPart, MimePart};

pub use attachment::{Attachment, AttachmentDir, AttachmentError, OwnFiles};
pub use ids::MessageIds;

use crate::recipients::{CopyKind, CopyRecipient, Mailbox};
use crate::render::Rendered;

/// What `MAIL FROM`/`RCPT TO` need: ASCII (A-label) addresses unless SMTPUTF8 is needed anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    /// The row's own address: it alone decides whether the message goes out.
    pub to: Vec<String>,
    /// Copies, `RCPT TO` after `to` in this order: Cc (also in the header), then Bcc (only here).
    pub copies: Vec<EnvelopeCopy>,
    /// A non-ASCII local part in `from` or `to`: the server must offer SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// The bytes contain octets ≥ 0x80 (only with SMTPUTF8 headers): `BODY=8BITMIME` is needed (RFC 6152).
    pub eight_bit: bool,
}

/// One copy's envelope address, and whether the headers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeCopy {
    pub kind: CopyKind,
    pub address: String,
}

/// One message ready for a session: the envelope and the exact bytes, deterministic for a given Date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The CSV line number of the recipient.
    pub row: u64,
    /// The recipient key (the `key` column, or the case-folded address).
    pub key: String,
    pub envelope: Envelope,
    /// CRLF line ends, every line ≤ 998 octets; dot-stuffing is the SMTP layer's job.
    pub bytes: Vec<u8>,
    /// Without angle brackets, e.g. `3f1c…@example.com`.
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("{0}")]
    Unsubscribe(String),
}

/// Everything one message is made of.
#[derive(Debug)]
pub struct Draft<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to: &'a Mailbox,
    /// The row's copies: the Cc ones are written in a `Cc` header, the Bcc ones nowhere.
    pub copies: &'a [CopyRecipient],
    pub rendered: &'a Rendered,
    pub attachments: Vec<Attachment>,
    pub message_id: &'a str,
    /// Passed in, never read from the clock here: a retry replays the same Date and gets the same bytes.
    pub date: DateTime<Utc>,
}

impl Draft<'_> {
    pub fn build(self) -> Result<Vec<u8>, MessageError> {
        let r = self.rendered;
        let mut builder = MessageBuilder::new()
            .header("From", addresses("From", &[self.from]))
            .header("To", addresses("To", &[self.to]))
            .header("Subject", text("Subject", &r.subject))
            .date(Date::new(self.date.timestamp()))
            .message_id(self.message_id);
        let cc: Vec<&Mailbox> = self.copies.iter().filter(|c| c.kind == CopyKind::Cc).map(|c| &c.mailbox).collect();
        if !cc.is_empty() {
            builder = builder.header("Cc", addresses("Cc", &cc));
        }
        if let Some(reply_to) = self.reply_to {
            builder = builder.header("Reply-To", addresses("Reply-To", &[reply_to]));
        }
        for (name, value) in &r.headers {
            builder = builder.header(name.as_str(), text(name, value));
        }
        if let Some(url) = &r.list_unsubscribe {
            builder = builder.header("List-Unsubscribe", URL::new(url.as_str()));
            if headers::check_unsubscribe(url).map_err(MessageError::Unsubscribe)? == headers::Unsubscribe::OneClick {
                builder = builder.header("List-Unsubscribe-Post", Raw::new("List-Unsubscribe=One-Click"));
            }
        }
        let body = body(self.message_id, r, self.attachments);
        Ok(builder.body(body).write_to_vec().unwrap_or_default())
    }
}

/// The envelope for a message from `from` to `to` and its `copies`, whose bytes are `bytes`.
pub fn envelope(from: &Mailbox, to: &Mailbox, copies: &[CopyRecipient], bytes: &[u8]) -> Envelope {
    let copy = |c: &CopyRecipient| EnvelopeCopy { kind: c.kind, address: c.mailbox.envelope() };
    Envelope {
        from: from.envelope(),
        to: vec![to.envelope()],
        copies: copies.iter().map(copy).collect(),
        smtputf8: from.needs_smtputf8() || to.needs_smtputf8() || copies.iter().any(|c| c.mailbox.needs_smtputf8()),
        eight_bit: !bytes.is_ascii(),
    }
}

/// An unstructured text (the subject, a job's header) as mail-builder writes it, unless a reader would
/// decode part of it (`headers::looks_encoded`): then all of it as encoded words.
fn text<'x>(name: &str, value: &'x str) -> HeaderType<'x> {
    match headers::looks_encoded(value) {
        true => Raw::new(headers::encoded_words(value, name.len() + 2)).into(),
        false => Text::new(value).into(),
    }
}

/// Mailboxes as mail-builder writes them, unless a display name would be decoded by a reader
/// (`headers::looks_encoded`): then every name as encoded words, which mail-builder cannot be asked for.
fn addresses(name: &str, mailboxes: &[&Mailbox]) -> HeaderType<'static> {
    if mailboxes.iter().any(|m| m.name.as_deref().is_some_and(headers::looks_encoded)) {
        // Only the first word cannot fold; a later address's words fold before them as needed.
        let column = name.len() + 2;
        let one = |m: &&Mailbox| match &m.name {
            Some(name) => format!("{} <{}>", headers::encoded_words(name, column), m.header_address()),
            None => format!("<{}>", m.header_address()),
        };
        return Raw::new(mailboxes.iter().map(one).collect::<Vec<_>>().join(", ")).into();
    }
    match mailboxes {
        [one] => address(one).into(),
        many => Address::new_list(many.iter().map(|m| address(m)).collect()).into(),
    }
}

fn address(mailbox: &Mailbox) -> Address<'static> {
    Address::new_address(mailbox.name.clone(), mailbox.header_address())
}

/// Line ends in a rendered body become LF (mail-builder then writes CRLF): a bare CR never reaches the wire.
/// A NUL (from a CSV cell) becomes U+FFFD: no MIME encoding may carry it raw (RFC 2045 §2.7), and it means
/// nothing in a text.
fn normalize(text: &str) -> String {
    // One SIMD search for both: nearly every text has neither.
    if memchr::memchr2(b'\0', b'\r', text.as_bytes()).is_none() {
        return text.to_owned();
    }
    let text = if text.contains('\0') { Cow::Owned(text.replace('\0', "\u{fffd}")) } else { Cow::Borrowed(text) };
    if text.contains('\r') { text.replace("\r\n", "\n").replace('\r', "\n") } else { text.into_owned() }
}

fn body(message_id: &str, r: &Rendered, attachments: Vec<Attachment>) -> MimePart<'static> {
    let text = r.text.as_deref().map(normalize);
    let html = r.html.as_deref().map(normalize);
    let (alternative, mixed) = boundaries(message_id, text.as_deref(), html.as_deref(), &attachments);
    let leaf = |kind: &'static str, s: String| MimePart::new(kind, BodyPart::Text(Cow::Owned(s)));
    let main = match (text, html, alternative) {
        (Some(t), Some(h), Some(b)) => {
            MimePart::new(boundary_part("multipart/alternative", b), vec![leaf("text/plain", t), leaf("text/html", h)])
        }
        (None, Some(h), _) => leaf("text/html", h),
        (t, _, _) => leaf("text/plain", t.unwrap_or_default()),
    };
    let Some(mixed) = mixed else { return main };
    let mut parts = vec![main];
    parts.extend(attachments.into_iter().map(|a| {
        MimePart::new(ContentType::new(a.content_type), BodyPart::Binary(Cow::Owned(a.bytes))).attachment(a.file_name)
    }));
    MimePart::new(boundary_part("multipart/mixed", mixed), parts)
}

/// The boundaries the message needs: `multipart/alternative` for text + html, `multipart/mixed` for attachments.
fn boundaries(
    id: &str,
    text: Option<&str>,
    html: Option<&str>,
    atts: &[Attachment],
) -> (Option<String>, Option<String>) {
    // Text parts may go out as 7bit, so a boundary must not occur in them; base64 parts cannot contain `=_`.
    let text_attachments: Vec<Cow<'_, str>> = (atts.iter())
        .filter(|a| a.content_type.starts_with("text/"))
        .map(|a| String::from_utf8_lossy(&a.bytes))
        .collect();
    let bodies: Vec<&str> =
        text.iter().chain(&html).copied().chain(text_attachments.iter().map(AsRef::as_ref)).collect();
    let alternative = (text.is_some() && html.is_some()).then(|| ids::boundary(id, 1, &bodies));
    let mixed = (!atts.is_empty()).then(|| ids::boundary(id, 0, &bodies));
    (alternative, mixed)
}

fn boundary_part(kind: &'static str, boundary: String) -> ContentType<'static> {
    ContentType::new(kind).attribute("boundary", boundary)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
