//! What templates may call. Tera's filters and testers are pure and stay; of its functions, `range` stays
//! (bounded) and `throw` stays; `now`, `get_random` and `get_env` are replaced by functions that refuse,
//! because a template must be a pure function of its row: the same row renders the same bytes on a retry,
//! and no template reads the environment (where `MAILSHOT_PASSWORD` lives). `audit` refuses them before any
//! row is rendered; the replacements are the second line.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use tera::{Error, Function, Result, Tera, Value};

/// Tera's functions that read the world instead of the row, and why each is refused.
pub(super) const IMPURE: [(&str, &str); 3] = [
    ("now", "reads the clock (use `mailshot.date`, the message's Date)"),
    ("get_random", "draws a random number"),
    ("get_env", "reads the environment, where the password may be"),
];

/// The most numbers `range` may produce for one message, all calls together (Tera's own builds the whole
/// list first, unbounded; and nested loops without output would otherwise spin for hours).
pub const RANGE_MAX: usize = 100_000;

thread_local! {
    /// What is left of this message's `range` budget (a message renders on one thread).
    static RANGE_LEFT: Cell<usize> = const { Cell::new(RANGE_MAX) };
}

/// A new message starts: `range` gets its whole budget again.
pub(super) fn new_message() {
    RANGE_LEFT.with(|left| left.set(RANGE_MAX));
}

pub(super) fn install(tera: &mut Tera) {
    for (name, why) in IMPURE {
        tera.register_function(name, Refused { name, why });
    }
    tera.register_function("range", range);
    tera.register_filter("date", CheckedDate { builtin: Arc::new(Tera::default()) });
}

struct Refused {
    name: &'static str,
    why: &'static str,
}

impl Function for Refused {
    fn call(&self, _: &HashMap<String, Value>) -> Result<Value> {
        Err(Error::msg(format!("`{}()` {}: templates are pure functions of the row", self.name, self.why)))
    }
}

/// Tera's `range(end, start=0, step_by=1)`, refusing `step_by=0` (Tera's loops for ever) and long lists.
fn range(args: &HashMap<String, Value>) -> Result<Value> {
    let number = |name: &str, default: Option<usize>| match (args.get(name), default) {
        (Some(v), _) => v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
            Error::msg(format!("Function `range` received {name}={v} but `{name}` can only be a whole number"))
        }),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(Error::msg("Function `range` was called without an `end` argument")),
    };
    let (start, end, step) = (number("start", Some(0))?, number("end", None)?, number("step_by", Some(1))?);
    if step == 0 {
        return Err(Error::msg("Function `range` was called with step_by=0 (it would never end)"));
    }
    if start > end {
        return Err(Error::msg("Function `range` was called with a `start` argument greater than the `end` one"));
    }
    let count = (end - start).div_ceil(step);
    let left = RANGE_LEFT.with(Cell::get);
    if count > left {
        return Err(Error::msg(format!(
            "Function `range` would make {count} numbers; at most {RANGE_MAX} are allowed for one message, all calls together"
        )));
    }
    RANGE_LEFT.with(|l| l.set(left - count));
    Ok(Value::Array((start..end).step_by(step).map(Value::from).collect()))
}

/// Tera's `date` filter, with numbers checked first: Tera panics on a timestamp chrono cannot represent
/// (`{{ cell | int | date }}` with a CSV cell of `99999999999999`).
struct CheckedDate {
    /// A Tera with its own `date`, to delegate to once the value is known to be safe.
    builtin: Arc<Tera>,
}

impl tera::Filter for CheckedDate {
    fn filter(&self, value: &Value, args: &HashMap<String, Value>) -> Result<Value> {
        if let Some(n) = value.as_number() {
            let representable = n.as_i64().is_some_and(|s| chrono::DateTime::from_timestamp(s, 0).is_some());
            if !representable && !n.is_f64() {
                return Err(Error::msg(format!("Filter `date`: {n} seconds is not a representable time")));
            }
        }
        self.builtin.get_filter("date")?.filter(value, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_range(pairs: &[(&str, u64)]) -> Result<Value> {
        range(&pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect())
    }

    #[test]
    fn range_is_teras_but_bounded() {
        new_message();
        assert_eq!(call_range(&[("end", 5)]).unwrap(), serde_json::json!([0, 1, 2, 3, 4]));
        assert_eq!(call_range(&[("start", 2), ("end", 9), ("step_by", 3)]).unwrap(), serde_json::json!([2, 5, 8]));
        new_message();
        assert_eq!(call_range(&[("end", RANGE_MAX as u64)]).unwrap().as_array().unwrap().len(), RANGE_MAX);
        assert!(call_range(&[("end", 1)]).is_err(), "the message's budget is spent");
        new_message();
        for bad in [&[("end", 100_000_000)][..], &[("end", 5), ("step_by", 0)], &[("start", 3), ("end", 1)], &[]] {
            assert!(call_range(bad).is_err(), "{bad:?}");
        }
    }
}
