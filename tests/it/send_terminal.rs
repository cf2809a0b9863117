//! `send` on a terminal (a pseudo-terminal, its screen kept by the vt100 crate): the display is redrawn in
//! place with no line torn by wrapping, however narrow the terminal, and a retry's wait is shown with its
//! time of day instead of the connection's last recipient.

use crate::common::pty::run_on_terminal;
use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use mailshot::smtp::testing::MailServer;

/// How a row of the screen may begin: the bar, a connection, retry or summary line (indented), a log line,
/// the check's line. A line the terminal wrapped would go on in the next row with whatever came next.
fn begins_a_line(row: &str) -> bool {
    row.is_empty() || ["[", "  ", "row ", "12 rows: ", "summary"].iter().any(|start| row.starts_with(start))
}

#[test]
fn the_display_fits_a_narrow_terminal_and_shows_a_waiting_retry() {
    let server = MailServer::start();
    let tag = unique_tag("tty");
    let retry = "[retry]\ninitial_delay = 2\nmax_delay = 4\nattempts = 3\n";
    let mut job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 12), retry);
    job.set_env("TERM", "xterm");
    server.reject(&job.recipients[3], "451 4.7.1 Try again later, the queue is full", 1);
    let run = run_on_terminal(job.command(&["--yes"]), 40, 60);
    assert_eq!(run.code, 0, "{}", run.raw());

    let screens = run.screens();
    for screen in &screens {
        for row in screen {
            assert!(begins_a_line(row), "a torn line {row:?} on the screen:\n{}", screen.join("\n"));
        }
    }
    let seen = |what: &dyn Fn(&str) -> bool| screens.iter().flatten().any(|row| what(row));
    assert!(seen(&|r| r.starts_with("[") && r.contains("/12 this run · ETA ")), "no bar:\n{}", run.raw());
    assert!(seen(&|r| r.ends_with('…')), "nothing was cut at 59 columns:\n{}", run.raw());
    let waiting = |r: &str| {
        let Some(rest) = r.strip_prefix("  waiting to retry 1 until ") else { return false };
        chrono::NaiveTime::parse_from_str(&rest[..8], "%H:%M:%S").is_ok() && rest[8..].starts_with(" (in ")
    };
    assert!(seen(&waiting), "no waiting retry shown:\n{}", run.raw());
    assert!(seen(&|r| r.starts_with("  conn 1  idle (session open)")), "no idle connection:\n{}", run.raw());

    // The deferral's log line stays whole above the display, wrapped between words (continuations indented).
    let last = screens.last().unwrap();
    let first = last.iter().position(|r| r.starts_with("row 5 ")).unwrap_or_else(|| panic!("{}", last.join("\n")));
    let continued = last[first + 1..].iter().take_while(|r| r.starts_with("    "));
    let rows: Vec<&str> = std::iter::once(last[first].as_str()).chain(continued.map(|r| &r[4..])).collect();
    assert!(rows.len() > 1, "{rows:?}");
    let logged = rows.join(" ");
    let expected = format!(
        "row 5 {} deferred (RCPT TO: 451 4.7.1 Try again later, the queue is full); attempt 2 of 3 at ",
        job.recipients[3]
    );
    assert!(logged.starts_with(&expected), "{logged}");
    assert!(chrono::NaiveTime::parse_from_str(&logged[expected.len()..], "%H:%M:%S").is_ok(), "{logged}");
    assert!(last.iter().any(|r| r == "  delivered        12"), "{}", last.join("\n"));
}
