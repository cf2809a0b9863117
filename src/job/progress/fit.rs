//! Lines cut to the terminal's width. A progress line that wraps takes two rows, and the bar's redraw,
//! which moves up one row per line, then leaves torn copies behind; so every redrawn line is cut, by
//! display width (a CJK character takes two columns, a combining accent none), with an ellipsis.

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
}
