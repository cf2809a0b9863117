//! Templates: every Tera template of a job compiled once into one `Tera`, rendered per recipient.
//!
//! Escaping is decided here, not by file names: Tera autoescapes only templates whose *name* ends in
//! `.html`/`.htm`/`.xml`, so the HTML body is registered as `body.html` (escaped, even if the file is called
//! `mail.html.tera`) and everything else under names without those suffixes (never escaped; headers by
//! position, so that a header's own name cannot end in one). A variable that is not a CSV column,
//! `mailshot` or a job value (`campaign`) is an error (Tera's default), never an empty string;
//! [`Templates::undefined`] finds such reads in every template at once, before any row is rendered.
//!
//! A template that only substitutes variables is rendered from its pieces, without Tera's interpreter and
//! without building the row's Tera context (`plain`); its output is Tera's, byte for byte.

mod audit;
mod bounded;
mod capped;
mod depth;
mod functions;
mod names;
mod nesting;
mod origin;
mod plain;
mod suggest;

use std::cell::OnceCell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tera::{Context, Tera};

pub use functions::RANGE_MAX;
use origin::Mentions;
pub use origin::{Origin, RenderError, Source};
pub use plain::Vars;
pub use suggest::closest;

use crate::recipients::RESERVED_COLUMN;

const SUBJECT: &str = "subject";
const TEXT: &str = "body.txt";
const HTML: &str = "body.html";
const UNSUBSCRIBE: &str = "list_unsubscribe";
const RETURN_PATH: &str = "return_path";

/// Everything of `[message]` that is a template.
#[derive(Debug, Clone)]
pub struct Sources {
    pub subject: Source,
    pub text: Option<Source>,
    pub html: Option<Source>,
    pub attachments: Vec<Source>,
    pub headers: Vec<(String, Source)>,
    pub list_unsubscribe: Option<Source>,
    pub return_path: Option<Source>,
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
    /// The envelope sender (VERP), not yet checked as an address.
    pub return_path: Option<String>,
}

impl Rendered {
    /// The bytes of every rendered value together (what counts against the message's size limit).
    pub fn size(&self) -> u64 {
        let parts = [Some(&self.subject), self.text.as_ref(), self.html.as_ref(), self.list_unsubscribe.as_ref()];
        let fixed: usize = parts.into_iter().flatten().map(String::len).sum();
        let paths: usize = self.attachments.iter().map(String::len).sum();
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        (fixed + paths + headers) as u64
    }
}

/// The compiled templates: `Send + Sync`, rendered from many worker threads at once.
#[derive(Debug)]
pub struct Templates {
    tera: Tera,
    sources: Sources,
    /// Values of the job file that templates read like columns, as (variable, value).
    job_values: Vec<(String, String)>,
    /// The templates that only substitute variables, by Tera name, rendered without Tera (see `plain`).
    plain: HashMap<String, plain::Plain>,
}

impl Templates {
    /// Compiles every template, reporting every syntax error (not only the first) and everything `audit`
    /// refuses (impure functions, `include` and the like), each with its file and line.
    pub fn compile(sources: Sources) -> Result<Templates, Vec<RenderError>> {
        let mut tera = Tera::default();
        functions::install(&mut tera);
        bounded::install(&mut tera);
        tera.autoescape_on(vec![".html"]);
        let mut errors = Vec::new();
        let mut plain = HashMap::new();
        for (name, source) in names(&sources) {
            // Refused unparsed: Tera's parser would overflow the stack on it.
            if let Err((line, message)) = nesting::prescan(&source.text) {
                errors.push(RenderError::Template { origin: source.origin.clone(), line: Some(line), message });
                continue;
            }
            match tera.add_raw_template(&name, &source.text) {
                Err(e) => errors.push(RenderError::from_tera(&e, source)),
                Ok(()) => {
                    let template = tera.get_template(&name).expect("just added");
                    if let Some(compiled) = plain::Plain::compile(&tera, template) {
                        plain.insert(name.clone(), compiled);
                    }
                    let ast = template.ast.as_slice();
                    // The template's words are indexed only if something is found in it.
                    let mut mentions = None;
                    let mut at_word = |word: &str, message| {
                        let mentions = mentions.get_or_insert_with(|| Mentions::new(&source.text));
                        RenderError::at_word(source, mentions, word, message)
                    };
                    errors.extend(audit::audit(ast).into_iter().map(|f| at_word(f.word, f.message)));
                    errors.extend(depth::check(ast).into_iter().map(|p| at_word(&p.word, p.message)));
                }
            }
        }
        if errors.is_empty() { Ok(Templates { tera, sources, job_values: Vec::new(), plain }) } else { Err(errors) }
    }

