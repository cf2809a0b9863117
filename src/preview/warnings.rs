//! What deserves a second look before sending, per message. Each warning has a stable code (the page
//! filters and counts by it) and a sentence for the reader; none stops the preview.

use crate::render::Rendered;

/// A subject longer than this is cut in most inbox lists (RFC 5322 §2.1.1 recommends 78 per line).
pub const LONG_SUBJECT_CHARS: usize = 78;
/// Gmail clips an HTML part past this many bytes behind "[Message clipped]".
pub const CLIPPED_HTML_BYTES: usize = 102 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Warning {
    NoTextPart,
    EmptySubject,
    LongSubject,
    RemoteImages,
    HttpLinks,
    NearSizeLimit,
    ClippedHtml,
    NoListUnsubscribe,
    SameButWhitespace,
}

impl Warning {
    pub const ALL: [Warning; 9] = [
        Warning::NoTextPart,
        Warning::EmptySubject,
        Warning::LongSubject,
        Warning::RemoteImages,
        Warning::HttpLinks,
        Warning::NearSizeLimit,
        Warning::ClippedHtml,
        Warning::NoListUnsubscribe,
        Warning::SameButWhitespace,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Warning::NoTextPart => "no-text",
            Warning::EmptySubject => "empty-subject",
            Warning::LongSubject => "long-subject",
            Warning::RemoteImages => "remote-images",
            Warning::HttpLinks => "http-links",
            Warning::NearSizeLimit => "near-size-limit",
            Warning::ClippedHtml => "clipped-html",
            Warning::NoListUnsubscribe => "no-list-unsubscribe",
            Warning::SameButWhitespace => "whitespace-only-change",
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Warning::NoTextPart => "no text part: text-only readers and some spam filters see nothing",
            Warning::EmptySubject => "the subject is empty",
            Warning::LongSubject => "the subject is longer than 78 characters and is cut in inbox lists",
            Warning::RemoteImages => "the HTML loads remote images (blocked by many mail clients, and they track)",
            Warning::HttpLinks => "a link uses http:// rather than https://",
            Warning::NearSizeLimit => "the message is over 90% of [limits] message_bytes",
            Warning::ClippedHtml => "the HTML part is over 102 KiB: Gmail clips it",
            Warning::NoListUnsubscribe => {
                "a mailing to several people without [message] list_unsubscribe (Gmail and Yahoo require it)"
            }
            Warning::SameButWhitespace => {
                "the output differs from the previous row's only in whitespace: a variable probably rendered empty"
            }
        }
    }
}

/// What the checks need beyond the message itself.
pub struct Context<'a> {
    pub size: usize,
    pub size_limit: u64,
    /// More than one recipient: a list, which should offer List-Unsubscribe.
    pub is_list: bool,
    pub previous: Option<&'a Rendered>,
}

pub fn of(r: &Rendered, cx: &Context<'_>) -> Vec<Warning> {
    let html = r.html.as_deref().unwrap_or("");
    let text = r.text.as_deref().unwrap_or("");
    let checks = [
        (Warning::NoTextPart, text.trim().is_empty()),
        (Warning::EmptySubject, r.subject.trim().is_empty()),
        (Warning::LongSubject, r.subject.chars().count() > LONG_SUBJECT_CHARS),
        (Warning::RemoteImages, has_remote_images(html)),
        (Warning::HttpLinks, has_http_links(html) || text.contains("http://")),
        (Warning::NearSizeLimit, cx.size as u64 > cx.size_limit / 10 * 9),
        (Warning::ClippedHtml, html.len() > CLIPPED_HTML_BYTES),
        (Warning::NoListUnsubscribe, cx.is_list && r.list_unsubscribe.is_none()),
        (Warning::SameButWhitespace, cx.previous.is_some_and(|p| same_but_whitespace(p, r))),
    ];
    checks.into_iter().filter(|(_, found)| *found).map(|(w, _)| w).collect()
}

