//! `index.html`: one line per message (recipient, subject, size, link to the .eml) and its HTML body in a
//! sandboxed, lazily loaded iframe, so a person can look through a whole mailing in a browser.
//!
//! Written as the messages are rendered (header, rows, footer): it never holds the mailing in memory.
//! Every value from the CSV or templates is HTML-escaped; bodies are only ever shown inside
//! `<iframe sandbox>` (no scripts, no same-origin access, no forms, no top navigation).

use std::io::{self, Write};

/// One message's line in the index.
pub struct Line<'a> {
    pub row: u64,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub size: usize,
    pub eml: &'a str,
    /// The file holding the HTML body, if the message has one.
    pub html: Option<&'a str>,
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mailshot preview</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: .4em; text-align: left; vertical-align: top; }
iframe { width: 100%; height: 22em; border: 1px solid #ccc; background: #fff; }
</style></head><body>
"#;

pub fn head(out: &mut impl Write, job: &str) -> io::Result<()> {
    out.write_all(HEAD.as_bytes())?;
    writeln!(out, "<h1>Preview of {}</h1>", escape(job))?;
    writeln!(out, "<table><tr><th>Row</th><th>Recipient</th><th>Subject</th><th>Size</th><th>HTML body</th></tr>")
}

pub fn line(out: &mut impl Write, l: &Line<'_>) -> io::Result<()> {
    let body = match l.html {
        Some(file) => format!(r#"<iframe sandbox="" loading="lazy" src="{}"></iframe>"#, escape(file)),
        None => "<em>text only</em>".to_owned(),
    };
    writeln!(
        out,
        r#"<tr><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{body}</td></tr>"#,
        l.row,
        escape(l.recipient),
        escape(l.eml),
        escape(l.subject),
        l.size
    )
}

pub fn foot(out: &mut impl Write, count: u64, bytes: u64) -> io::Result<()> {
    writeln!(out, "</table><p>{count} messages, {bytes} bytes.</p></body></html>")
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_bodies_sandboxed() {
        let mut out = Vec::new();
        let l = Line {
            row: 2,
            recipient: "Eve <e@x.com>",
            subject: "<script>alert(1)</script>",
            size: 10,
            eml: "a.eml",
            html: Some("a\".html"),
        };
        line(&mut out, &l).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains(r#"<iframe sandbox="" loading="lazy" src="a&quot;.html">"#), "{html}");
        assert!(html.contains("Eve &lt;e@x.com&gt;"), "{html}");
    }
}