    /// Job-level values (`[message] campaign`) templates read as variables, the same for every row.
    pub fn with_job_values(self, job_values: Vec<(String, String)>) -> Templates {
        Templates { job_values, ..self }
    }

    /// Tera's context for `vars`: every CSV column, by its header name, as a string variable; the job values;
    /// and `mailshot.date`, the message's Date (RFC 3339, UTC), the one value that is not the row's or the
    /// job's, the same on every retry because the journal keeps it. (A column named like a job value is
    /// refused by `check`.) `recipient_token` is `mailshot.recipient_token`: what names the recipient in a
    /// VERP address (the left part of its Message-ID, so `bounces` finds it exactly).
    fn context(&self, vars: &Vars) -> Context {
        let mut context = Context::new();
        for (name, value) in vars.names.iter().zip(vars.fields) {
            context.insert(name.as_str(), value);
        }
        for (name, value) in &self.job_values {
            context.insert(name.as_str(), value);
        }
        let ours = serde_json::json!({ "date": vars.date_text(), "recipient_token": vars.recipient_token });
        context.insert(RESERVED_COLUMN, &ours);
        context
    }

    /// Every read of a variable that would be missing with these `columns` (see `names`), once per template
    /// and name, at the first line that mentions it; `why` says what is wrong with a name.
    pub fn undefined(&self, columns: &[String], why: impl Fn(&str) -> String) -> Vec<RenderError> {
        let columns: std::collections::HashSet<&str> = columns.iter().map(String::as_str).collect();
        let known = |name: &str| {
            name == RESERVED_COLUMN || columns.contains(name) || self.job_values.iter().any(|(n, _)| n == name)
        };
        let mut errors = Vec::new();
        for (name, source) in names(&self.sources) {
            let Ok(template) = self.tera.get_template(&name) else { continue };
            let mut mentions = None;
            for variable in names::required(&template.ast).into_iter().filter(|v| !known(v)) {
                let mentions = mentions.get_or_insert_with(|| Mentions::new(&source.text));
                errors.push(RenderError::at_word(source, mentions, variable, why(variable)));
            }
        }
        errors
    }

    /// Renders one recipient, all parts together at most `max_bytes` (`[limits] message_bytes`); `range`
    /// gets a fresh budget. Header values (subject, headers, unsubscribe URL) must not contain CR or LF.
    pub fn render(&self, vars: &Vars, max_bytes: u64) -> Result<Rendered, RenderError> {
        functions::new_message();
        bounded::new_message(max_bytes);
        let s = &self.sources;
        let left = std::cell::Cell::new(max_bytes);
        // Built once, and only if a template is more than text and variables.
        let context = OnceCell::new();
        let one = |name: &str, source: &Source| self.one(name, source, vars, &context, &left, max_bytes);
        let line = |name: &str, source: &Source| one_line(one(name, source)?, source);
        Ok(Rendered {
            subject: line(SUBJECT, &s.subject)?,
            text: s.text.as_ref().map(|src| one(TEXT, src)).transpose()?,
            html: s.html.as_ref().map(|src| one(HTML, src)).transpose()?,
            attachments: (s.attachments.iter().enumerate())
                .map(|(i, src)| line(&attachment_name(i), src))
                .collect::<Result<_, _>>()?,
            headers: (s.headers.iter().enumerate())
                .map(|(i, (name, src))| Ok((name.clone(), line(&header_name(i), src)?)))
                .collect::<Result<_, _>>()?,
            list_unsubscribe: s.list_unsubscribe.as_ref().map(|src| line(UNSUBSCRIBE, src)).transpose()?,
            return_path: s.return_path.as_ref().map(|src| line(RETURN_PATH, src)).transpose()?,
        })
    }

