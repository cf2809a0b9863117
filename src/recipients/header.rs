//! The header row checked against the job: every name valid UTF-8, non-empty, not reserved and not repeated,
//! and the columns `[recipients]` names present. Linear in the number of columns, and every message short:
//! a header of 100,000 columns must neither take seconds nor become a 789 kB line. A missing column is
//! named with a few of the others and the closest name, if one is close.

use std::collections::HashSet;

use super::columns::{ColumnSpec, Columns, RESERVED_COLUMN};
use super::copies::CopyColumns;
use super::row::short;

/// How many column names a message lists at most.
const LISTED: usize = 5;

impl Columns {
    /// Every problem with the header row at once (not UTF-8, empty, reserved or repeated names, missing columns).
    pub fn from_headers(headers: &csv::ByteRecord, spec: &ColumnSpec) -> Result<Columns, Vec<String>> {
        let mut problems = Vec::new();
        let mut names = Vec::with_capacity(headers.len());
        let mut seen = HashSet::with_capacity(headers.len());
        for (i, raw) in headers.iter().enumerate() {
            let Ok(name) = std::str::from_utf8(raw).map(str::trim) else {
                problems.push(format!("the name of column {} is not valid UTF-8", i + 1));
                continue;
            };
            if name.is_empty() {
                problems.push(format!("column {} has an empty name", i + 1));
            } else if name == RESERVED_COLUMN {
                problems.push(format!(
                    "column `{RESERVED_COLUMN}` is reserved for mailshot's own template values (mailshot.date); rename it"
                ));
            } else if !seen.insert(name) {
                problems.push(format!("column `{}` appears twice", short(name)));
            } else {
                names.push(name.to_owned());
            }
        }
        let mut find = |role: &str, column: &str| {
            let index = names.iter().position(|n| n == column);
            if index.is_none() {
                problems.push(missing(role, column, &names));
            }
            index
        };
        let email = find("address", &spec.email);
        let name = spec.name.as_ref().and_then(|c| find("name", c));
        let key = spec.key.as_ref().and_then(|c| find("key", c));
        let cc = spec.cc.as_ref().and_then(|c| find("Cc", c));
        let bcc = spec.bcc.as_ref().and_then(|c| find("Bcc", c));
        let copies = CopyColumns { cc, bcc, rules: spec.copy_rules.clone() };
        match email {
            Some(email) if problems.is_empty() => Ok(Columns { names, email, name, key, copies }),
            _ => Err(problems),
        }
    }
}

/// `no column `email` (the address column); did you mean `Email`? The header has 3 columns: `Email`, …`
fn missing(role: &str, column: &str, names: &[String]) -> String {
    let mut text = format!("no column `{}` (the {role} column)", short(column));
    match closest(column, names) {
        Some(near) => text.push_str(&format!("; did you mean `{}`? The header has ", short(near))),
        None => text.push_str("; the header has "),
    }
    let listed: Vec<String> = names.iter().take(LISTED).map(|n| format!("`{}`", short(n))).collect();
    let more = if names.len() > LISTED { ", …" } else { "" };
    let plural = if names.len() == 1 { "" } else { "s" };
    text.push_str(&format!("{} column{plural}: {}{more}", names.len(), listed.join(", ")));
    text
}

/// The name most like `wanted`: the same but for case, or within a few edits. Names much longer or shorter
/// cannot be close and are skipped, so this stays cheap on a huge header.
fn closest<'a>(wanted: &str, names: &'a [String]) -> Option<&'a String> {
    if let Some(same) = names.iter().find(|n| n.eq_ignore_ascii_case(wanted)) {
        return Some(same);
    }
    let wanted: Vec<char> = wanted.chars().take(64).collect();
    let allowed = (wanted.len() / 3).clamp(1, 3);
    names
        .iter()
        .filter(|n| n.chars().count().abs_diff(wanted.len()) <= allowed)
        .map(|n| (edits(&wanted, &n.chars().collect::<Vec<_>>()), n))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance, case-insensitive.
fn edits(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(!ca.eq_ignore_ascii_case(cb));
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ColumnSpec {
        ColumnSpec::email("email")
    }

    fn header(names: &[String]) -> csv::ByteRecord {
        csv::ByteRecord::from(names.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn a_missing_column_is_named_with_the_closest_and_a_few_others() {
        let names: Vec<String> = ["Name", "E-mail", "city"].map(String::from).to_vec();
        let problems = Columns::from_headers(&header(&names), &spec()).unwrap_err();
        assert_eq!(
            problems,
            [
                "no column `email` (the address column); did you mean `E-mail`? The header has 3 columns: `Name`, `E-mail`, `city`"
            ]
        );
        let names: Vec<String> = ["EMAIL", "x"].map(String::from).to_vec();
        assert!(Columns::from_headers(&header(&names), &spec()).unwrap_err()[0].contains("did you mean `EMAIL`?"));
        let names: Vec<String> = ["phone"].map(String::from).to_vec();
        assert_eq!(
            Columns::from_headers(&header(&names), &spec()).unwrap_err(),
            ["no column `email` (the address column); the header has 1 column: `phone`"]
        );
    }

    #[test]
    fn a_huge_header_is_checked_in_linear_time_with_short_messages() {
        let mut names: Vec<String> = (0..100_000).map(|i| format!("column number {i}")).collect();
        names.push("column number 7".into());
        names.push("x".repeat(1 << 20));
        let started = std::time::Instant::now();
        let problems = Columns::from_headers(&header(&names), &spec()).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0], "column `column number 7` appears twice");
        assert!(problems[1].starts_with("no column `email` (the address column); the header has 100001 columns:"));
        assert!(problems[1].ends_with("`column number 4`, …"), "{}", problems[1]);
        assert!(problems.iter().all(|p| p.len() < 300), "{problems:?}");
    }
}
