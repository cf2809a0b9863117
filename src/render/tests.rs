//! Rendering: escaping by part, strict variables, header injection, error positions.

use std::path::PathBuf;

use chrono::TimeZone;

use super::*;

/// `[limits] message_bytes` by default.
const LIMIT: u64 = 25 << 20;

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
        return_path: Some(inline("[message] return_path", "bounces+{{ mailshot.recipient_token }}@example.com")),
    }
}

fn context(pairs: &[(&str, &str)]) -> Context {
    let columns = Columns {
        names: pairs.iter().map(|(k, _)| k.to_string()).collect(),
        email: 0,
        name: None,
        key: None,
        copies: Default::default(),
    };
    let fields: Vec<String> = pairs.iter().map(|(_, v)| v.to_string()).collect();
    let templates = Templates::compile(sources()).unwrap();
    templates.context(&columns, &fields, chrono::Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap(), "0123abcd")
}

#[test]
fn html_is_escaped_text_and_headers_are_not() {
    let templates = Templates::compile(sources()).unwrap();
    let r = templates.render(&context(&[("name", "<script>x</script>"), ("id", "7&8")]), LIMIT).unwrap();
    assert_eq!(r.html.as_deref(), Some("<p>&lt;script&gt;x&lt;&#x2F;script&gt;</p>"));
    assert_eq!(r.text.as_deref(), Some("Hi <script>x</script>\n"));
    assert_eq!(r.subject, "Hello <script>x</script>");
    assert_eq!(r.attachments, ["files/7&8.pdf"]);
    assert_eq!(r.headers, [("X-Campaign".to_string(), "c-7&8".to_string())]);
    assert_eq!(r.list_unsubscribe.as_deref(), Some("https://example.com/u/7&8"));
    assert_eq!(r.return_path.as_deref(), Some("bounces+0123abcd@example.com"));
}

#[test]
fn a_missing_variable_is_an_error_with_its_line() {
    let mut s = sources();
    s.text = Some(file("t/mail.txt", "Hi\n\n{{ nme | upper }}\n"));
    let templates = Templates::compile(s).unwrap();
    let err = templates.render(&context(&[("name", "Ann"), ("id", "1")]), LIMIT).unwrap_err();
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
        let err = templates.render(&context(&[("name", bad), ("id", "1")]), LIMIT).unwrap_err();
        assert!(matches!(&err, RenderError::Injection { origin } if origin.to_string().ends_with("subject")), "{err}");
    }
    let err = templates.render(&context(&[("name", "ok"), ("id", "1\n2")]), LIMIT).unwrap_err();
    assert!(matches!(err, RenderError::Injection { .. }));
}

#[test]
fn templates_are_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
}

fn with_text(text: &str) -> Result<Templates, Vec<RenderError>> {
    let mut s = sources();
    s.text = Some(file("t/mail.txt", text));
    Templates::compile(s)
}

#[test]
fn functions_that_read_the_world_are_refused_with_their_line() {
    let cases = [
        ("Hi\n{{ get_env(name=\"MAILSHOT_PASSWORD\") }}\n", 2, "`get_env()` reads the environment"),
        ("{{ now() | date }}", 1, "`now()` reads the clock"),
        ("\n\n{% set n = get_random(end=10) %}{{ n }}", 3, "`get_random()` draws a random number"),
        ("{% macro m() %}\n{{ name | default(value=now()) }}{% endmacro %}{{ self::m() }}", 2, "`now()`"),
        ("{% if name %}{% else %}\n{{ \"x\" ~ get_env(name=\"HOME\") }}{% endif %}", 2, "`get_env()`"),
    ];
    for (text, line, what) in cases {
        let errors = with_text(text).map(|_| ()).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(text[0].starts_with(&format!("t/mail.txt:{line}: {what}")), "{text:?}");
        assert!(text[0].ends_with("templates are pure functions of the row"), "{text:?}");
    }
}

#[test]
fn include_import_and_extends_are_refused() {
    for (text, tag) in [
        ("{% include \"subject\" %}", "include"),
        ("{% include \"body.txt\" %}", "include"),
        ("{% import \"subject\" as m %}x", "import"),
    ] {
        let errors = with_text(text).map(|_| ()).unwrap_err();
        assert!(errors[0].to_string().contains(&format!("`{{% {tag} %}}` is not supported")), "{errors:?}");
    }
}

