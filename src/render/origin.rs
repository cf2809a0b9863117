//! Where a template problem is: the template's origin (a file, or a key of the job file) and a line in it;
//! [`Source`] is a template's text with its origin.
//!
//! Tera reports syntax errors with `--> line:column`, but runtime errors ("Variable `nme` not found") carry
//! no position; for those the line is the first one that mentions the name inside `{{ }}` or `{% %}`.
//! When one template has many such problems (every unknown name `check` finds), their lines come from
//! [`Mentions`], an index of the template's words built in one pass: scanning the template again per
//! name made a 1.2 MB template of 100,000 unknown names take 35 s.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One template's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: Origin,
    pub text: String,
}

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

    /// A problem found in `source` before rendering, placed on the first line that mentions `word`
    /// (`mentions` indexes `source`'s text).
    pub(super) fn at_word(source: &Source, mentions: &mut Mentions<'_>, word: &str, message: String) -> RenderError {
        let line = if word.is_empty() { None } else { mentions.line(word) };
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

/// The first line where `word` appears as a whole word (no word character either side) after a `{` on
/// its line: a scan of the whole template, for one word. [`Mentions`] answers the same for many.
pub(super) fn line_mentioning(text: &str, word: &str) -> Option<usize> {
    if word.is_empty() {
        return None;
    }
    // A word that starts with a word character is whole only where a run of them starts: past a match that
    // is not whole, the next try is after that run (a match that starts inside it has a word character
    // before it). Trying every character instead made a long name after a long run of its letters
    // quadratic (`{aaa…` then `{{ aa… }}`: every place of the run is a match, and each costs the name).
    let skips_runs = word.chars().next().is_some_and(is_word_char);
    let mentions = |line: &str| {
        let Some(brace) = line.find('{') else { return false };
        let mut from = brace + 1;
        while let Some(found) = line[from..].find(word) {
            let at = from + found;
            if is_whole(line, at, word) {
                return true;
            }
            let rest = &line[at..];
            from = at
                + if skips_runs {
                    rest.find(|c| !is_word_char(c)).unwrap_or(rest.len())
                } else {
                    rest.chars().next().map_or(1, char::len_utf8)
                };
        }
        false
    };
    text.split('\n').position(mentions).map(|i| i + 1)
}

/// Does `line` hold `word` at `at` with no word character either side?
fn is_whole(line: &str, at: usize, word: &str) -> bool {
    line.get(at..).is_some_and(|rest| rest.starts_with(word))
        && !line[..at].chars().next_back().is_some_and(is_word_char)
        && !line[at + word.len()..].chars().next().is_some_and(is_word_char)
}

/// Tera's notion of a name's character, for the whole-word test.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// [`line_mentioning`] for many words of one template: one pass indexes the template, then each word's
/// line costs the matches of its rarest run of word characters, and a word asked again costs nothing.
pub(super) struct Mentions<'t> {
    text: &'t str,
    /// Each run of word characters after a `{` on its line: the byte offsets where it starts, in order.
    runs: HashMap<&'t str, Vec<u32>>,
    /// Each line's first byte and its first `{` (`u32::MAX` if none).
    lines: Vec<(u32, u32)>,
    known: HashMap<String, Option<usize>>,
}

