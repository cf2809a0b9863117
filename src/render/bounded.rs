//! Filters that can make their output larger than their input, held to a budget per message.
//!
//! A value passes through filters in memory before anything reaches the capped output writer, so the cap
//! on a message's bytes does not bound them: twelve chained `replace(from="a", to="aaaa…")` ask for 80¹²
//! bytes, and `set` after `set` can chain growth across tags. Each filter here keeps Tera's own behaviour
//! (it is called as it is), but first its output is bounded from its input and arguments; a filter whose
//! bound exceeds what is left of the message's budget fails the row, naming the filter, before it
//! allocates anything. The budget is [`BUDGET_FACTOR`] × `[limits] message_bytes` for all filters of a
//! message together.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use tera::{Error, Result, Tera, Value};

/// All growing filters of one message together may produce this many times the message's byte cap.
pub const BUDGET_FACTOR: u64 = 4;

/// The filters that can grow a value, and the most bytes of output per byte of input (for those whose
/// growth does not depend on their arguments).
const GROWING: [(&str, u64); 16] = [
    ("replace", 1),
    ("indent", 1),
    ("join", 1),
    ("concat", 1),
    ("split", 33), // a Value per piece: ~32 bytes of bookkeeping for a one-byte piece
    ("linebreaksbr", 4),
    ("addslashes", 2),
    ("escape", 6),
    ("escape_xml", 6),
    ("urlencode", 3),
    ("urlencode_strict", 3),
    ("json_encode", 6),
    ("upper", 3),
    ("lower", 3),
    ("title", 3),
    ("capitalize", 3),
];

thread_local! {
    /// What is left of this message's budget (a message renders on one thread).
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// A new message starts: the growing filters get `BUDGET_FACTOR × message_bytes` again.
pub(super) fn new_message(message_bytes: u64) {
    LEFT.with(|left| left.set(message_bytes.saturating_mul(BUDGET_FACTOR)));
}

pub(super) fn install(tera: &mut Tera) {
    let builtin = Arc::new(Tera::default());
    for (name, factor) in GROWING {
        tera.register_filter(name, Bounded { name, factor, builtin: builtin.clone() });
    }
}

struct Bounded {
    name: &'static str,
    factor: u64,
    /// A Tera with its own filters, to delegate to once the output is known to fit.
    builtin: Arc<Tera>,
}

impl tera::Filter for Bounded {
    fn filter(&self, value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
        let bound = self.bound(value, args);
        let left = LEFT.with(Cell::get);
        if bound > left {
            return Err(Error::msg(format!(
                "Filter `{}` could make {bound} bytes, more than the {left} left of this message's budget for \
                 growing filters ({BUDGET_FACTOR} × [limits] message_bytes)",
                self.name
            )));
        }
        LEFT.with(|l| l.set(left - bound));
        self.builtin.get_filter(self.name)?.filter(value, args)
    }
}

impl Bounded {
    /// The most bytes the filter can produce from `value` with `args`.
    fn bound(&self, value: &Value, args: &HashMap<String, Value>) -> u64 {
        let n = size(value);
        let text = |name: &str| args.get(name).and_then(Value::as_str).unwrap_or("");
        match self.name {
            "replace" => {
                let (from, to) = (text("from"), text("to").len() as u64);
                let s = value.as_str().unwrap_or("");
                let hits = if from.is_empty() { s.chars().count() as u64 + 1 } else { s.matches(from).count() as u64 };
                n + hits.saturating_mul(to)
            }
            "indent" => {
                let prefix = args.get("prefix").and_then(Value::as_str).map_or(4, str::len) as u64;
                let lines = value.as_str().map_or(0, |s| s.lines().count()) as u64 + 1;
                n + lines.saturating_mul(prefix)
            }
            "join" => {
                let items = value.as_array().map_or(0, Vec::len) as u64;
                n + items.saturating_mul(text("sep").len() as u64) + items.saturating_mul(24)
            }
            "concat" => n + args.get("with").map_or(0, size) + 64,
            _ => n.saturating_mul(self.factor) + 64,
        }
    }
}

/// The bytes a value holds (strings and the text of numbers and names), walked without copying.
fn size(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.len() as u64,
        Value::Array(items) => items.iter().map(|v| size(v) + 8).sum(),
        Value::Object(map) => map.iter().map(|(k, v)| k.len() as u64 + size(v) + 8).sum(),
        Value::Number(_) => 24,
        Value::Bool(_) | Value::Null => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tera::Context;

    fn render(template: &str, message_bytes: u64) -> std::result::Result<String, String> {
        let mut tera = Tera::default();
        install(&mut tera);
        tera.add_raw_template("t", template).unwrap();
        new_message(message_bytes);
        tera.render("t", &Context::new()).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn growing_filters_behave_as_teras_within_the_budget() {
        let out = render(
            r#"{{ "a-b<" | replace(from="-", to="--") | upper | escape }} {{ "x" | indent(first=true) }}"#,
            1000,
        );
        assert_eq!(out.unwrap(), "A--B&lt;     x");
    }

    #[test]
    fn chained_growth_fails_before_it_allocates() {
        let big = format!(r#"{{{{ "{}" {} }}}}"#, "a".repeat(64), r#"| replace(from="a", to="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")"#.repeat(12));
        let err = render(&big, 25 << 20).unwrap_err();
        assert!(err.contains("Filter `replace` could make"), "{err}");
    }

    #[test]
    fn the_budget_is_shared_by_a_messages_filters_and_renewed_for_the_next() {
        let template = r#"{% set a = "aaaa" | replace(from="a", to="bbbbbbbbbb") %}{% set b = a | replace(from="b", to="cccccccccc") %}{{ b | length }}"#;
        assert!(render(template, 10).is_err(), "40 + 400 bytes against a budget of 40");
        assert_eq!(render(template, 1000).unwrap(), "400");
    }
}
