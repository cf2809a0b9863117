//! Templates that only substitute variables — text, comments and `{{ name }}` with no filter, tag or
//! expression, which is most of what a mail merge renders — written out without Tera's interpreter.
//!
//! Tera renders each recipient from a `Context` it builds as a JSON map (every column turned into a
//! `serde_json::Value`), and looks every `{{ name }}` up through its call stack, a path split and a map
//! search: for a 2 KB body with fifty variables that is half of `check`'s instructions. A plain template
//! needs none of it: its pieces are fixed at compile time, and a variable is a column's cell, a job value,
//! or one of `mailshot.date` / `mailshot.recipient_token`.
//!
//! The output is Tera's, byte for byte (the tests render both ways): text as written (whitespace control
//! such as `{{- x }}` is already applied by Tera's parser), a string variable as is, or through
//! [`tera::escape_html`] when Tera would escape (a template whose name ends in one of Tera's autoescape
//! suffixes). Anything else — a filter, `if`, `set`, a macro, `mailshot` itself, a name that is no column
//! or job value in this CSV (Tera's error says which) — is Tera's to render.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;

use chrono::{DateTime, SecondsFormat, Utc};
use tera::ast::{ExprVal, Node};
use tera::{Template, Tera};

use super::RESERVED_COLUMN;
use super::capped::Capped;

/// One recipient's variables, as [`super::Templates::render`] receives them.
pub struct Vars<'a> {
    /// The CSV header, in column order.
    pub names: &'a [String],
    /// The row's cells, in the same order.
    pub fields: &'a [String],
    /// `mailshot.date`: the message's Date.
    pub date: DateTime<Utc>,
    /// `mailshot.recipient_token`.
    pub recipient_token: &'a str,
}

impl Vars<'_> {
    /// What `{{ name }}` reads, as Tera's context would find it: columns are inserted first and job values
    /// (`campaign`) after them, and the last insert of a name wins.
    fn get<'v>(&'v self, name: &str, job_values: &'v [(String, String)]) -> Option<&'v str> {
        if let Some((_, value)) = job_values.iter().rev().find(|(n, _)| n == name) {
            return Some(value);
        }
        let mut cells = self.names.iter().zip(self.fields).rev();
        cells.find(|(n, _)| *n == name).map(|(_, value)| value.as_str())
    }

    /// `mailshot.date` as templates see it (RFC 3339, UTC, seconds).
    pub(super) fn date_text(&self) -> String {
        self.date.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

#[derive(Debug)]
enum Piece {
    Text(String),
    /// The value in this slot of [`Plain::values`].
    Value(usize),
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Value {
    /// A column or a job value, by name (columns are known only once the CSV is read).
    Var(String),
    Date,
    RecipientToken,
}

/// A template compiled to its pieces.
#[derive(Debug)]
pub(super) struct Plain {
    pieces: Vec<Piece>,
    /// Each value the template reads, once: a body that says `{{ name }}` fifty times looks it up once.
    values: Vec<Value>,
    escape: bool,
}

impl Plain {
    /// The template's pieces, or `None` when it is more than text and variables.
    pub(super) fn compile(tera: &Tera, template: &Template) -> Option<Plain> {
        let (mut pieces, mut values) = (Vec::with_capacity(template.ast.len()), Vec::new());
        // Slots by value: a template may be megabytes of distinct names (a linear search each was quadratic).
        let mut slots = HashMap::new();
        for node in &template.ast {
            match node {
                Node::Text(text) | Node::Raw(_, text, _) => pieces.push(Piece::Text(text.clone())),
                Node::Comment(..) => {}
                Node::VariableBlock(_, expr) if !expr.negated && expr.filters.is_empty() => match &expr.val {
                    ExprVal::Ident(name) => {
                        let value = variable(name)?;
                        let slot = *slots.entry(value.clone()).or_insert_with(|| {
                            values.push(value);
                            values.len() - 1
                        });
                        pieces.push(Piece::Value(slot));
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
        // Tera's rule (`Renderer::new`): the template's path if it has one, else its name.
        let named = template.path.as_deref().unwrap_or(&template.name);
        let escape = tera.autoescape_suffixes.iter().any(|suffix| named.ends_with(suffix));
        Some(Plain { pieces, values, escape })
    }

    /// Writes the template for `vars`. `Ok(false)`: a variable is not in this row's columns (nothing
    /// written; Tera renders it and says what is missing).
    pub(super) fn render(&self, vars: &Vars, job_values: &[(String, String)], out: &mut Capped) -> io::Result<bool> {
        let mut values = Vec::with_capacity(self.values.len());
        for value in &self.values {
            let text = match value {
                Value::Var(name) => match vars.get(name, job_values) {
                    Some(text) => Cow::Borrowed(text),
                    None => return Ok(false),
                },
                Value::Date => Cow::Owned(vars.date_text()),
                Value::RecipientToken => Cow::Borrowed(vars.recipient_token),
            };
            values.push(match self.escape && text.contains(HTML_SPECIAL) {
                true => Cow::Owned(tera::escape_html(&text)),
                false => text,
            });
        }
        let pieces = self.pieces.iter().map(|piece| match piece {
            Piece::Text(text) => text.as_str(),
            Piece::Value(slot) => &values[*slot],
        });
        out.write_pieces(pieces)?;
        Ok(true)
    }
}

/// What `tera::escape_html` replaces: a value without any is written as it is.
const HTML_SPECIAL: [char; 6] = ['&', '<', '>', '"', '\'', '/'];

/// A variable a plain template may read: a bare name, or one of `mailshot`'s two fields. Not Tera's dump
/// variable, `mailshot` itself (an object), or any other path (`a.b`, `a[0]`).
fn variable(name: &str) -> Option<Value> {
    match name.split_once('.') {
        Some((RESERVED_COLUMN, "date")) => Some(Value::Date),
        Some((RESERVED_COLUMN, "recipient_token")) => Some(Value::RecipientToken),
        Some(_) => None,
        None if name == RESERVED_COLUMN || name == "__tera_context" || name.contains('[') => None,
        None => Some(Value::Var(name.to_owned())),
    }
}