#[test]
fn the_impure_functions_refuse_even_where_audit_cannot_see_them() {
    let mut tera = Tera::default();
    functions::install(&mut tera);
    tera.add_raw_template("t", "{{ get_env(name=\"HOME\") }}").unwrap();
    let err = tera.render("t", &Context::new()).unwrap_err();
    let mut deepest: &dyn std::error::Error = &err;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    assert!(deepest.to_string().contains("reads the environment"), "{deepest}");
}

#[test]
fn the_messages_date_is_a_variable_and_the_same_date_renders_the_same_bytes() {
    let templates = with_text("sent {{ mailshot.date }} / {{ mailshot.date | date(format=\"%e %B %Y\") }}").unwrap();
    let r = templates.render(&context(&[("name", "Ann"), ("id", "1")]), LIMIT).unwrap();
    assert_eq!(r.text.as_deref(), Some("sent 2026-11-02T09:30:00Z /  2 November 2026"));
    assert_eq!(templates.render(&context(&[("name", "Ann"), ("id", "1")]), LIMIT).unwrap(), r);
}

#[test]
fn a_timestamp_out_of_range_is_an_error_not_a_panic() {
    let templates = with_text("{{ id | int | date }}").unwrap();
    let err = templates.render(&context(&[("name", "Ann"), ("id", "99999999999999")]), LIMIT).unwrap_err();
    assert!(err.to_string().contains("not a representable time"), "{err}");
    let ok = templates.render(&context(&[("name", "Ann"), ("id", "86400")]), LIMIT).unwrap();
    assert_eq!(ok.text.as_deref(), Some("1970-01-02"));
}

#[test]
fn range_is_bounded_and_step_0_is_refused() {
    let templates = with_text("{% for i in range(end=n | int) %}{% endfor %}").unwrap();
    let err = templates.render(&context(&[("name", "Ann"), ("id", "1"), ("n", "100000000")]), LIMIT).unwrap_err();
    assert!(err.to_string().contains("at most 100000 are allowed"), "{err}");
    let templates = with_text("{% for i in range(end=5, step_by=0) %}x{% endfor %}").unwrap();
    assert!(templates.render(&context(&[("name", "Ann"), ("id", "1")]), LIMIT).is_err());
}

#[test]
fn a_name_no_column_gives_is_found_in_every_template_once_at_its_first_line() {
    let mut s = sources();
    s.subject = inline("[message] subject", "Hello {{ nme }} of {{ campaign }}");
    s.text = Some(file("t/mail.txt", "Hi\n\n{{ nme }} {{ mailshot.date }}\n{{ nme }}\n"));
    s.html = Some(file("t/mail.html", "<p>{{ nme }}</p>"));
    s.headers = vec![("X-Campaign".into(), inline("[message] headers.X-Campaign", "{{ campaign }}"))];
    let templates = Templates::compile(s).unwrap();
    let columns = ["email".to_string(), "name".into()];
    let why = |name: &str| format!("`{name}` is missing");
    let found: Vec<String> = templates.undefined(&columns, why).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "job.toml:4: [message] subject: `nme` is missing",
            "job.toml:4: [message] subject: `campaign` is missing",
            "t/mail.txt:3: `nme` is missing",
            "t/mail.html:1: `nme` is missing",
            "job.toml:4: [message] attachments: `id` is missing",
            "job.toml:4: [message] headers.X-Campaign: `campaign` is missing",
            "job.toml:4: [message] list_unsubscribe: `id` is missing",
        ]
    );
    let templates = templates.with_job_values(vec![("campaign".into(), "spring".into())]);
    let found: Vec<String> = templates.undefined(&columns, why).iter().map(ToString::to_string).collect();
    assert_eq!(found.len(), 5, "{found:?}");
    assert!(templates.undefined(&[columns.as_slice(), &["nme".into(), "id".into()]].concat(), why).is_empty());
}

#[test]
fn job_values_are_variables_in_every_template() {
    let mut s = sources();
    s.text = Some(file("t/mail.txt", "{{ campaign }}/{{ name }}"));
    let templates = Templates::compile(s).unwrap().with_job_values(vec![("campaign".into(), "spring".into())]);
    let columns = Columns {
        names: vec!["name".into(), "id".into()],
        email: 0,
        name: None,
        key: None,
        copies: Default::default(),
    };
    let context = templates.context(&columns, &["Ann".into(), "1".into()], chrono::Utc::now(), "0123abcd");
    assert_eq!(templates.render(&context, LIMIT).unwrap().text.as_deref(), Some("spring/Ann"));
}
