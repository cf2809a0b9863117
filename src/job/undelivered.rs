//! The recipients a run did not deliver, for `-q` (cron): each named on one line, at most [`SHOWN`] of them,
//! then how many more the report holds. Kept by the recorder as outcomes settle, so memory stays bounded.

use super::settlement::{Settlement, Status};

/// Lines shown before "… and N more".
pub const SHOWN: usize = 50;

#[derive(Debug, Default)]
pub struct Undelivered {
    shown: Vec<Settlement>,
    more: u64,
}

impl Undelivered {
    /// Notes an outcome settled in this run; delivered ones and duplicates (sent once, from their first row)
    /// are not news, nor are suppressed ones (the list said so).
    pub fn note(&mut self, settlement: &Settlement) {
        if matches!(settlement.status, Status::Delivered | Status::Skipped | Status::Suppressed) {
            return;
        }
        match self.shown.len() < SHOWN {
            true => self.shown.push(settlement.clone()),
            false => self.more += 1,
        }
    }

    /// A heading, one line per recipient (`address  state  reply`), then `… and N more (see REPORT)`;
    /// nothing when every recipient was delivered.
    pub fn lines(&self, report: &std::path::Path) -> Vec<String> {
        if self.shown.is_empty() {
            return Vec::new();
        }
        let mut lines = vec![String::new(), "not delivered".to_owned()];
        lines.extend(self.shown.iter().map(|o| format!("  {}  {}  {}", o.email, o.status, o.reply)));
        if self.more > 0 {
            lines.push(format!("  … and {} more (see {})", self.more, report.display()));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settlement(n: usize, status: Status) -> Settlement {
        Settlement {
            row: n as u64 + 2,
            email: format!("r{n}@example.test"),
            status,
            code: None,
            enhanced: None,
            reply: "not sent: the run stopped".into(),
            attempts: 0,
            message_id: String::new(),
            first_attempt: None,
            last_attempt: None,
        }
    }

    #[test]
    fn names_the_first_fifty_then_counts_the_rest() {
        let mut list = Undelivered::default();
        list.note(&settlement(0, Status::Delivered));
        list.note(&settlement(1, Status::Skipped));
        (0..53).for_each(|n| list.note(&settlement(n, Status::NotSent)));
        let lines = list.lines(std::path::Path::new("reports/x.csv"));
        assert_eq!(lines.len(), 53);
        assert_eq!(lines[2], "  r0@example.test  not sent  not sent: the run stopped");
        assert_eq!(lines[52], "  … and 3 more (see reports/x.csv)");
        assert!(Undelivered::default().lines(std::path::Path::new("r.csv")).is_empty());
    }
}
