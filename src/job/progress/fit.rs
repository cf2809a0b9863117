//! Lines made to fit the terminal's width, by display width (a CJK character takes two columns, a
//! combining accent none). A progress line that wraps takes two rows, and the bar's redraw, which moves up
//! one row per line, then leaves torn copies behind; so every redrawn line is cut, with an ellipsis. A log
//! line above the bars stays whole (a failure's reply is worth reading) but is wrapped between words, its
//! continuation indented, where the terminal would have broken it anywhere.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

const ELLIPSIS: char = '…';

/// `line` as it fits in `width` columns: whole if it fits, else cut with `…` as its last column.
pub fn fit(line: &str, width: usize) -> String {
    if line.width() <= width {
        return line.to_owned();
    }
    let room = width.saturating_sub(1);
    let mut used = 0;
    let mut cut = String::with_capacity(line.len().min(width * 4));
    for c in line.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        cut.push(c);
    }
    if width > 0 {
        cut.push(ELLIPSIS);
    }
    cut
}

/// `line` in rows of at most `width` columns, broken at spaces (inside a word only when the word alone is
/// wider), the rows after the first indented.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let options = textwrap::Options::new(width.max(CONTINUATION.len() + 1)).subsequent_indent(CONTINUATION);
    textwrap::wrap(line, options).into_iter().map(String::from).collect()
}

const CONTINUATION: &str = "    ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_by_display_width_with_an_ellipsis() {
        let cases = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("row 12 alice@example.com", 12, "row 12 alic…"),
            // Two columns per character: the fifth would pass the edge, so four and the ellipsis.
            ("日本語のテキスト", 10, "日本語の…"),
            // A combining accent takes no column of its own.
            ("zoe\u{301} zoe\u{301} zoe\u{301}", 8, "zoe\u{301} zoe\u{301}…"),
            ("anything", 1, "…"),
            ("anything", 0, ""),
        ];
        for (line, width, shown) in cases {
            let cut = fit(line, width);
            assert_eq!(cut, shown, "{line:?} in {width}");
            assert!(cut.width() <= width, "{cut:?} is wider than {width}");
        }
    }

    #[test]
    fn log_lines_wrap_between_words_with_their_continuation_indented() {
        let line = "row 7 ann@example.com failed 550 RCPT TO: 550 5.1.1 <ann@example.com>: Recipient address rejected";
        assert_eq!(
            wrap(line, 40),
            [
                "row 7 ann@example.com failed 550 RCPT",
                "    TO: 550 5.1.1 <ann@example.com>:",
                "    Recipient address rejected",
            ]
        );
        assert_eq!(wrap("short", 40), ["short"]);
        // A word wider than the terminal is broken, not left to overflow.
        let long = format!("row 2 {}@example.com deferred", "x".repeat(60));
        assert!(wrap(&long, 30).iter().all(|row| row.width() <= 30), "{:?}", wrap(&long, 30));
        assert!(wrap("日本語 のテキスト を表示", 10).iter().all(|row| row.width() <= 10));
    }
}
