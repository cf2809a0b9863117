//! What the templates read against what the CSV's header row gives them, checked once the header is known
//! (by `check`, and so by `send`, and by `preview`): a variable that is neither a column nor a job value is
//! reported for every template that reads it, with the columns there are and the likeliest one meant; and a
//! column named like a job value is refused, since one of the two would silently hide the other.

use std::path::Path;

use super::{Job, Problem};
use crate::recipients::Columns;
use crate::render::closest;

/// At most this many column names are listed in one problem; a wide export has hundreds.
const LISTED_COLUMNS: usize = 30;

/// A value of the job file that templates read as a variable: `[message] campaign` as `{{ campaign }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobValue {
    /// The variable's name in templates.
    pub name: &'static str,
    /// The key that sets it, as problems name it (`[message] campaign`).
    pub key: &'static str,
    /// Its line in the job file.
    pub line: usize,
    pub value: String,
}

/// The job values templates may read; a job value is one whose key is set.
pub(super) const CAMPAIGN: (&str, &str) = ("campaign", "[message] campaign");

impl Job {
    /// Every problem between the templates and the CSV's header `columns`; none means every row can be
    /// rendered as far as variables go.
    pub fn variable_problems(&self, columns: &Columns) -> Vec<Problem> {
        let csv = self.csv.display().to_string();
        let mut problems: Vec<Problem> = (self.job_values.iter())
            .filter(|v| columns.names.iter().any(|c| c == v.name))
            .map(|v| Problem::once(clash(&csv, &self.path, v)))
            .collect();
        let why = |name: &str| self.unknown(name, &columns.names);
        problems.extend(self.templates.undefined(&columns.names, why).iter().map(|e| Problem::once(e.to_string())));
        problems
    }

    /// Why `name` is missing: not a column (the closest one suggested), not a job value that is set.
    fn unknown(&self, name: &str, columns: &[String]) -> String {
        let csv = self.csv.display();
        let unset = if name == CAMPAIGN.0 { format!(", and {} is not set", CAMPAIGN.1) } else { String::new() };
        let candidates = columns.iter().map(String::as_str).chain(self.job_values.iter().map(|v| v.name));
        let suggestion = closest(name, candidates).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
        format!("unknown variable `{name}`: not a column of {csv}{unset}{suggestion} ({})", listed(columns))
    }
}

/// `columns: `email`, `name`, `city``, at most [`LISTED_COLUMNS`] of them.
fn listed(columns: &[String]) -> String {
    if columns.is_empty() {
        return "it has no columns".into();
    }
    let shown: Vec<String> = columns.iter().take(LISTED_COLUMNS).map(|c| format!("`{c}`")).collect();
    let more = columns.len().saturating_sub(LISTED_COLUMNS);
    let more = if more > 0 { format!(", … and {more} more") } else { String::new() };
    format!("columns: {}{more}", shown.join(", "))
}

fn clash(csv: &str, job: &Path, value: &JobValue) -> String {
    format!(
        "{csv}:1: column `{name}` has the name of {key} ({job}:{line}), which templates read as \
         {{{{ {name} }}}}; rename the column (or remove the key)",
        name = value.name,
        key = value.key,
        job = job.display(),
        line = value.line,
    )
}
