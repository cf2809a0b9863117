//! MIME output parsed back with a real parser (mail-parser): structure, encodings, determinism, wire rules.

use chrono::TimeZone;
use mail_parser::{MessageParser, MimeHeaders};

use super::*;
use crate::smtp::testing::assert_wire_clean;

fn mailbox(cell: &str) -> Mailbox {
    Mailbox::parse(cell).unwrap()
}

fn rendered(text: Option<&str>, html: Option<&str>) -> Rendered {
    Rendered {
        subject: "Grüße, Zoë — ça va? 日本語の件名".into(),
        text: text.map(Into::into),
        html: html.map(Into::into),
        attachments: vec![],
        headers: vec![("X-Campaign".into(), "2026-11".into())],
        list_unsubscribe: Some("https://example.com/u/abc".into()),
        return_path: None,
    }
}

fn build(r: &Rendered, to: &Mailbox, attachments: Vec<Attachment>) -> Vec<u8> {
    let from = mailbox("Ännouncements <news@example.com>");
    let date = Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap();
    let draft = Draft {
        from: &from,
        reply_to: None,
        to,
        copies: &[],
        rendered: r,
        attachments,
        message_id: "id1@example.com",
        date,
    };
    draft.build().unwrap()
}

#[test]
fn text_and_html_with_a_non_ascii_attachment_round_trip() {
    let text = "Hallo Jürgen,\r\nline two\rline three\n".to_owned() + &"long ".repeat(300) + "\n";
    let r = rendered(Some(&text), Some("<p>Hallo J&uuml;rgen</p>"));
    let to = mailbox("Jürgen Müller <jurgen@müller.de>");
    let pdf = Attachment {
        file_name: "Rechnung März.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: vec![0, 255, 1, 2],
    };
    let bytes = build(&r, &to, vec![pdf]);
    assert_wire_clean(&bytes);
    assert!(bytes.is_ascii(), "everything is encoded when no SMTPUTF8 is needed");

    let m = MessageParser::new().parse(&bytes).unwrap();
    assert_eq!(m.subject(), Some(r.subject.as_str()));
    let to_addr = m.to().unwrap().first().unwrap();
    assert_eq!((to_addr.name(), to_addr.address()), (Some("Jürgen Müller"), Some("jurgen@xn--mller-kva.de")));
    assert_eq!(m.from().unwrap().first().unwrap().name(), Some("Ännouncements"));
    assert_eq!(m.message_id(), Some("id1@example.com"));
    assert_eq!(m.date().unwrap().to_rfc3339(), "2026-11-02T09:30:00Z");
    assert_eq!(m.content_type().unwrap().subtype(), Some("mixed"));
    assert_eq!(m.body_text(0).unwrap().replace("\r\n", "\n"), text.replace("\r\n", "\n").replace('\r', "\n"));
    assert_eq!(m.body_html(0).as_deref(), Some("<p>Hallo J&uuml;rgen</p>"));
    let attachment = m.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("Rechnung März.pdf"));
    assert_eq!(attachment.contents(), [0, 255, 1, 2]);
    assert_eq!(m.header("X-Campaign").unwrap().as_text(), Some("2026-11"));
    assert_eq!(m.header("List-Unsubscribe-Post").unwrap().as_text(), Some("List-Unsubscribe=One-Click"));
    assert!(m.header("Bcc").is_none());
}

#[test]
fn structure_follows_the_parts() {
    let to = mailbox("a@example.com");
    let text_only = MessageParser::new().parse(&build(&rendered(Some("hi"), None), &to, vec![])).unwrap().into_owned();
    assert_eq!(
        text_only.content_type().map(|c| (c.ctype().to_owned(), c.subtype().map(str::to_owned))),
        Some(("text".to_owned(), Some("plain".to_owned())))
    );
    let both =
        MessageParser::new().parse(&build(&rendered(Some("hi"), Some("<b>hi</b>")), &to, vec![])).unwrap().into_owned();
    assert_eq!(both.content_type().unwrap().subtype(), Some("alternative"));
    assert_eq!((both.text_body_count(), both.html_body_count()), (1, 1));
}

#[test]
fn same_inputs_give_the_same_bytes() {
    let r = rendered(Some("a"), Some("<p>a</p>"));
    let to = mailbox("a@example.com");
    let att =
        || vec![Attachment { file_name: "a.txt".into(), content_type: "text/plain".into(), bytes: b"x".to_vec() }];
    assert_eq!(build(&r, &to, att()), build(&r, &to, att()));
}

