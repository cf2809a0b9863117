//! The recipients a run did not deliver, for `-q` (cron): each named on one line, at most [`SHOWN`] of them,
//! then how many more the report holds; then, the same way, the delivered rows some of whose copies (Cc/Bcc)
//! were rejected. Kept by the recorder as outcomes settle, so memory stays bounded.

use super::settlement::{Settlement, Status};

/// Lines shown before "… and N more".
pub const SHOWN: usize = 50;

#[derive(Debug, Default)]
pub struct Undelivered {
    shown: Vec<Settlement>,
    more: u64,
    /// Delivered rows with rejected copies.
    copies: Vec<Settlement>,
    more_copies: u64,
}

impl Undelivered {
    /// Notes an outcome settled in this run; delivered ones and duplicates (sent once, from their first row)
    /// are not news, nor are suppressed ones (the list said so).
    pub fn note(&mut self, settlement: &Settlement) {
        let (shown, more) = match settlement.status {
            Status::Delivered if !settlement.copies.is_empty() => (&mut self.copies, &mut self.more_copies),
            Status::Delivered | Status::Skipped | Status::Suppressed => return,
            _ => (&mut self.shown, &mut self.more),
        };
        match shown.len() < SHOWN {
            true => shown.push(settlement.clone()),
            false => *more += 1,
        }
    }

    /// A heading, one line per recipient (`address  state  reply`), then `… and N more (see REPORT)`;
    /// nothing when every recipient was delivered.
    pub fn lines(&self, report: &std::path::Path) -> Vec<String> {
        let mut lines = Vec::new();
        let mut section = |heading: &str, rows: &[Settlement], more: u64, line: fn(&Settlement) -> String| {
            if rows.is_empty() {
                return;
            }
            lines.extend([String::new(), heading.to_owned()]);
            lines.extend(rows.iter().map(line));
            if more > 0 {
                lines.push(format!("  … and {more} more (see {})", report.display()));
            }
        };
        // The state is said once: a reply written as "not sent: the run stopped" loses its first words.
        let line = |o: &Settlement| {
            let state = o.status.to_string();
            let reply = o.reply.strip_prefix(state.as_str()).and_then(|r| r.strip_prefix(": ")).unwrap_or(&o.reply);
            format!("  {}  {state}  {reply}", o.email)
        };
        section("not delivered", &self.shown, self.more, line);
        let copies = |o: &Settlement| format!("  {}  delivered, but not to: {}", o.email, o.copies);
        section("copies not delivered", &self.copies, self.more_copies, copies);
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
            copies: String::new(),
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
        assert_eq!(lines[2], "  r0@example.test  not sent  the run stopped", "the state said once");
        assert_eq!(lines[52], "  … and 3 more (see reports/x.csv)");
        assert!(Undelivered::default().lines(std::path::Path::new("r.csv")).is_empty());
    }

    #[test]
    fn delivered_rows_with_rejected_copies_have_their_own_section() {
        let mut list = Undelivered::default();
        let copies = "cc@example.test: 550 5.1.1 No such user".to_owned();
        list.note(&Settlement { copies: copies.clone(), ..settlement(0, Status::Delivered) });
        list.note(&settlement(1, Status::Delivered));
        let lines = list.lines(std::path::Path::new("reports/x.csv"));
        let want = [
            "",
            "copies not delivered",
            "  r0@example.test  delivered, but not to: cc@example.test: 550 5.1.1 No such user",
        ];
        assert_eq!(lines, want);
        list.note(&settlement(2, Status::Failed));
        assert_eq!(list.lines(std::path::Path::new("reports/x.csv"))[1], "not delivered");
    }
}
