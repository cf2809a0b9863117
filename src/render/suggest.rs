//! "Did you mean `first_name`?": the column a misspelt variable most likely meant.
//!
//! Jaro–Winkler (strsim) rather than edit distance: it weighs a shared beginning, which is how column names
//! are usually misremembered (`first` for `first_name`, `email_address` for `email`), and it rates a
//! transposition (`nmae`) as the near miss it is. Case is ignored; below [`THRESHOLD`] nothing is suggested,
//! since a wrong suggestion costs more than none.

/// The least similarity (0 to 1) worth suggesting; clap and cargo use about the same.
const THRESHOLD: f64 = 0.8;

/// The candidate most like `name` (the first of equals, in the order given), if any is close enough.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let score = if lower == name { 2.0 } else { strsim::jaro_winkler(&name, &lower) };
        if score >= THRESHOLD && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::closest;

    const COLUMNS: [&str; 5] = ["email", "first_name", "last_name", "city", "token"];

    #[test]
    fn near_misses_find_their_column() {
        for (typed, meant) in [
            ("nme", "name"),
            ("nmae", "name"),
            ("Name", "name"),
            ("first", "first_name"),
            ("frist_name", "first_name"),
            ("firstname", "first_name"),
            ("lastname", "last_name"),
            ("email_address", "email"),
            ("e_mail", "email"),
            ("City", "city"),
            ("tokn", "token"),
        ] {
            let columns = [COLUMNS.as_slice(), &["name"]].concat();
            assert_eq!(closest(typed, columns), Some(meant), "{typed}");
        }
    }

    #[test]
    fn nothing_is_suggested_for_a_name_like_no_column() {
        for typed in ["zip", "invoice", "amount", "x", "greeting"] {
            assert_eq!(closest(typed, COLUMNS), None, "{typed}");
        }
        assert_eq!(closest("name", []), None);
    }

    #[test]
    fn an_exact_match_but_for_case_wins_over_a_closer_spelling() {
        assert_eq!(closest("ID", ["Idx", "id"]), Some("id"));
        assert_eq!(closest("nam", ["name", "nama"]), Some("name"), "the first of equals");
    }
}
