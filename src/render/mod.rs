//! Templates: every Tera template of a job compiled once into one `Tera`, rendered per recipient.
//!
//! Escaping is decided here, not by file names: Tera autoescapes only templates whose *name* ends in
//! `.html`/`.htm`/`.xml`, so the HTML body is registered as `body.html` (escaped, even if the file is called
//! `mail.html.tera`) and everything else under names without those suffixes (never escaped). A variable that
//! is not a CSV column is an error (Tera's default), never an empty string.

mod audit;
mod functions;
mod origin;

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, SecondsFormat, Utc};
use tera::{Context, Tera};

pub use functions::RANGE_MAX;
pub use origin::{Origin, RenderError};

use crate::recipients::{Columns, RESERVED_COLUMN};

const SUBJECT: &str = "subject";
const TEXT: &str = "body.txt";
const HTML: &str = "body.html";
const UNSUBSCRIBE: &str = "list_unsubscribe";

/// One template's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: Origin,
    pub text: String,
}

/// Everything of `[message]` that is a template.
#[derive(Debug, Clone)]
pub struct Sources {
    pub subject: Source,
    pub text: Option<Source>,
    pub html: Option<Source>,
    pub attachments: Vec<Source>,
    pub headers: Vec<(String, Source)>,
    pub list_unsubscribe: Option<Source>,
}

/// One recipient's rendered values, before MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Paths relative to the job folder, not yet checked (see `message::attachment`).
    pub attachments: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub list_unsubscribe: Option<String>,
}

/// The compiled templates: `Send + Sync`, rendered from many worker threads at once.
#[derive(Debug)]
pub struct Templates {
    tera: Tera,
    sources: Sources,
}

impl Templates {
    /// Compiles every template, reporting every syntax error (not only the first).
    /// Compiles every template, reporting every syntax error (not only the first) and everything `audit`
    /// refuses (impure functions, `include` and the like), each with its file and line.
    pub fn compile(sources: Sources) -> Result<Templates, Vec<RenderError>> {
        let mut tera = Tera::default();
        functions::install(&mut tera);
        tera.autoescape_on(vec![".html"]);
        let mut errors = Vec::new();
        for (name, source) in names(&sources) {
            match tera.add_raw_template(&name, &source.text) {
                Err(e) => errors.push(RenderError::from_tera(&e, source)),
                Ok(()) => {
                    let ast = tera.get_template(&name).map(|t| t.ast.as_slice()).unwrap_or_default();
                    let found = audit::audit(ast).into_iter();
                    errors.extend(found.map(|f| RenderError::at_word(source, f.word, f.message)));
                }
            }
        }
        if errors.is_empty() { Ok(Templates { tera, sources }) } else { Err(errors) }
    }

    /// Every CSV column, by its header name, as a string variable; and `mailshot.date`, the message's Date
    /// (RFC 3339, UTC): the one value templates get that is not the row's, the same on every retry because
    /// the journal keeps it.
    pub fn context(columns: &Columns, fields: &[String], date: DateTime<Utc>) -> Context {
        let mut context = Context::new();
        for (name, value) in columns.names.iter().zip(fields) {
            context.insert(name.as_str(), value);
        }
        let ours = serde_json::json!({ "date": date.to_rfc3339_opts(SecondsFormat::Secs, true) });
        context.insert(RESERVED_COLUMN, &ours);
        context
    }

    /// Renders one recipient. Header values (subject, headers, unsubscribe URL) must not contain CR or LF.
    pub fn render(&self, context: &Context) -> Result<Rendered, RenderError> {
        let s = &self.sources;
        let header = |name: &str, source: &Source| self.one_line(name, source, context);
        Ok(Rendered {
            subject: header(SUBJECT, &s.subject)?,
            text: s.text.as_ref().map(|src| self.one(TEXT, src, context)).transpose()?,
            html: s.html.as_ref().map(|src| self.one(HTML, src, context)).transpose()?,
            attachments: (s.attachments.iter().enumerate())
                .map(|(i, src)| self.one_line(&attachment_name(i), src, context))
                .collect::<Result<_, _>>()?,
            headers: (s.headers.iter())
                .map(|(name, src)| Ok((name.clone(), header(&header_name(name), src)?)))
                .collect::<Result<_, _>>()?,
            list_unsubscribe: s.list_unsubscribe.as_ref().map(|src| header(UNSUBSCRIBE, src)).transpose()?,
        })
    }

    fn one(&self, name: &str, source: &Source, context: &Context) -> Result<String, RenderError> {
        // A panic inside a Tera builtin (chrono's formatting, say) is a refused template, not a crash.
        let rendered = catch_unwind(AssertUnwindSafe(|| self.tera.render(name, context)));
        match rendered {
            Ok(result) => result.map_err(|e| RenderError::from_tera(&e, source)),
            Err(_) => Err(RenderError::Template {
                origin: source.origin.clone(),
                line: None,
                message: "Tera failed inside a filter or function (see the message above); refused".into(),
            }),
        }
    }

    /// A value that ends up in a header or a path: CR or LF would start a new header (injection), so refuse.
    fn one_line(&self, name: &str, source: &Source, context: &Context) -> Result<String, RenderError> {
        let value = self.one(name, source, context)?;
        if value.contains(['\r', '\n']) {
            return Err(RenderError::Injection { origin: source.origin.clone() });
        }
        Ok(value)
    }
}

fn attachment_name(i: usize) -> String {
    format!("attachment-{i}")
}

fn header_name(name: &str) -> String {
    format!("header-{name}")
}

/// The Tera name of each template; the suffixes decide autoescaping (see the module doc).
fn names(s: &Sources) -> impl Iterator<Item = (String, &Source)> {
    let fixed = [(SUBJECT, Some(&s.subject)), (TEXT, s.text.as_ref()), (HTML, s.html.as_ref())];
    let fixed = fixed.into_iter().filter_map(|(n, src)| src.map(|src| (n.to_owned(), src)));
    let attachments = s.attachments.iter().enumerate().map(|(i, src)| (attachment_name(i), src));
    let headers = s.headers.iter().map(|(n, src)| (header_name(n), src));
    let unsubscribe = s.list_unsubscribe.iter().map(|src| (UNSUBSCRIBE.to_owned(), src));
    fixed.chain(attachments).chain(headers).chain(unsubscribe)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
