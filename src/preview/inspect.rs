//! The attachments of one message, read back from the exact bytes `send` would submit (so the page lists
//! what recipients get, not what we meant to build). The headers are read back by the page itself, from
//! the same bytes, when a message is selected: parsing 100,000 header sections here cost as much as
//! rendering the messages (issue 14: a preview within 2× of `check`).

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub name: String,
    pub mime: String,
    pub size: usize,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// The attachments of a message built with some (a `multipart/mixed` one, see `message::Draft`); a message
/// that does not parse has none (its raw source still shows).
pub fn attachments(bytes: &[u8]) -> Vec<Attachment> {
    let Some(message) = MessageParser::default().parse(bytes) else { return Vec::new() };
    message
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
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: =?utf-8?q?Caf=C3=A9?= <a@example.com>\r\nTo: b@example.com\r\n\
        Subject: Hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
        Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/pdf\r\n\
        Content-Disposition: attachment; filename=\"t.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        JVBERg==\r\n--b--\r\n";

    #[test]
    fn attachments_have_name_type_size_and_bytes() {
        let found = attachments(MESSAGE.as_bytes());
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!((a.name.as_str(), a.mime.as_str(), a.size), ("t.pdf", "application/pdf", 4));
        assert_eq!(a.bytes, b"%PDF");
    }

    #[test]
    fn a_message_that_does_not_parse_has_none() {
        assert_eq!(attachments(b""), []);
    }
}
