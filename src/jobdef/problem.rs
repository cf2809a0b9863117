//! A problem found while reading a job, as `check` prints it: severity, a located message, and a class.
//!
//! The message starts with its place in editor form (`file:line: …`; for CSV rows the line is the row).
//! The class names the kind of problem without row-specific values, so that `check` can show the first few
//! of a million identical problems and count the rest instead of flooding the terminal.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Not a problem, a fact worth listing (a suppressed recipient): counted by neither errors nor warnings.
    Note,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub message: String,
    pub class: String,
}

impl Problem {
    pub fn error(message: impl Into<String>, class: impl Into<String>) -> Problem {
        Problem { severity: Severity::Error, message: message.into(), class: class.into() }
    }

    pub fn warning(message: impl Into<String>, class: impl Into<String>) -> Problem {
        Problem { severity: Severity::Warning, message: message.into(), class: class.into() }
    }

    pub fn note(message: impl Into<String>, class: impl Into<String>) -> Problem {
        Problem { severity: Severity::Note, message: message.into(), class: class.into() }
    }

    /// A job-level error whose message is its own class (it occurs once).
    pub fn once(message: impl Into<String>) -> Problem {
        let message = message.into();
        Problem { severity: Severity::Error, class: message.clone(), message }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        write!(f, "{label}: {}", self.message)
    }
}