/// Values of `src`, `background`, `srcset` and CSS `url(` that point off the message.
fn has_remote_images(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    ["src", "background", "srcset", "url("].iter().any(|marker| values_after(&lower, marker).any(is_remote))
}

fn has_http_links(html: &str) -> bool {
    values_after(&html.to_ascii_lowercase(), "href").any(|v| v.starts_with("http://"))
}

fn is_remote(value: &str) -> bool {
    value.starts_with("http://") || value.starts_with("https://") || value.starts_with("//")
}

/// The text after each attribute `marker` and its `=` (or after `url(`), past spaces and an opening quote.
fn values_after<'a>(lower: &'a str, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let skip = |s: &'a str| s.trim_start_matches([' ', '\t', '\r', '\n', '"', '\'']);
    lower.match_indices(marker).filter_map(move |(i, _)| {
        let rest = &lower[i + marker.len()..];
        if marker.ends_with('(') {
            return Some(skip(rest));
        }
        rest.trim_start().strip_prefix('=').map(skip)
    })
}

fn same_but_whitespace(a: &Rendered, b: &Rendered) -> bool {
    let parts =
        |r: &Rendered| [r.subject.clone(), r.text.clone().unwrap_or_default(), r.html.clone().unwrap_or_default()];
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let (a, b) = (parts(a), parts(b));
    a != b && a.iter().zip(&b).all(|(x, y)| squeeze(x) == squeeze(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(subject: &str, text: Option<&str>, html: Option<&str>) -> Rendered {
        Rendered {
            subject: subject.to_owned(),
            text: text.map(str::to_owned),
            html: html.map(str::to_owned),
            attachments: vec![],
            headers: vec![],
            list_unsubscribe: Some("https://u".to_owned()),
            return_path: None,
        }
    }

    fn cx(previous: Option<&Rendered>) -> Context<'_> {
        Context { size: 100, size_limit: 1000, is_list: true, previous }
    }

    #[test]
    fn a_clean_message_has_none() {
        let r = rendered("Hi", Some("see https://x"), Some("<a href=\"https://x\"><img src=\"cid:1\"></a>"));
        assert_eq!(of(&r, &cx(None)), []);
    }

    #[test]
    fn each_warning_is_found() {
        let table: [(Rendered, Warning); 6] = [
            (rendered("Hi", None, Some("<p>x</p>")), Warning::NoTextPart),
            (rendered(" ", Some("x"), None), Warning::EmptySubject),
            (rendered(&"a".repeat(79), Some("x"), None), Warning::LongSubject),
            (rendered("Hi", Some("x"), Some("<img SRC = 'https://t.example/p.gif'>")), Warning::RemoteImages),
            (rendered("Hi", Some("x"), Some("<td style=\"background:url(//t/x.png)\">")), Warning::RemoteImages),
            (rendered("Hi", Some("x"), Some("<a href=\"http://plain\">")), Warning::HttpLinks),
        ];
        for (r, warning) in table {
            assert_eq!(of(&r, &cx(None)), [warning], "{:?}", r.subject);
        }
        let mut no_unsubscribe = rendered("Hi", Some("x"), None);
        no_unsubscribe.list_unsubscribe = None;
        assert_eq!(of(&no_unsubscribe, &cx(None)), [Warning::NoListUnsubscribe]);
        let big = Context { size: 901, ..cx(None) };
        assert_eq!(of(&rendered("Hi", Some("x"), None), &big), [Warning::NearSizeLimit]);
    }

    #[test]
    fn whitespace_only_changes_from_the_previous_row_are_found() {
        let previous = rendered("Hi", Some("Dear Ann Lee,"), None);
        let empty_name = rendered("Hi", Some("Dear Ann  Lee,"), None);
        assert_eq!(of(&empty_name, &cx(Some(&previous))), [Warning::SameButWhitespace]);
        assert_eq!(of(&previous, &cx(Some(&previous))), [], "identical output is not a whitespace change");
        assert_eq!(of(&rendered("Hi", Some("Dear Bob,"), None), &cx(Some(&previous))), []);
    }
}
