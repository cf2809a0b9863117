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

/// A CSV row: header names and cells.
struct Row {
    names: Vec<String>,
    fields: Vec<String>,
}

impl Row {
    fn vars(&self) -> Vars<'_> {
        let date = chrono::Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap();
        Vars { names: &self.names, fields: &self.fields, date, recipient_token: "0123abcd" }
    }
}

fn row(pairs: &[(&str, &str)]) -> Row {
    Row {
        names: pairs.iter().map(|(k, _)| k.to_string()).collect(),
        fields: pairs.iter().map(|(_, v)| v.to_string()).collect(),
    }
}

#[test]
fn html_is_escaped_text_and_headers_are_not() {
    let templates = Templates::compile(sources()).unwrap();
    let r = templates.render(&row(&[("name", "<script>x</script>"), ("id", "7&8")]).vars(), LIMIT).unwrap();
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
    let err = templates.render(&row(&[("name", "Ann"), ("id", "1")]).vars(), LIMIT).unwrap_err();
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
        let err = templates.render(&row(&[("name", bad), ("id", "1")]).vars(), LIMIT).unwrap_err();
        assert!(matches!(&err, RenderError::Injection { origin } if origin.to_string().ends_with("subject")), "{err}");
    }
    let err = templates.render(&row(&[("name", "ok"), ("id", "1\n2")]).vars(), LIMIT).unwrap_err();
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
    let r = templates.render(&row(&[("name", "Ann"), ("id", "1")]).vars(), LIMIT).unwrap();
    assert_eq!(r.text.as_deref(), Some("sent 2026-11-02T09:30:00Z /  2 November 2026"));
    assert_eq!(templates.render(&row(&[("name", "Ann"), ("id", "1")]).vars(), LIMIT).unwrap(), r);
}

#[test]
fn a_timestamp_out_of_range_is_an_error_not_a_panic() {
    let templates = with_text("{{ id | int | date }}").unwrap();
    let err = templates.render(&row(&[("name", "Ann"), ("id", "99999999999999")]).vars(), LIMIT).unwrap_err();
    assert!(err.to_string().contains("not a representable time"), "{err}");
    let ok = templates.render(&row(&[("name", "Ann"), ("id", "86400")]).vars(), LIMIT).unwrap();
    assert_eq!(ok.text.as_deref(), Some("1970-01-02"));
}

