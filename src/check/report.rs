//! Printing problems as they are found, without flooding: the first few of each class are shown, the rest
//! counted and summarised at the end. Memory grows with the number of classes, not of rows.

use std::collections::HashMap;
use std::io::Write;

use crate::jobdef::{Problem, Severity};
use crate::output::escape_controls;

/// How many problems of one class are printed before the rest are only counted.
pub const SHOWN_PER_CLASS: u64 = 5;

/// Where `check` sends its findings; tallies errors and warnings.
pub struct Reporter<W: Write> {
    out: W,
    per_class: HashMap<(Severity, String), u64>,
    pub errors: u64,
    pub warnings: u64,
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W) -> Reporter<W> {
        Reporter { out, per_class: HashMap::new(), errors: 0, warnings: 0 }
    }

    pub fn report(&mut self, problem: Problem) {
        match problem.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Note => {}
        }
        let seen = self.per_class.entry((problem.severity, problem.class.clone())).or_insert(0);
        *seen += 1;
        if *seen <= SHOWN_PER_CLASS {
            // A closed stdout (`check | head`) must not turn into a panic; the exit code still tells. A problem
            // may quote the CSV (a column name, a cell): its control characters must not reach the terminal.
            let _ = writeln!(self.out, "{}", escape_controls(&problem.to_string()));
        }
    }

    /// Prints one line per class that had more problems than were shown, then returns the writer.
    pub fn finish(mut self) -> W {
        let mut hidden: Vec<_> = self.per_class.iter().filter(|(_, n)| **n > SHOWN_PER_CLASS).collect();
        hidden.sort();
        for ((severity, class), n) in hidden {
            let label = match severity {
                Severity::Error => "errors",
                Severity::Warning => "warnings",
                Severity::Note => "notes",
            };
            let line = format!("… and {} more {label} like: {class}", n - SHOWN_PER_CLASS);
            let _ = writeln!(self.out, "{}", escape_controls(&line));
        }
        self.out
    }

    pub fn out(&mut self) -> &mut W {
        &mut self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_not_printed() {
        let mut r = Reporter::new(Vec::new());
        for row in 2..102 {
            r.report(Problem::error(format!("r.csv:{row}: bad"), "bad"));
        }
        r.report(Problem::warning("r.csv:7: dup", "dup"));
        assert_eq!((r.errors, r.warnings), (100, 1));
        let out = String::from_utf8(r.finish()).unwrap();
        assert_eq!(out.lines().count(), SHOWN_PER_CLASS as usize + 2, "{out}");
        assert!(out.ends_with("… and 95 more errors like: bad\n"), "{out}");
    }

    #[test]
    fn control_characters_from_the_csv_are_escaped() {
        let mut r = Reporter::new(Vec::new());
        r.report(Problem::once("r.csv:1: column `a\u{1b}]0;pwned\u{7}` is odd"));
        let out = String::from_utf8(r.finish()).unwrap();
        assert_eq!(out, "error: r.csv:1: column `a\\x1b]0;pwned\\x07` is odd\n");
    }
}
