//! Rules for the headers a job may add, and for the List-Unsubscribe URL.

/// Headers mailshot writes itself, or must never write (`Bcc`): a job may not set them in `[message] headers`.
const RESERVED: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "sender",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "return-path",
];

/// The longest header name a job may add: the first word of its value cannot fold away from it, and the
/// line must stay far within 998 octets.
const MAX_NAME: usize = 64;

/// A header name a job may add: RFC 5322 §3.6.8 field-name characters, not reserved, not `Content-*`.
pub fn check_header_name(name: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        Err(format!("`{name}` is not a valid header name (printable ASCII, no spaces or `:`)"))
    } else if name.len() > MAX_NAME {
        Err(format!("`{name}` is not a valid header name (at most {MAX_NAME} characters, so that its line can fold)"))
    } else if RESERVED.contains(&lower.as_str()) || lower.starts_with("content-") {
        Err(format!("`{name}` is set by mailshot itself and cannot be given in [message] headers"))
    } else {
        Ok(())
    }
}

/// How the unsubscribe URL is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribe {
    /// `https:`: List-Unsubscribe plus `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058 §3.1).
    OneClick,
    /// `mailto:`: List-Unsubscribe only (RFC 2369); one-click needs HTTPS.
    Mailto,
}

/// The longest URL that still fits on one header line (998 octets, RFC 5322 §2.1.1) with its `<>`.
const MAX_URL: usize = 900;

/// Checks a rendered unsubscribe URL: ASCII, no spaces or `<>`, `https:` or `mailto:`.
pub fn check_unsubscribe(url: &str) -> Result<Unsubscribe, String> {
    if !url.is_ascii() || url.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>' || b == 0x7f) {
        return Err("the list_unsubscribe URL must be ASCII without spaces, `<` or `>` (percent-encode)".into());
    }
    if url.len() > MAX_URL {
        return Err(format!("the list_unsubscribe URL is longer than {MAX_URL} characters"));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") && url.len() > "https://".len() {
        Ok(Unsubscribe::OneClick)
    } else if lower.starts_with("mailto:") && url.contains('@') {
        Ok(Unsubscribe::Mailto)
    } else {
        Err("the list_unsubscribe URL must start with https:// (RFC 8058 one-click) or mailto:".into())
    }
}

/// A text a reader would take, in part, for RFC 2047 encoded words (`=?charset?B?…?=`) if it were written as
/// it is: a CSV cell `=?utf-8?B?UGF5IG5vdw==?=` would read "Pay now" in the recipient's mail program, not
/// what the job (and its preview) said. mail-builder writes such ASCII text raw, so these texts are
/// encoded here ([`encoded_words`]); then the reader decodes them back to exactly what was written.
pub fn looks_encoded(text: &str) -> bool {
    text.contains("=?")
}

/// RFC 5322's line length to stay within, RFC 2047's longest encoded word, and what a B word adds around
/// its base64.
const LINE: usize = 78;
const WORD_MAX: usize = 75;
const FRAME: usize = "=?utf-8?B??=".len();

/// The whole text as RFC 2047 "B" encoded words in UTF-8, separated by spaces, where the header folds;
/// readers join adjacent encoded words without the space between them. The first word is sized to fit
/// after the header's name (`column`: `Subject: ` is 9; nothing can fold before it), the others to fit a
/// folded line. A word ends on a character boundary, and after a space of the text when one is in its
/// second half: a reader that wrongly spaces words apart (Python's `email`, gh-128110) then only doubles a
/// space.
pub fn encoded_words(text: &str, column: usize) -> String {
    use base64::Engine as _;
    let mut words = Vec::new();
    let (mut rest, mut room) = (text, LINE.saturating_sub(column));
    while !rest.is_empty() {
        let fits = room.min(WORD_MAX).saturating_sub(FRAME) / 4 * 3;
        let mut end = rest.len().min(fits.max(1));
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        if end < rest.len()
            && let Some(space) = rest[..end].rfind(' ').filter(|&at| at + 1 > end / 2)
        {
            end = space + 1;
        }
        let (word, next) = rest.split_at(end);
        words.push(format!("=?utf-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(word)));
        (rest, room) = (next, LINE - 1);
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        assert!(check_header_name("X-Campaign").is_ok());
        assert!(check_header_name(&format!("X-{}", "N".repeat(MAX_NAME - 2))).is_ok());
        let too_long = format!("X-{}", "N".repeat(MAX_NAME - 1));
        for bad in ["", "X Campaign", "X:y", "Bcc", "bcc", "Content-Type", "Subject", "X-Ä", &too_long] {
            assert!(check_header_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsubscribe_urls() {
        assert_eq!(check_unsubscribe("https://example.com/u/1"), Ok(Unsubscribe::OneClick));
        assert_eq!(check_unsubscribe("mailto:u@example.com?subject=x"), Ok(Unsubscribe::Mailto));
        for bad in ["http://example.com/u", "https://", "https://e.com/a b", "https://e.com/ü", "javascript:x"] {
            assert!(check_unsubscribe(bad).is_err(), "{bad:?}");
        }
        assert!(check_unsubscribe(&format!("https://e.com/{}", "a".repeat(1000))).is_err());
    }
}
