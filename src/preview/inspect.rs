//! What a mail client would show of one message: its headers decoded, and its attachments, read back from
//! the exact bytes `send` would submit (so the page shows what recipients get, not what we meant to build).

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use serde::Serialize;

/// Headers a reader looks at first, in this order; the rest follow as the message has them.
const FIRST: [&str; 8] =
    ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"];
/// MIME plumbing that a mail client does not show.
const HIDDEN: [&str; 3] = ["MIME-Version", "Content-Type", "Content-Transfer-Encoding"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub name: String,
    pub mime: String,
    pub size: usize,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspected {
    /// (name, decoded value), the headers of `FIRST` first.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
}

/// Parses `bytes` back; a message that does not parse shows no headers (its raw source still shows).
/// Only a `multipart/mixed` message can carry attachments (see `message::Draft`): any other is parsed no
/// further than its header section, which is most of a preview's CPU time saved.
pub fn inspect(bytes: &[u8]) -> Inspected {
    let Some(head) = MessageParser::default().parse_headers(bytes) else { return Inspected::default() };
    let mixed = head.content_type().is_some_and(|t| {
        t.c_type.eq_ignore_ascii_case("multipart")
            && t.c_subtype.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("mixed"))
    });
    let parsed = if mixed { MessageParser::default().parse(bytes) } else { None };
    let message = parsed.as_ref().unwrap_or(&head);
    let mut headers: Vec<(String, String)> = message
        .headers()
        .iter()
        .filter(|h| !HIDDEN.iter().any(|n| n.eq_ignore_ascii_case(h.name.as_str())))
        .map(|h| {
            let name = h.name.as_str();
            let value = if is_raw(name) { raw(bytes, h) } else { shown(&h.value) };
            (name.to_owned(), value)
        })
        .collect();
    headers.sort_by_key(|(name, _)| FIRST.iter().position(|f| f.eq_ignore_ascii_case(name)).unwrap_or(FIRST.len()));
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(i, part)| Attachment {
            name: part.attachment_name().map_or_else(|| format!("attachment-{}", i + 1), str::to_owned),
            mime: part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |t| format!("{}/{}", t.c_type, t.c_subtype.as_deref().unwrap_or("octet-stream")),
            ),
            size: part.contents().len(),
            bytes: part.contents().to_vec(),
        })
        .collect();
    Inspected { headers, attachments }
}

/// Headers whose angle brackets matter (ids, RFC 2369 list URLs): the parser strips them, so these are
/// shown as written.
fn is_raw(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["message-id", "in-reply-to", "references"].contains(&lower.as_str()) || lower.starts_with("list-")
}

/// The value as written, unfolded (RFC 5322 §2.2.3).
fn raw(bytes: &[u8], h: &mail_parser::Header<'_>) -> String {
    let value = bytes.get(h.offset_start as usize..h.offset_end as usize).unwrap_or_default();
    String::from_utf8_lossy(value).replace("\r\n", "").trim().to_owned()
}

/// A header value as a mail client writes it: `Name <address>` lists, decoded text, RFC 5322 dates.
fn shown(value: &HeaderValue<'_>) -> String {
    match value {
        HeaderValue::Address(Address::List(list)) => list.iter().map(mailbox).collect::<Vec<_>>().join(", "),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .map(|g| {
                let members = g.addresses.iter().map(mailbox).collect::<Vec<_>>().join(", ");
                format!("{}: {members};", g.name.as_deref().unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join(" "),
        HeaderValue::Text(text) => text.to_string(),
        HeaderValue::TextList(list) => list.iter().map(|t| format!("<{t}>")).collect::<Vec<_>>().join(", "),
        HeaderValue::DateTime(date) => date.to_rfc822(),
        HeaderValue::ContentType(t) => format!("{}/{}", t.c_type, t.c_subtype.as_deref().unwrap_or("")),
        HeaderValue::Received(_) | HeaderValue::Empty => String::new(),
    }
}

fn mailbox(addr: &mail_parser::Addr<'_>) -> String {
    let address = addr.address.as_deref().unwrap_or("");
    match addr.name.as_deref() {
        Some(name) if !name.is_empty() => format!("{name} <{address}>"),
        _ => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: =?utf-8?q?Caf=C3=A9?= <a@example.com>\r\nTo: b@example.com\r\n\
        Subject: Hi\r\nMessage-ID:\r\n <1@example.com>\r\nList-Unsubscribe: <https://u/1>\r\nX-Campaign: c1\r\nMIME-Version: 1.0\r\n\
        Reply-To: S <s@example.com>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
        Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/pdf\r\n\
        Content-Disposition: attachment; filename=\"t.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        JVBERg==\r\n--b--\r\n";

    #[test]
    fn headers_are_decoded_and_ordered_as_a_reader_wants() {
        let inspected = inspect(MESSAGE.as_bytes());
        let names: Vec<&str> = inspected.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["From", "To", "Reply-To", "Subject", "Message-ID", "List-Unsubscribe", "X-Campaign"]);
        assert_eq!(inspected.headers[0].1, "Café <a@example.com>");
        assert_eq!(inspected.headers[4].1, "<1@example.com>", "unfolded");
        assert_eq!(inspected.headers[5].1, "<https://u/1>");
    }

    #[test]
    fn a_message_without_attachments_is_read_from_its_headers_alone() {
        let plain = "From: a@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: multipart/alternative; \
            boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/pdf\r\n\
            Content-Disposition: attachment; filename=\"t.pdf\"\r\n\r\nx\r\n--b--\r\n";
        let inspected = inspect(plain.as_bytes());
        assert_eq!(inspected.headers, [("From".into(), "a@example.com".into()), ("Subject".into(), "Grüße".into())]);
        assert_eq!(inspected.attachments, [], "only multipart/mixed is read for attachments, as Draft builds them");
    }

    #[test]
    fn attachments_have_name_type_size_and_bytes() {
        let inspected = inspect(MESSAGE.as_bytes());
        let a = &inspected.attachments[0];
        assert_eq!((a.name.as_str(), a.mime.as_str(), a.size), ("t.pdf", "application/pdf", 4));
        assert_eq!(a.bytes, b"%PDF");
    }
}