impl<'t> Mentions<'t> {
    /// Templates are at most `[limits] message_bytes` (≤ 256 MiB), so offsets fit in a `u32`.
    pub(super) fn new(text: &'t str) -> Mentions<'t> {
        let offset = |at: usize| u32::try_from(at).expect("a template is smaller than 4 GiB");
        let (mut runs, mut lines) = (HashMap::<&str, Vec<u32>>::new(), Vec::new());
        let mut line_start = 0;
        for line in text.split('\n') {
            let brace = line.find('{');
            lines.push((offset(line_start), brace.map_or(u32::MAX, offset)));
            if let Some(brace) = brace {
                let after = brace + 1;
                for (at, run) in word_runs(&line[after..]) {
                    runs.entry(run).or_default().push(offset(line_start + after + at));
                }
            }
            line_start += line.len() + 1;
        }
        Mentions { text, runs, lines, known: HashMap::new() }
    }

    /// The line [`line_mentioning`] would give for `word`.
    pub(super) fn line(&mut self, word: &str) -> Option<usize> {
        if let Some(&line) = self.known.get(word) {
            return line;
        }
        let line = self.find(word);
        self.known.insert(word.to_owned(), line);
        line
    }

    fn find(&self, word: &str) -> Option<usize> {
        if word.contains('\n') {
            return None;
        }
        let word_runs = word_runs(word);
        if word_runs.is_empty() {
            return line_mentioning(self.text, word);
        }
        // Where `word` is whole, each of its runs is a whole run of the text: the matches are among the
        // places of its rarest run (none if a run is never in a tag).
        let mut places = Vec::new();
        for (inner, run) in word_runs {
            places.push((inner, self.runs.get(run)?));
        }
        let (inner, places) = places.into_iter().min_by_key(|(_, places)| places.len())?;
        places.iter().find_map(|&place| {
            let start = (place as usize).checked_sub(inner)?;
            let line = self.lines.partition_point(|&(first, _)| first as usize <= start) - 1;
            let (first, brace) = self.lines[line];
            let end = self.lines.get(line + 1).map_or(self.text.len(), |&(next, _)| next as usize - 1);
            let at = start - first as usize;
            let whole = (brace as usize) < at && is_whole(&self.text[first as usize..end], at, word);
            whole.then_some(line + 1)
        })
    }
}

/// The runs of word characters in `word`, each with its byte offset.
fn word_runs(word: &str) -> Vec<(usize, &str)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (at, c) in word.char_indices().chain([(word.len(), ' ')]) {
        match (start, is_word_char(c)) {
            (None, true) => start = Some(at),
            (Some(from), false) => {
                runs.push((from, &word[from..at]));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exhaustive::texts;
    use proptest::prelude::*;

    /// The rule as plainly as it can be said: some place on the line, after a `{`, holds the word with no
    /// letter, digit or `_` either side.
    fn reference(text: &str, word: &str) -> Option<usize> {
        let letter = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let at_place = |line: &str, at: usize| {
            line.is_char_boundary(at)
                && line[..at].contains('{')
                && line[at..].starts_with(word)
                && !letter(line[..at].chars().next_back())
                && !letter(line[at + word.len()..].chars().next())
        };
        if word.is_empty() {
            return None;
        }
        text.split('\n').position(|line| (0..=line.len()).any(|at| at_place(line, at))).map(|i| i + 1)
    }

    #[test]
    fn the_first_line_that_names_the_word_in_a_tag() {
        let text = "nme outside a tag\n{{ name }}\nHello {{ nme }}, {{ nme }}\n{% for x in nme_list %}\n{{ nme }}";
        let mut mentions = Mentions::new(text);
        for word in ["nme", "name", "x", "nme_list", "for x", "me", "Hello", "list", "{ nme"] {
            assert_eq!(mentions.line(word), reference(text, word), "{word}");
            assert_eq!(line_mentioning(text, word), reference(text, word), "{word}");
        }
        assert_eq!(mentions.line("nme"), Some(3));
        assert_eq!(mentions.line("for x"), Some(4));
        assert_eq!(mentions.line("me"), None, "inside a longer name");
        assert_eq!(mentions.line("Hello"), None, "before the line's first brace");
        assert_eq!(mentions.line("{ nme"), Some(3), "a word of no letters first is still found");
    }

    #[test]
    fn an_overlapping_earlier_match_does_not_hide_a_whole_one() {
        // "a-a" first matches inside "ba-a" (not whole), then whole at the second dash.
        let text = "{ba-a-a }";
        assert_eq!(reference(text, "a-a"), Some(1));
        assert_eq!(line_mentioning(text, "a-a"), Some(1));
        assert_eq!(Mentions::new(text).line("a-a"), Some(1));
    }

    /// Every piece of `text` that starts and ends at a character boundary, and a few words that may be in no
    /// text: the words worth asking about `text`.
    fn words_of(text: &str) -> Vec<String> {
        let cuts: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        let pieces = cuts.iter().flat_map(|&from| cuts.iter().filter(move |&&to| to > from).map(move |&to| (from, to)));
        let extra = ["a", "a a", "{a", "a{", "_", "é", "٣", "::", " ", "\r", "a\r", "\u{301}", "{", "{{", "a\na"];
        pieces.map(|(from, to)| text[from..to].to_owned()).chain(extra.map(String::from)).collect()
    }

    /// The index and the scan against the rule for every short text over characters that test each part of
    /// it: ASCII and multi-byte word characters (a letter, `_`, `é`, an Arabic-Indic digit), multi-byte and
    /// ASCII characters that are not (a combining accent, space), the brace, and both line end bytes (CRLF).
    #[test]
    fn every_short_text_and_each_of_its_pieces_agree_with_the_rule() {
        let texts = texts(&['a', '_', 'é', '٣', '\u{301}', '{', ' ', '\n', '\r'], 4)
            .into_iter()
            .chain(texts(&['a', 'b', '{', ' ', '\n'], 6));
        for text in texts {
            let mut mentions = Mentions::new(&text);
            for word in words_of(&text) {
                let expected = reference(&text, &word);
                assert_eq!(line_mentioning(&text, &word), expected, "scan, text {text:?}, word {word:?}");
                assert_eq!(mentions.line(&word), expected, "index, text {text:?}, word {word:?}");
            }
        }
    }

    #[test]
    fn crlf_line_ends_number_lines_as_lf_does() {
        let text = "Hi\r\n{{ nme }}\r\n{% for x in list %}\r\n{{ x }}\r\n";
        let mut mentions = Mentions::new(text);
        for (word, line) in [("nme", Some(2)), ("for x", Some(3)), ("x", Some(3)), ("list", Some(3)), ("Hi", None)] {
            assert_eq!(line_mentioning(text, word), line, "scan {word}");
            assert_eq!(mentions.line(word), line, "index {word}");
        }
    }

    #[test]
    fn a_long_name_after_a_long_run_of_its_letters_is_found() {
        // Each place in the run `{aaa…` holds the name, not whole: the scan must not try them one by one
        // (50,000 tries of 50,000 bytes each: 30 s here, where a linear scan takes 0.1 s), nor may the index.
        let name = "a".repeat(50_000);
        let text = format!("{{{}\n{{{{ {name} }}}}\n", "a".repeat(100_000));
        assert_eq!(reference_at_runs(&text, &name), Some(2));
        assert_eq!(line_mentioning(&text, &name), Some(2));
        assert_eq!(Mentions::new(&text).line(&name), Some(2));
        let words = format!("{name}-{name}");
        let text = format!("{{{}-{words}\n{{ {words}", "a".repeat(100_000));
        assert_eq!(line_mentioning(&text, &words), Some(1));
        assert_eq!(Mentions::new(&text).line(&words), Some(1));
    }

    /// The rule for a word of word characters only, by the runs of the text (linear, for long texts).
    fn reference_at_runs(text: &str, word: &str) -> Option<usize> {
        text.split('\n')
            .position(|line| {
                line.find('{').is_some_and(|brace| word_runs(&line[brace + 1..]).iter().any(|(_, run)| *run == word))
            })
            .map(|i| i + 1)
    }

    /// The pieces of `text` at `cuts` (start, length in bytes), each widened to character boundaries.
    fn pieces(text: &str, cuts: &[(usize, usize)]) -> Vec<String> {
        let boundary = |from: usize| (from..=text.len()).find(|&i| text.is_char_boundary(i));
        cuts.iter()
            .filter_map(|&(from, len)| {
                let from = boundary(from)?;
                Some(text[from..boundary(from + len)?].to_owned())
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_index_and_the_scan_agree_with_the_rule(
            text in "[ab_é{} .:\n-]{0,60}",
            words in prop::collection::vec("[ab_é{ .:-]{0,5}", 1..6),
            cut in prop::collection::vec((0usize..60, 1usize..6), 0..4),
        ) {
            // Words taken from the text itself, so that many of them are found.
            let mut mentions = Mentions::new(&text);
            for word in words.into_iter().chain(pieces(&text, &cut)) {
                let expected = reference(&text, &word);
                prop_assert_eq!(line_mentioning(&text, &word), expected, "scan, word {:?}", word);
                prop_assert_eq!(mentions.line(&word), expected, "index, word {:?}", word);
            }
        }
    }
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn the_index_and_the_scan_agree_with_the_rule_over_crlf_digits_and_marks(
            text in "[ab1_é٣\u{301}—{} .:\r\n-]{0,80}",
            cuts in prop::collection::vec((0usize..80, 1usize..10), 0..8),
        ) {
            let mut mentions = Mentions::new(&text);
            for word in pieces(&text, &cuts) {
                let expected = reference(&text, &word);
                prop_assert_eq!(line_mentioning(&text, &word), expected, "scan, word {:?}", word);
                prop_assert_eq!(mentions.line(&word), expected, "index, word {:?}", word);
            }
        }
    }
}
