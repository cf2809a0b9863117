//! Lines for people, and text from outside made safe to show.
//!
//! Two hazards, one module. A closed pipe (`mailshot send … | head -n 1`) makes every later write fail with
//! EPIPE, and `println!` turns that into a panic that would leave the journal and the report unfinished:
//! [`out_line`] and [`err_line`] drop what cannot be written instead. And a server's reply is text we did not
//! write: ESC and C1 control characters in it would drive the terminal (move the cursor, retitle the window,
//! hide or rewrite earlier lines), so [`escape_controls`] makes them visible; a report cell that starts like
//! a formula would be run by a spreadsheet, so [`spreadsheet_cell`] defuses it (OWASP, "CSV injection").

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

/// One line on stdout, control characters escaped; a closed pipe or a full disk is ignored (the exit code,
/// the journal and the report still tell what happened).
pub fn out_line(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{}", escape_controls(line));
}

/// One line on stderr, as [`out_line`] does it.
pub fn err_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", escape_controls(line));
}

/// Whether a terminal could obey `c`: C0 controls but tab (ESC, CR, BEL, backspace …), DEL, and the C1
/// controls U+0080–U+009F (U+009B is a one-character CSI on terminals that honour C1).
fn is_hazard(c: char) -> bool {
    (c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c) || is_bidi_control(c)
}

/// Unicode's explicit direction controls (embeddings, overrides, isolates, marks): a terminal line that holds
/// one can show its text in another order than it is (`moc.elpmaxe@` read as an address: "Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether [`escape_controls`] has anything to do. ASCII text (nearly every reply, address and report cell)
/// is checked byte by byte: its only hazards are C0 controls but tab, and DEL. (Decoding every character and
/// asking Unicode's tables cost ~4,000 instructions per report row.)
fn has_hazard(text: &str) -> bool {
    match text.is_ascii() {
        true => text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
        false => text.chars().any(is_hazard),
    }
}

/// `text` with every control character but tab written as an escape: `\x1b` for C0 and DEL, `\u{9b}` for
/// C1, `\u{202e}` for a direction control. Borrowed when there is nothing to escape (the usual case).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !has_hazard(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !is_hazard(c) => out.push(c),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// A cell for a CSV a person will open in a spreadsheet: control characters escaped, and a `'` in front when
/// it starts with `=`, `+`, `-`, `@`, a tab or a CR, which spreadsheets would take for a formula (or with a
/// `'`, so that reading one `'` back off is never ambiguous).
pub fn spreadsheet_cell(text: &str) -> Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']);
    match (formula, escape_controls(text)) {
        (false, cell) => cell,
        (true, cell) => Cow::Owned(format!("'{cell}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ASCII shortcut and the per-character rule agree on every ASCII character, alone and in text.
    #[test]
    fn the_ascii_check_agrees_with_the_character_rule() {
        for b in 0u8..128 {
            let c = char::from(b);
            assert_eq!(has_hazard(&c.to_string()), is_hazard(c), "{b:#04x}");
            assert_eq!(has_hazard(&format!("250 ok {c} end")), is_hazard(c), "{b:#04x} in text");
        }
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_kept() {
        let cases = [
            ("250 2.0.0 Ok: queued as 4XyZ", "250 2.0.0 Ok: queued as 4XyZ"),
            ("tab\tkept, zoë kept", "tab\tkept, zoë kept"),
            ("550 \x1b[2J\x1b]0;pwned\x07gone", "550 \\x1b[2J\\x1b]0;pwned\\x07gone"),
            ("a\rb\nc\x00d\x7f", "a\\x0db\\x0ac\\x00d\\x7f"),
            ("c1 \u{9b}31m \u{85} \u{80}", "c1 \\u{9b}31m \\u{85} \\u{80}"),
            (
                "bidi \u{202e}moc.elpmaxe\u{202c}@x \u{2067}i\u{2069}",
                "bidi \\u{202e}moc.elpmaxe\\u{202c}@x \\u{2067}i\\u{2069}",
            ),
            ("עברית and العربية kept", "עברית and العربية kept"),
        ];
        for (input, shown) in cases {
            assert_eq!(escape_controls(input), shown, "{input:?}");
        }
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn cells_that_a_spreadsheet_would_run_get_a_quote() {
        let cases = [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2+3@example.test", "'-2+3@example.test"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\\x0d=1"),
            ("550 5.1.1 =1+1", "550 5.1.1 =1+1"),
            ("ann@example.test", "ann@example.test"),
            ("", ""),
        ];
        for (input, cell) in cases {
            assert_eq!(spreadsheet_cell(input), cell, "{input:?}");
        }
    }
}