#[test]
fn smtputf8_only_for_a_non_ascii_local_part() {
    let from = mailbox("news@example.com");
    let plain = mailbox("Zoë <zoe@bücher.example>");
    let utf8 = mailbox("zoë@bücher.example");
    let e = envelope(&from, &plain, &[], b"x");
    assert_eq!((e.to[0].as_str(), e.smtputf8, e.eight_bit), ("zoe@xn--bcher-kva.example", false, false));
    let bytes = build(&rendered(Some("hi"), None), &utf8, vec![]);
    let e = envelope(&from, &utf8, &[], &bytes);
    assert_eq!((e.to[0].as_str(), e.smtputf8, e.eight_bit), ("zoë@xn--bcher-kva.example", true, true));
}

#[test]
fn a_bad_unsubscribe_url_is_refused() {
    let mut r = rendered(Some("hi"), None);
    r.list_unsubscribe = Some("http://example.com/u".into());
    let from = mailbox("news@example.com");
    let to = mailbox("a@example.com");
    let date = Utc::now();
    let draft = Draft {
        from: &from,
        reply_to: None,
        to: &to,
        copies: &[],
        rendered: &r,
        attachments: vec![],
        message_id: "i@x.y",
        date,
    };
    assert!(matches!(draft.build(), Err(MessageError::Unsubscribe(_))));
}

#[test]
fn cc_copies_are_in_a_cc_header_and_bcc_copies_in_no_header() {
    let copy = |kind, cell| CopyRecipient { kind, mailbox: mailbox(cell) };
    let copies = [
        copy(CopyKind::Cc, "\"Smith, J.\" <j@example.com>"),
        copy(CopyKind::Cc, "k@bücher.example"),
        copy(CopyKind::Bcc, "hidden@example.com"),
    ];
    let (from, to, r) = (mailbox("news@example.com"), mailbox("a@example.com"), rendered(Some("hi"), None));
    let date = Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap();
    let draft = Draft {
        from: &from,
        reply_to: None,
        to: &to,
        copies: &copies,
        rendered: &r,
        attachments: vec![],
        message_id: "i@x.y",
        date,
    };
    let bytes = draft.build().unwrap();
    assert_wire_clean(&bytes);
    let m = MessageParser::new().parse(&bytes).unwrap();
    let cc: Vec<(Option<&str>, Option<&str>)> = m.cc().unwrap().iter().map(|a| (a.name(), a.address())).collect();
    assert_eq!(cc, [(Some("Smith, J."), Some("j@example.com")), (None, Some("k@xn--bcher-kva.example"))]);
    let text = String::from_utf8(bytes.clone()).unwrap().to_ascii_lowercase();
    assert!(!text.contains("bcc") && !text.contains("hidden@"), "{text}");
    let e = envelope(&from, &to, &copies, &bytes);
    let listed: Vec<(CopyKind, &str)> = e.copies.iter().map(|c| (c.kind, c.address.as_str())).collect();
    assert_eq!(
        listed,
        [
            (CopyKind::Cc, "j@example.com"),
            (CopyKind::Cc, "k@xn--bcher-kva.example"),
            (CopyKind::Bcc, "hidden@example.com")
        ]
    );
    assert!(!e.smtputf8);
}

#[test]
fn line_ends_become_lf_and_nul_becomes_the_replacement_character() {
    assert_eq!(normalize("plain\nlines\n"), "plain\nlines\n");
    assert_eq!(normalize("a\r\nb\rc\n"), "a\nb\nc\n");
    assert_eq!(normalize("nul\0here\r\n"), "nul\u{fffd}here\n");
    assert_eq!(normalize("only\0nul"), "only\u{fffd}nul");
    assert_eq!(normalize(""), "");
}