    /// One part, written into what is `left` of the message's bytes.
    fn one(
        &self,
        name: &str,
        source: &Source,
        vars: &Vars,
        context: &OnceCell<Context>,
        left: &std::cell::Cell<u64>,
        max_bytes: u64,
    ) -> Result<String, RenderError> {
        let mut out = capped::Capped::new(left.get());
        let rendered = match self.plain.get(name).map(|plain| plain.render(vars, &self.job_values, &mut out)) {
            Some(Ok(true)) => Ok(Ok(())),
            // Writing into memory fails only at the cap.
            Some(Err(_)) => return Err(RenderError::TooLarge { origin: source.origin.clone(), limit: max_bytes }),
            Some(Ok(false)) | None => {
                let context = context.get_or_init(|| self.context(vars));
                // A panic inside a Tera builtin (chrono's formatting, say) is a refused template, not a crash.
                catch_unwind(AssertUnwindSafe(|| self.tera.render_to(name, context, &mut out)))
            }
        };
        match rendered {
            Ok(Ok(())) => {
                left.set(left.get() - out.bytes.len() as u64);
                // Tera writes only whole `str`s, so what it wrote is UTF-8.
                String::from_utf8(out.bytes).map_err(|_| RenderError::from_message(source, "not UTF-8".into()))
            }
            Ok(Err(_)) if out.full => Err(RenderError::TooLarge { origin: source.origin.clone(), limit: max_bytes }),
            Ok(Err(e)) => Err(RenderError::from_tera(&e, source)),
            Err(_) => Err(RenderError::from_message(
                source,
                "Tera failed inside a filter or function (see the message above); refused".into(),
            )),
        }
    }
}

/// A value that ends up in a header or a path: CR or LF would start a new header (injection), so refuse.
fn one_line(value: String, source: &Source) -> Result<String, RenderError> {
    if value.contains(['\r', '\n']) {
        return Err(RenderError::Injection { origin: source.origin.clone() });
    }
    Ok(value)
}

fn attachment_name(i: usize) -> String {
    format!("attachment-{i}")
}

/// By position, not by the header's name: a header called `X-Report.html` would otherwise get a Tera name
/// ending in `.html`, and Tera would escape its value (headers are never escaped).
fn header_name(i: usize) -> String {
    format!("header-{i}")
}

/// The Tera name of each template; the suffixes decide autoescaping (see the module doc).
fn names(s: &Sources) -> impl Iterator<Item = (String, &Source)> {
    let fixed = [(SUBJECT, Some(&s.subject)), (TEXT, s.text.as_ref()), (HTML, s.html.as_ref())];
    let fixed = fixed.into_iter().filter_map(|(n, src)| src.map(|src| (n.to_owned(), src)));
    let attachments = s.attachments.iter().enumerate().map(|(i, src)| (attachment_name(i), src));
    let headers = s.headers.iter().enumerate().map(|(i, (_, src))| (header_name(i), src));
    let unsubscribe = s.list_unsubscribe.iter().map(|src| (UNSUBSCRIBE.to_owned(), src));
    let return_path = s.return_path.iter().map(|src| (RETURN_PATH.to_owned(), src));
    fixed.chain(attachments).chain(headers).chain(unsubscribe).chain(return_path)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
