//! Before Tera parses a template: how deep its blocks nest and how many operators one tag holds.
//!
//! Why before: Tera parses and renders recursively, on the thread's stack. A template nesting a thousand
//! `{% for %}`, or one tag chaining thousands of `+` or brackets, overflows the stack (SIGABRT, exit 134)
//! inside Tera's parser, before any error could name the file. Counting on the text is cheap and needs no
//! parser: tags are found by their delimiters, string literals and comments skipped, `{% raw %}` passed over.
//! `depth` then bounds what the parsed template can reach through macro calls.

/// Blocks (`for`, `if`, `macro`, `filter`, `block`) nested inside each other, at most.
pub const MAX_NESTING: usize = 32;
/// Operators and opening brackets in one `{{ }}` or `{% %}` tag, at most.
pub const MAX_OPERATORS: usize = 100;

const OPENING: [&str; 5] = ["for", "if", "macro", "filter", "block"];
const WORD_OPERATORS: [&str; 5] = ["and", "or", "not", "in", "is"];

/// The first place the template is too deep or too long, as (line, what is wrong).
pub(super) fn prescan(text: &str) -> Result<(), (usize, String)> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(found) = text[at..].find('{') {
        let start = at + found;
        let rest = &text[start..];
        let line = || text[..start].matches('\n').count() + 1;
        let close = match rest.as_bytes().get(1) {
            Some(b'#') => "#}",
            Some(b'%') => "%}",
            Some(b'{') => "}}",
            _ => {
                at = start + 1;
                continue;
            }
        };
        let Some(len) = tag_length(&rest[2..], close) else { return Ok(()) };
        let content = rest[2..2 + len].trim_matches('-').trim();
        at = start + 2 + len + 2;
        if close == "#}" {
            continue;
        }
        if operators(content) > MAX_OPERATORS {
            return Err((line(), format!("a tag with more than {MAX_OPERATORS} operators and brackets; split it up")));
        }
        if close == "%}" {
            let word = content.split_whitespace().next().unwrap_or("");
            if word == "raw" {
                at = end_of_raw(text, at);
            } else if OPENING.contains(&word) {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err((line(), format!("blocks nested more than {MAX_NESTING} deep")));
                }
            } else if word.starts_with("end") {
                depth = depth.saturating_sub(1);
            }
        }
    }
    Ok(())
}

/// The length of a tag's content up to its closing delimiter, string literals skipped; `None` if unclosed.
fn tag_length(rest: &str, close: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in rest.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if close != "#}" && matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if rest[i..].starts_with(close) => return Some(i),
            None => {}
        }
    }
    None
}

/// Operators and opening brackets outside string literals.
fn operators(content: &str) -> usize {
    let mut count = 0;
    let mut quote = None;
    let mut word = String::new();
    for c in content.chars().chain([' ']) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if c.is_alphanumeric() || c == '_' => word.push(c),
            None => {
                count += usize::from(WORD_OPERATORS.contains(&word.as_str()));
                word.clear();
                count += usize::from("([+-*/%~<>=!".contains(c));
            }
        }
    }
    count
}

/// Where the text continues after `{% endraw %}` (the end of the text if there is none).
fn end_of_raw(text: &str, from: usize) -> usize {
    let mut at = from;
    while let Some(found) = text[at..].find("{%") {
        let start = at + found + 2;
        let Some(len) = text[start..].find("%}") else { break };
        if text[start..start + len].trim_matches('-').trim() == "endraw" {
            return start + len + 2;
        }
        at = start;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_templates_pass() {
        let text = "{# a {% for %} in a comment #}\n{% for x in list %}{% if x == \"{{ }}\" or not y %}\
                    {{ x | upper }}{% endif %}{% endfor %}{% raw %}{% for %}{% for %}{% endraw %}";
        assert_eq!(prescan(text), Ok(()));
        assert_eq!(prescan("{{ unclosed"), Ok(()), "Tera reports its own syntax errors");
    }

    #[test]
    fn deep_blocks_are_refused_with_the_line() {
        let ok = "{% if a %}".repeat(MAX_NESTING) + &"{% endif %}".repeat(MAX_NESTING);
        assert_eq!(prescan(&ok), Ok(()));
        let deep = format!("x\n\n{}", "{% for a in b %}\n".repeat(1000));
        let (line, what) = prescan(&deep).unwrap_err();
        assert_eq!((line, what.as_str()), (3 + MAX_NESTING, "blocks nested more than 32 deep"));
        let sequential = "{% if a %}{% endif %}".repeat(10_000);
        assert_eq!(prescan(&sequential), Ok(()), "depth goes down again at each end tag");
    }

    #[test]
    fn long_expressions_are_refused() {
        let chain = format!("{{{{ {} }}}}", ["1"; 5000].join("+"));
        assert!(prescan(&chain).unwrap_err().1.contains("more than 100 operators"));
        let parens = format!("{{{{ {}x{} }}}}", "(".repeat(2000), ")".repeat(2000));
        assert!(prescan(&parens).is_err());
        let words = format!("{{% if {} %}}{{% endif %}}", ["a"; 200].join(" and "));
        assert!(prescan(&words).is_err());
        let in_a_string = format!("{{{{ \"{}\" }}}}", "+".repeat(5000));
        assert_eq!(prescan(&in_a_string), Ok(()));
    }
}