/// `normalize` as plainly as it can be said, one character at a time: CRLF, a bare CR and a bare LF are one
/// LF; a NUL is U+FFFD; everything else stays.
fn normalized_plainly(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\0' => out.push('\u{fffd}'),
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_short_text_is_normalized_as_the_rule_says_with_or_without_nul_and_cr() {
    for text in crate::exhaustive::texts(&['\0', '\r', '\n', 'a', 'é', '\u{85}'], 6) {
        assert_eq!(normalize(&text), normalized_plainly(&text), "{text:?}");
    }
}

/// Texts a reader would decode in part (`=?…?=`, from a CSV cell or the job) arrive as written: the subject,
/// a job's header, and display names in From, To, Cc and Reply-To; everything else is written as before.
#[test]
fn literal_encoded_words_in_texts_and_names_read_back_as_written() {
    let subject = "Re: =?utf-8?b?UGF5IG5vdw==?= please, Zoë — ".to_owned() + &"=?x?q?é?= ".repeat(12);
    let mut r = rendered(Some("hi"), None);
    r.subject = subject.clone();
    let longest = format!("X-{}", "N".repeat(62));
    r.headers = vec![
        ("X-Note".into(), "=?utf-8?q?Admin?=".into()),
        ("X-Plain".into(), "plain text".into()),
        (longest.clone(), "=?x?= ".repeat(30)),
    ];
    let (to, boss) =
        (mailbox("\"=?utf-8?q?IT_Support?=\" <it@example.de>"), mailbox("\"=?utf-8?B?Qm9zcw==?=\" <b@example.de>"));
    let copies = [
        CopyRecipient { kind: CopyKind::Cc, mailbox: mailbox("Ann <ann@example.de>") },
        CopyRecipient { kind: CopyKind::Cc, mailbox: boss },
    ];
    let from = mailbox("\"=?utf-8?q?Bank?=\" <news@example.com>");
    let reply_to = mailbox("Plain Name <reply@example.com>");
    let date = Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap();
    let draft = Draft {
        from: &from,
        reply_to: Some(&reply_to),
        to: &to,
        copies: &copies,
        rendered: &r,
        attachments: vec![],
        message_id: "id1@example.com",
        date,
    };
    let bytes = draft.build().unwrap();
    assert_wire_clean(&bytes);
    let head = String::from_utf8(bytes.clone()).unwrap().split("\r\n\r\n").next().unwrap().to_owned();
    let over = |line: &&str| line.len() > 78 && !line.starts_with(&longest);
    assert!(!head.lines().any(|line| over(&line)), "{head}");
    let first = head.lines().find(|l| l.starts_with(&longest)).unwrap();
    assert!(first.len() <= 66 + 16, "the longest name's first line has one short word: {first}");
    assert!(!head.contains("=?utf-8?b?UGF5") && !head.contains("=?utf-8?q?"), "written raw somewhere:\n{head}");
    assert!(
        head.contains("\r\nX-Plain: plain text\r\n")
            && head.contains("\r\nReply-To: \"Plain Name\" <reply@example.com>\r\n")
    );

    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(parsed.subject(), Some(subject.as_str()));
    let names = |list: Option<&mail_parser::Address>| -> Vec<(String, String)> {
        let list = list.unwrap().as_list().unwrap();
        list.iter().map(|a| (a.name().unwrap_or("").to_owned(), a.address().unwrap().to_owned())).collect()
    };
    assert_eq!(names(parsed.from()), [("=?utf-8?q?Bank?=".to_owned(), "news@example.com".to_owned())]);
    assert_eq!(names(parsed.to()), [("=?utf-8?q?IT_Support?=".to_owned(), "it@example.de".to_owned())]);
    let cc = [
        ("Ann".to_owned(), "ann@example.de".to_owned()),
        ("=?utf-8?B?Qm9zcw==?=".to_owned(), "b@example.de".to_owned()),
    ];
    assert_eq!(names(parsed.cc()), cc);
    let note = head.lines().find_map(|l| l.strip_prefix("X-Note: ")).unwrap();
    assert_eq!(decode_b_words(note), "=?utf-8?q?Admin?=");
}

/// `=?utf-8?B?…?=` words separated by spaces, decoded and joined (the reader's side of `encoded_words`).
fn decode_b_words(value: &str) -> String {
    use base64::Engine as _;
    let word = |w: &str| {
        let b64 = w.strip_prefix("=?utf-8?B?").and_then(|w| w.strip_suffix("?=")).expect("a B word");
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    };
    String::from_utf8(value.split(' ').flat_map(word).collect()).unwrap()
}

#[test]
fn encoded_words_split_on_characters_and_stay_short() {
    let long = "Grüße an alle =?x?= ".repeat(6) + &"é".repeat(40) + &"x".repeat(90) + &"日本語".repeat(20);
    for text in ["", "a", "=?", "ends in a space ", &long] {
        for column in [4, 9, 30, 66] {
            let words = headers::encoded_words(text, column);
            assert!(words.split(' ').all(|w| w.len() <= 75), "{words}");
            let first = words.split(' ').next().unwrap_or("").len();
            assert!(column + first <= 78 || first <= 16, "column {column}, first word {first}: {words}");
            assert_eq!(if text.is_empty() { String::new() } else { decode_b_words(&words) }, text);
        }
    }
    // A split falls after a space of the text when one is near: each word but the last ends in one.
    let words = headers::encoded_words(&"Name 0 is a rather long display name ".repeat(3), 4);
    let pieces: Vec<String> = words.split(' ').map(decode_b_words).collect();
    assert!(pieces.len() > 2 && pieces[..pieces.len() - 1].iter().all(|p| p.ends_with(' ')), "{pieces:?}");
    assert!(headers::looks_encoded("a =?b") && !headers::looks_encoded("a = ? b ?="));
}
