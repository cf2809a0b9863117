//! One message from a bounce mailbox, read as what it is: an RFC 3464 delivery status notification, an
//! auto-reply, or anything else. Only a DSN is ever acted on; nothing is guessed from free text.
//!
//! The MIME structure is mail-parser's: it hands `message/delivery-status` over as an opaque body (it is not
//! `text/*`), whose per-message and per-recipient field groups (RFC 3464 §2.1, separated by blank lines)
//! are header blocks, parsed here with the same parser so that folding and comments are handled as in any
//! header. The original message (`message/rfc822`, or `text/rfc822-headers` when the reporting MTA kept
//! only the headers, RFC 3462) gives back the Message-ID mailshot sent.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use crate::job::journal::BounceKind;

/// What one message in the bounce mailbox is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Dsn(Dsn),
    /// `Auto-Submitted: auto-replied` and kin (vacation notices) that are not DSNs: skipped.
    AutoReply,
    /// Anything else (a person's reply, a read receipt, spam): skipped.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// Names this report, so that reading the same mailbox again adds nothing twice: its own Message-ID,
    /// or when it has none a digest of its status fields (line ends folded, so that the same report read
    /// from a Maildir or an mbox has the same name).
    pub id: String,
    /// The Message-ID of the message that bounced, without angle brackets, when the report carries it.
    pub original_message_id: Option<String>,
    /// Where the report itself was delivered (`X-Original-To`, `Delivered-To`, `To`): with VERP
    /// (`[message] return_path`) the address names the recipient even when nothing else in the report does.
    pub addressed_to: Vec<String>,
    pub recipients: Vec<RecipientStatus>,
}

/// One per-recipient field group (RFC 3464 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient`'s address (the `rfc822;` type removed).
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded` (lower case).
    pub action: String,
    /// The RFC 3463 status, e.g. `5.1.1`.
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

impl RecipientStatus {
    /// Hard for a 5.x.x status, soft for 4.x.x or a delay; `None` for a success report (delivered, relayed,
    /// expanded), which is not a bounce.
    pub fn kind(&self) -> Option<BounceKind> {
        let class = self.status.as_deref().and_then(|s| s.chars().next());
        match (self.action.as_str(), class) {
            ("delayed", _) | ("failed", Some('4')) => Some(BounceKind::Soft),
            ("failed", _) => Some(BounceKind::Hard),
            _ => None,
        }
    }
}

/// Reads one message.
pub fn read(raw: &[u8]) -> Notice {
    let Some(message) = MessageParser::default().parse(raw) else { return Notice::Other };
    if let Some(dsn) = dsn(&message) {
        return Notice::Dsn(dsn);
    }
    if is_auto_reply(&message) { Notice::AutoReply } else { Notice::Other }
}

fn dsn(message: &Message<'_>) -> Option<Dsn> {
    let content_type = message.content_type()?;
    let report_type = content_type.attribute("report-type").unwrap_or("");
    let is_report = content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && report_type.eq_ignore_ascii_case("delivery-status");
    if !is_report {
        return None;
    }
    let status =
        message.parts.iter().find(|p| part_is(p, "message", &["delivery-status", "global-delivery-status"]))?;
    let recipients: Vec<RecipientStatus> =
        field_groups(status.contents()).iter().skip(1).filter_map(|group| recipient(group)).collect();
    if recipients.is_empty() {
        return None;
    }
    let id = match message.message_id() {
        Some(id) => id.to_owned(),
        None => format!("sha256:{}", hex(&Sha256::digest(normalised(status.contents()))[..16])),
    };
    let addressed_to = ["X-Original-To", "Delivered-To", "To"]
        .iter()
        .filter_map(|name| message.header_raw(*name))
        .map(|value| address_of(unfold(value).rsplit(['<', ' ']).next().unwrap_or("")))
        .filter(|a| !a.is_empty())
        .collect();
    Some(Dsn { id, original_message_id: original_message_id(message), addressed_to, recipients })
}

fn part_is(part: &mail_parser::MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case(ctype)
            && c.subtype().is_some_and(|s| subtypes.iter().any(|t| s.eq_ignore_ascii_case(t)))
    })
}

/// The blocks of a `message/delivery-status` body, each parsed as a header block (the first is the
/// per-message group).
fn field_groups(body: &[u8]) -> Vec<Message<'static>> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let parser = MessageParser::default();
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            parser.parse_headers(format!("{}\n\n", block.trim_start_matches('\n')).as_bytes()).map(Message::into_owned)
        })
        .collect()
}

fn recipient(group: &Message<'_>) -> Option<RecipientStatus> {
    let field = |name: &str| group.header_raw(name).map(unfold).filter(|v| !v.is_empty());
    let action = field("Action")?.to_ascii_lowercase();
    let status = field("Status").map(|s| s.split_whitespace().next().unwrap_or("").to_owned());
    Some(RecipientStatus {
        final_recipient: field("Final-Recipient").map(|v| address_of(&v)),
        original_recipient: field("Original-Recipient").map(|v| address_of(&v)),
        action,
        status: status.filter(|s| is_status(s)),
        diagnostic: field("Diagnostic-Code"),
    })
}

/// A header value on one line, comments kept (a diagnostic is for people).
fn unfold(raw: &str) -> String {
    raw.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// `rfc822; <ann@example.com>` → `ann@example.com` (RFC 3464 §2.3.2: address-type `;` address).
fn address_of(value: &str) -> String {
    let address = value.split_once(';').map_or(value, |(_, a)| a).trim();
    address.trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

/// `class.subject.detail` with class 2, 4 or 5 (RFC 3463 §2).
fn is_status(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..].iter().all(|p| (1..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
}

/// The returned message's Message-ID: from the `message/rfc822` part, or the `text/rfc822-headers` one.
fn original_message_id(message: &Message<'_>) -> Option<String> {
    for part in &message.parts {
        match &part.body {
            PartType::Message(original) => {
                if let Some(id) = original.message_id() {
                    return Some(id.to_owned());
                }
            }
            _ if part_is(part, "text", &["rfc822-headers"]) => {
                let headers = MessageParser::default().parse_headers(part.contents());
                if let Some(id) = headers.as_ref().and_then(|h| h.message_id()) {
                    return Some(id.to_owned());
                }
            }
            _ => {}
        }
    }
    None
}

/// RFC 3834 `Auto-Submitted` (anything but `no`), and the older markers vacation programs still send.
fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    header("Auto-Submitted").is_some_and(|v| !v.starts_with("no"))
        || header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("Precedence").is_some_and(|v| v == "auto_reply")
}

fn normalised(fields: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(fields);
    text.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "dsn_tests.rs"]
mod tests;
