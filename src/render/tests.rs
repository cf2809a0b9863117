//! Rendering: escaping by part, strict variables, header injection, error positions.

use std::path::PathBuf;

use super::*;

fn inline(key: &str, text: &str) -> Source {
    Source { origin: Origin::Inline { file: "job.toml".into(), line: 4, key: key.into() }, text: text.into() }
}

fn file(name: &str, text: &str) -> Source {
    Source { origin: Origin::File(PathBuf::from(name)), text: text.into() }
}

fn sources() -> Sources {
    Sources {
        subject: inline("[message] subject", "Hello {{ name }}"),
        // Deliberately not ending in .html: escaping must not depend on the file name.
        html: Some(file("t/mail.html.tera", "<p>{{ name }}</p>")),
        text: Some(file("t/mail.txt", "Hi {{ name }}\n")),
        attachments: vec![inline("[message] attachments", "files/{{ id }}.pdf")],
        headers: vec![("X-Campaign".into(), inline("[message] headers", "c-{{ id }}"))],
        list_unsubscribe: Some(inline("[message] list_unsubscribe", "https://example.com/u/{{ id }}")),
    }
}

fn context(pairs: &[(&str, &str)]) -> Context {
    let columns =
        Columns { names: pairs.iter().map(|(k, _)| k.to_string()).collect(), email: 0, name: None, key: None };
    let fields: Vec<String> = pairs.iter().map(|(_, v)| v.to_string()).collect();
    Templates::context(&columns, &fields)
}

#[test]
fn html_is_escaped_text_and_headers_are_not() {
    let templates = Templates::compile(sources()).unwrap();
    let r = templates.render(&context(&[("name", "<script>x</script>"), ("id", "7&8")])).unwrap();
    assert_eq!(r.html.as_deref(), Some("<p>&lt;script&gt;x&lt;&#x2F;script&gt;</p>"));
    assert_eq!(r.text.as_deref(), Some("Hi <script>x</script>\n"));
    assert_eq!(r.subject, "Hello <script>x</script>");
    assert_eq!(r.attachments, ["files/7&8.pdf"]);
    assert_eq!(r.headers, [("X-Campaign".to_string(), "c-7&8".to_string())]);
    assert_eq!(r.list_unsubscribe.as_deref(), Some("https://example.com/u/7&8"));
}

#[test]
fn a_missing_variable_is_an_error_with_its_line() {
    let mut s = sources();
    s.text = Some(file("t/mail.txt", "Hi\n\n{{ nme | upper }}\n"));
    let templates = Templates::compile(s).unwrap();
    let err = templates.render(&context(&[("name", "Ann"), ("id", "1")])).unwrap_err();
    assert_eq!(err.to_string(), "t/mail.txt:3: Variable `nme` not found in context");
}

#[test]
fn every_syntax_error_is_reported_with_its_line() {
    let mut s = sources();
    s.subject = inline("[message] subject", "Hello {{ name");
    s.html = Some(file("t/mail.html", "<p>\n{% if %}</p>"));
    let errors = Templates::compile(s).unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text[0].starts_with("job.toml:4: [message] subject: syntax error: expected"), "{text:?}");
    assert!(text[1].starts_with("t/mail.html:2: syntax error: expected"), "{text:?}");
}

#[test]
fn cr_or_lf_in_a_header_value_is_injection() {
    let templates = Templates::compile(sources()).unwrap();
    for bad in ["x\r\nBcc: victim@example.com", "x\nBcc: victim@example.com", "x\r"] {
        let err = templates.render(&context(&[("name", bad), ("id", "1")])).unwrap_err();
        assert!(matches!(&err, RenderError::Injection { origin } if origin.to_string().ends_with("subject")), "{err}");
    }
    let err = templates.render(&context(&[("name", "ok"), ("id", "1\n2")])).unwrap_err();
    assert!(matches!(err, RenderError::Injection { .. }));
}

#[test]
fn templates_are_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
}