#[test]
fn range_is_bounded_and_step_0_is_refused() {
    let templates = with_text("{% for i in range(end=n | int) %}{% endfor %}").unwrap();
    let err = templates.render(&row(&[("name", "Ann"), ("id", "1"), ("n", "100000000")]).vars(), LIMIT).unwrap_err();
    assert!(err.to_string().contains("at most 100000 are allowed"), "{err}");
    let templates = with_text("{% for i in range(end=5, step_by=0) %}x{% endfor %}").unwrap();
    assert!(templates.render(&row(&[("name", "Ann"), ("id", "1")]).vars(), LIMIT).is_err());
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
fn many_unknown_names_are_each_placed_on_their_own_line() {
    // 5,000 names, each first named on line 2i + 2 and again later; the index answers them all.
    let body: String = (0..5_000).map(|i| format!("text v{i} outside a tag\nHi {{{{ v{i} }}}}\n")).collect();
    let mut s = sources();
    s.text = Some(file("t/mail.txt", &format!("{body}{{{{ v0 }}}} {{{{ v4999 }}}}\n")));
    let templates = Templates::compile(s).unwrap();
    let columns = ["email".to_string(), "name".into(), "id".into()];
    let found: Vec<String> =
        templates.undefined(&columns, |n| format!("`{n}`")).iter().map(ToString::to_string).collect();
    let expected: Vec<String> = (0..5_000).map(|i| format!("t/mail.txt:{}: `v{i}`", 2 * i + 2)).collect();
    assert_eq!(found, expected);
}

#[test]
fn job_values_are_variables_in_every_template() {
    let mut s = sources();
    s.text = Some(file("t/mail.txt", "{{ campaign }}/{{ name }}"));
    let templates = Templates::compile(s).unwrap().with_job_values(vec![("campaign".into(), "spring".into())]);
    let row = row(&[("name", "Ann"), ("id", "1")]);
    assert_eq!(templates.render(&row.vars(), LIMIT).unwrap().text.as_deref(), Some("spring/Ann"));
}

// Plain templates (text and variables) are rendered without Tera (`plain`): the same bytes as Tera's.

/// `sources` compiled twice with the same job values: as `render` uses them, and with every template left
/// to Tera.
fn fast_and_tera(sources: Sources, job_values: &[(&str, &str)]) -> (Templates, Templates) {
    let values: Vec<(String, String)> = job_values.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    let fast = Templates::compile(sources.clone()).unwrap().with_job_values(values.clone());
    let mut tera_only = Templates::compile(sources).unwrap().with_job_values(values);
    tera_only.plain.clear();
    (fast, tera_only)
}

/// Renders `sources` both ways (see [`fast_and_tera`]) under `[limits] message_bytes`.
fn both_ways(
    sources: Sources,
    job_values: &[(&str, &str)],
    row: &Row,
) -> (Result<Rendered, String>, Result<Rendered, String>) {
    let (fast, tera_only) = fast_and_tera(sources, job_values);
    let render = |t: &Templates| t.render(&row.vars(), LIMIT).map_err(|e| e.to_string());
    (render(&fast), render(&tera_only))
}

#[test]
fn the_samples_kind_of_template_is_plain_and_renders_as_tera_does() {
    let templates = Templates::compile(sources()).unwrap();
    let plain: std::collections::BTreeSet<&str> = templates.plain.keys().map(String::as_str).collect();
    let all = ["attachment-0", "body.html", "body.txt", "header-0", "list_unsubscribe", "return_path", "subject"];
    assert_eq!(plain, all.into_iter().collect());
    let row = row(&[("name", "<Ann & 'Bo'/>"), ("id", "7\"8")]);
    let (fast, tera) = both_ways(sources(), &[], &row);
    assert_eq!(fast, tera);
    assert_eq!(fast.unwrap().html.as_deref(), Some("<p>&lt;Ann &amp; &#x27;Bo&#x27;&#x2F;&gt;</p>"));
}

#[test]
fn filters_tags_paths_and_mailshot_itself_are_left_to_tera() {
    let cases = [
        "{{ name | upper }}",
        "{% if name %}x{% endif %}",
        "{% set a = name %}{{ a }}",
        "{{ not name }}",
        "{{ mailshot }}",
        "{{ mailshot.nothing }}",
        "{{ name.first }}",
        "{{ __tera_context }}",
        "{{ 'text' }}",
        "{{ name ~ id }}",
        "{% raw %}{{ name }}{% endraw %} {{ name }}",
    ];
    for (i, text) in cases.into_iter().enumerate() {
        let mut s = sources();
        s.text = Some(file("t/mail.txt", text));
        let templates = Templates::compile(s.clone()).unwrap();
        // Raw is plain text to Tera's parser: the last case is plain, the others are not.
        assert_eq!(templates.plain.contains_key(TEXT), i == cases.len() - 1, "{text}");
        let (fast, tera) = both_ways(s, &[], &row(&[("name", "Ann"), ("id", "1")]));
        assert_eq!(fast, tera, "{text}");
    }
}

#[test]
fn a_plain_template_meets_the_size_cap_and_a_missing_name_gets_teras_error() {
    let mut s = sources();
    s.text = Some(file("t/mail.txt", "{{ name }}{{ name }}"));
    let (templates, tera_only) = fast_and_tera(s, &[]);
    assert!(templates.plain.contains_key(TEXT));
    let long = "x".repeat(600);
    let vars_row = row(&[("name", long.as_str()), ("id", "1")]);
    // Subject 606 bytes, text 1,200, HTML 607, then the short parts.
    for limit in [1_000, 1_805, 1_806, 2_412, 2_413, 4_000] {
        let fast = templates.render(&vars_row.vars(), limit);
        let tera = tera_only.render(&vars_row.vars(), limit);
        assert_eq!(fast.as_ref().map_err(|e| e.to_string()), tera.as_ref().map_err(|e| e.to_string()));
        assert_eq!(matches!(fast, Err(RenderError::TooLarge { .. })), limit < 4_000, "{limit}");
    }
    assert!(templates.render(&vars_row.vars(), 4_000).is_ok());
    let (fast, tera) = both_ways(sources(), &[], &row(&[("nme", "Ann"), ("id", "1")]));
    assert_eq!(fast, tera);
    assert_eq!(fast.unwrap_err(), "job.toml:4: [message] subject: Variable `name` not found in context");
}

#[test]
fn job_values_win_over_a_column_and_the_last_of_two_columns_wins_as_in_teras_context() {
    let mut s = sources();
    s.text = Some(file("t/mail.txt", "{{ campaign }} {{ name }}"));
    let pairs = [("name", "first"), ("id", "1"), ("campaign", "column"), ("name", "second")];
    let (fast, tera) = both_ways(s, &[("campaign", "job")], &row(&pairs));
    assert_eq!(fast, tera);
    assert_eq!(fast.unwrap().text.as_deref(), Some("job second"));
}

/// Renders `sources` both ways at every cap from 0 bytes to one past the full size, and without a cap.
fn same_at_every_cap(sources: Sources, job_values: &[(&str, &str)], row: &Row) {
    let (fast, tera) = both_ways(sources.clone(), job_values, row);
    assert_eq!(fast, tera, "{sources:?}");
    let (plain, tera_only) = fast_and_tera(sources.clone(), job_values);
    // A failing row (a missing name) still writes parts before it: caps up to a few hundred bytes.
    let full = fast.as_ref().map_or(300, Rendered::size) + 2;
    for cap in 0..full {
        let fast = plain.render(&row.vars(), cap).map_err(|e| e.to_string());
        assert_eq!(fast, tera_only.render(&row.vars(), cap).map_err(|e| e.to_string()), "cap {cap}: {sources:?}");
    }
}

#[test]
fn a_header_named_like_an_html_file_is_not_escaped() {
    let mut s = sources();
    s.headers = vec![
        ("X-Report.html".into(), inline("[message] headers", "{{ name }}")),
        ("X-Page.htm".into(), inline("[message] headers", "a&{{ name | upper }}")),
    ];
    let r = Templates::compile(s).unwrap().render(&row(&[("name", "<b&b>"), ("id", "1")]).vars(), LIMIT).unwrap();
    let expected =
        [("X-Report.html".to_string(), "<b&b>".to_string()), ("X-Page.htm".to_string(), "a&<B&B>".to_string())];
    assert_eq!(r.headers, expected);
}

#[test]
fn edge_templates_render_as_tera_does_at_every_cap() {
    // Empty and comment-only templates, whitespace control around CRLF, comments and raw blocks, a name
    // Tera keeps for loops, names missing in this CSV (in one template, after a plain part), non-ASCII; with
    // HTML specials in the values, duplicate columns, a column named like the job value, a dotted column,
    // and headers named `….html` and `….htm` (never escaped: their Tera names are by position).
    let texts = [
        "",
        "{# only #}",
        "{#- only -#}",
        "  {#- c -#}  ",
        " \r\n{{- name -}}\r\n ",
        "a\r\n{{ name }}\r\nb",
        "{%- raw -%}  {{ x }}  {%- endraw -%}",
        " x {%- raw %} a {% endraw -%} y ",
        "{% raw %}{% endraw %}",
        "{{ loop }}",
        "{{ campaign }}{{campaign}}",
        "{{ mailshot.date }}{{ mailshot.recipient_token }}",
        "{{ missing }}",
        "x{{ name }}{{ missing }}",
        "{{ name }}{{ name }}{{ id }}",
        "é€\u{1F600}{{ name }}",
    ];
    let rows = [
        row(&[("name", "<&>\"'/ é\u{1F600}"), ("id", "1"), ("loop", "L")]),
        row(&[("name", "x"), ("id", "2"), ("loop", "L"), ("name", "dup/2")]),
        row(&[("name", ""), ("id", ""), ("loop", ""), ("campaign", "col"), ("a.b", "d")]),
    ];
    for text in texts {
        let line = text.replace(['\r', '\n'], "");
        for (row, job_values) in rows.iter().flat_map(|r| [(r, &[][..]), (r, &[("campaign", "j&<>")][..])]) {
            let mut s = sources();
            s.subject = inline("[message] subject", &line);
            s.text = Some(file("t/mail.txt", text));
            s.html = Some(file("t/m.html", text));
            s.headers.push(("X-A.html".into(), inline("[message] headers", &line)));
            s.headers.push(("X-B.htm".into(), inline("[message] headers", &line)));
            assert!(Templates::compile(s.clone()).unwrap().plain.len() == 9, "{text}");
            same_at_every_cap(s, job_values, row);
        }
    }
}

mod plain_equals_tera_everywhere {
    use proptest::prelude::*;

    use super::*;

    fn ws() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "-"])
    }

    /// Text, variables (some missing, some duplicated columns), comments and raw blocks, each with or
    /// without whitespace control on either side.
    fn template() -> impl Strategy<Value = String> {
        let text = "[a-z <>&'\"/{}%#\\-\n\r\t é€]{0,8}";
        let var = prop::sample::select(vec![
            "name",
            "id",
            "campaign",
            "mailshot.date",
            "mailshot.recipient_token",
            "missing",
            "loop",
            "dup",
        ]);
        let piece = prop_oneof![
            4 => text,
            4 => (var, ws(), ws()).prop_map(|(v, l, r)| format!("{{{{{l} {v} {r}}}}}")),
            1 => (ws(), ws(), "[a-z \n-]{0,4}").prop_map(|(l, r, t)| format!("{{#{l} {t} {r}#}}")),
            1 => (ws(), ws(), ws(), ws(), "[a-z {}\n \r]{0,6}")
                .prop_map(|(a, b, c, d, t)| format!("{{%{a} raw {b}%}}{t}{{%{c} endraw {d}%}}")),
        ];
        prop::collection::vec(piece, 0..7).prop_map(|pieces| pieces.concat())
    }

    fn value() -> impl Strategy<Value = String> {
        "[a-z <>&'\"/é\u{1F600}\r\n]{0,6}"
    }

    proptest! {
        // 20,000 cases run once (about 90 % of them compile, every template plain).
        #![proptest_config(ProptestConfig::with_cases(800))]
        #[test]
        fn in_every_part_at_any_cap(
            subject in template(), text in template(), html in template(), header in template(),
            name in value(), id in value(), dup in value(), cap in 0u64..120, job_value in any::<bool>(),
        ) {
            let mut s = sources();
            s.subject = inline("[message] subject", &subject);
            s.text = Some(file("t/mail.txt", &text));
            s.html = Some(file("t/mail.html", &html));
            s.headers.push(("X-H.html".into(), inline("[message] headers", &header)));
            let Ok(templates) = Templates::compile(s.clone()) else { return Ok(()) };
            prop_assert_eq!(templates.plain.len(), 8);
            let values: &[(&str, &str)] = if job_value { &[("campaign", "c&<'/")] } else { &[] };
            let (plain, tera_only) = fast_and_tera(s, values);
            let row = row(&[("name", &name), ("dup", "first"), ("id", &id), ("loop", "L"), ("dup", &dup)]);
            for cap in [cap, LIMIT] {
                let fast = plain.render(&row.vars(), cap).map_err(|e| e.to_string());
                prop_assert_eq!(fast, tera_only.render(&row.vars(), cap).map_err(|e| e.to_string()));
            }
        }
    }
}
