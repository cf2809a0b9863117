//! Where a template problem is: the template's origin (a file, or a key of the job file) and a line in it.
//!
//! Tera reports syntax errors with `--> line:column`, but runtime errors ("Variable `nme` not found") carry
//! no position; for those the line is the first one that mentions the name inside `{{ }}` or `{% %}`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Source;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// An inline template in the job file, e.g. `[message] subject` on line 7.
    Inline { file: PathBuf, line: usize, key: String },
    /// A template file (`[message] text` / `html`).
    File(PathBuf),
}

impl Origin {
    pub fn file(&self) -> &Path {
        match self {
            Origin::Inline { file, .. } | Origin::File(file) => file,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Inline { file, line, key } => write!(f, "{}:{line}: {key}", file.display()),
            Origin::File(file) => write!(f, "{}", file.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{}: {message}", place(origin, *line))]
    Template { origin: Origin, line: Option<usize>, message: String },
    #[error("{origin}: the rendered value contains CR or LF (header injection); refused")]
    Injection { origin: Origin },
    #[error("{origin}: rendering stopped at [limits] message_bytes ({limit} bytes): does a loop run away?")]
    TooLarge { origin: Origin, limit: u64 },
}

fn place(origin: &Origin, line: Option<usize>) -> String {
    match (origin, line) {
        (Origin::File(file), Some(line)) => format!("{}:{line}", file.display()),
        (Origin::Inline { .. }, Some(line)) if line > 1 => format!("{origin} (template line {line})"),
        _ => origin.to_string(),
    }
}

impl RenderError {
    /// A problem with no line.
    pub(super) fn from_message(source: &Source, message: String) -> RenderError {
        RenderError::Template { origin: source.origin.clone(), line: None, message }
    }

    /// A problem found in `source` before rendering, placed on the first line that mentions `word`.
    pub(super) fn at_word(source: &Source, word: &str, message: String) -> RenderError {
        let line = if word.is_empty() { None } else { line_mentioning(&source.text, word) };
        RenderError::Template { origin: source.origin.clone(), line, message }
    }

    pub fn origin(&self) -> &Origin {
        match self {
            RenderError::Template { origin, .. }
            | RenderError::Injection { origin }
            | RenderError::TooLarge { origin, .. } => origin,
        }
    }

    /// Turns Tera's error chain into one message with a line.
    pub(super) fn from_tera(error: &tera::Error, source: &Source) -> RenderError {
        let mut deepest: &dyn std::error::Error = error;
        while let Some(next) = deepest.source() {
            deepest = next;
        }
        let text = deepest.to_string();
        let (line, message) = match syntax_position(&text) {
            Some(line) => (Some(line), syntax_message(&text)),
            None => {
                let message = strip_rendering_suffix(&text);
                (mentioned_name(&message).and_then(|name| line_mentioning(&source.text, name)), message)
            }
        };
        RenderError::Template { origin: source.origin.clone(), line, message: shortened(message) }
    }
}

/// Tera's messages may quote a value (a whole CSV cell): a report line keeps the first 300 characters.
fn shortened(message: String) -> String {
    match message.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// `" --> 3:5"` in a pest error → 3.
fn syntax_position(text: &str) -> Option<usize> {
    let rest = text.split("--> ").nth(1)?;
    rest.split(':').next()?.trim().parse().ok()
}

/// The `= expected …` line of a pest error, or the whole text.
fn syntax_message(text: &str) -> String {
    let expected = text.lines().rev().find_map(|l| l.trim_start().strip_prefix("= "));
    format!("syntax error: {}", expected.unwrap_or(text).trim())
}

fn strip_rendering_suffix(text: &str) -> String {
    const MARK: &str = " while rendering '";
    let Some(start) = text.find(MARK) else { return text.to_owned() };
    let after = &text[start + MARK.len()..];
    let tail = after.find('\'').map_or("", |end| &after[end + 1..]);
    format!("{}{tail}", &text[..start])
}

/// The root of the first `backticked` name in a runtime error (`user.name` → `user`).
fn mentioned_name(message: &str) -> Option<&str> {
    let name = message.split('`').nth(1)?;
    name.split(['.', '[']).next().filter(|n| !n.is_empty())
}

/// The first line where `name` appears as a whole word inside a Tera tag.
pub(super) fn line_mentioning(text: &str, name: &str) -> Option<usize> {
    let word = |line: &str| {
        line.match_indices(name).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + name.len()..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !ident(before) && !ident(after) && line[..at].contains(['{'])
        })
    };
    text.lines().position(word).map(|i| i + 1)
}
