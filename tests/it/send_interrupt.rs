//! Ctrl-C, SIGTERM and SIGHUP during a send (issues 5 and 12): the first signal stops taking new recipients,
//! finishes what is in flight and writes the summary, the report and the run-end record (exit 130, 143,
//! 129); a second one exits at once. Nothing is ever sent twice, a clean stop leaves nothing uncertain, and
//! running the job again sends the rest.

use std::process::Child;
use std::time::{Duration, Instant};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::Run;

/// SIGINT, as a terminal's Ctrl-C sends it.
fn interrupt(child: &Child) {
    signal(child, "INT");
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status();
    assert!(status.unwrap().success(), "kill -{name} failed");
}

#[test]
fn ctrl_c_finishes_the_messages_in_flight_writes_the_report_and_a_rerun_sends_the_rest() {
    a_signal_finishes_the_messages_in_flight_writes_the_report_and_a_rerun_sends_the_rest("INT", 130, "interrupted", 1);
}

#[test]
fn sigterm_stops_as_ctrl_c_does_with_exit_143() {
    a_signal_finishes_the_messages_in_flight_writes_the_report_and_a_rerun_sends_the_rest("TERM", 143, "SIGTERM", 1);
}

/// With `[smtp] window = 8` up to 8 BDAT transactions per session are in flight when the signal comes: each
/// gets its reply, none is uncertain or sent twice.
#[test]
fn sigterm_with_windows_in_flight_finishes_them_and_leaves_nothing_uncertain() {
    a_signal_finishes_the_messages_in_flight_writes_the_report_and_a_rerun_sends_the_rest("TERM", 143, "SIGTERM", 8);
}

#[test]
fn sighup_stops_as_ctrl_c_does_with_exit_129() {
    a_signal_finishes_the_messages_in_flight_writes_the_report_and_a_rerun_sends_the_rest("HUP", 129, "SIGHUP", 1);
}

fn a_signal_finishes_the_messages_in_flight_writes_the_report_and_a_rerun_sends_the_rest(
    name: &str,
    code: i32,
    said: &str,
    window: u32,
) {
    let server = MailServer::start();
    server.set_delay(Duration::from_millis(5));
    if window > 1 {
        server.offer_chunking();
    }
    let tag = unique_tag(&format!("sig{name}{window}"));
    let smtp = Smtp::scripted(&server).with("connections = 4").with(&format!("window = {window}"));
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 500), "");

    let child = job.spawn(&["--yes"]);
    server.wait_until(Duration::from_secs(30), "100 messages", |s| s.accepted_total() >= 100);
    signal(&child, name);
    let run = Run::from(child.wait_with_output().unwrap());
    run.expect(code).line_with(&[said]);
    assert!(run.stdout.contains("summary"), "the summary is printed:\n{}", run.stdout);
    assert_eq!(server.commands("BDAT") > 0, window > 1, "BDAT exactly when windows are on");
    assert!(!job.path().join("job.lock").exists(), "an orderly stop removes job.lock, as a clean end does");
    let sent = server.accepted_total();
    assert!(sent < 500, "the run was not interrupted: {sent} sent");
    assert_eq!(server.dots_total(), sent as usize, "every message whose data went out got its reply");
    assert!(server.accepted().values().all(|&n| n == 1), "a recipient was sent twice");
    assert_eq!(server.commands("QUIT"), server.connections().0, "every session ends with QUIT");
    let end = job.journal().into_iter().rfind(|r| r["t"] == "run_end").expect("a run_end record");
    assert_eq!(end["exit_code"], code, "{end}");
    let uncertain = job.replayed().expect("a journal").count(mailshot::job::journal::JournalState::Uncertain);
    assert_eq!(uncertain, 0, "a clean stop leaves nothing uncertain");

    let report = job.last_report();
    assert_eq!(report.rows.len(), 500, "one row per recipient");
    assert_eq!(report.count("delivered"), sent as usize, "the report matches the server");
    assert_eq!(report.count("not sent"), 500 - sent as usize, "{:?}", report.counts());

    server.set_delay(Duration::ZERO);
    job.send(&["--yes"]).expect(0);
    let accepted = server.accepted();
    assert!(job.recipients.iter().all(|r| accepted.get(r) == Some(&1)), "each exactly once overall: {accepted:?}");
    assert_eq!(job.last_report().count("delivered"), 500);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let server = MailServer::start();
    server.set_delay(Duration::from_millis(700));
    let tag = unique_tag("sigint2");
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 2"), addresses(&tag, 20), "");

    let mut child = job.spawn(&["--yes"]);
    server.wait_until(Duration::from_secs(10), "a MAIL command", |s| s.commands("MAIL") >= 1);
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "the first Ctrl-C waits for the message in flight");
    let second = Instant::now();
    interrupt(&child);
    let run = Run::from(child.wait_with_output().unwrap());
    // Finishing the message in flight would take three more 0.7 s replies.
    assert!(second.elapsed() < Duration::from_millis(1500), "took {:?} after the second Ctrl-C", second.elapsed());
    run.expect(130).line_with(&["interrupted twice"]);
    assert_eq!(server.accepted_total(), 0);
    // Without a terminal every line of send carries its time, the last word of a run cut short too.
    let untimed: Vec<&str> = run.stderr.lines().filter(|l| crate::common::untimed(l) == *l).collect();
    assert!(untimed.is_empty(), "lines without a time: {untimed:?}");
}

#[test]
fn ctrl_c_does_not_wait_for_a_retry_that_is_due_later() {
    let server = MailServer::start();
    let tag = unique_tag("sigint3");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 3), "[retry]\ninitial_delay = 60\n");
    let busy = job.recipients[1].clone();
    server.reject(&busy, "450 4.2.0 Mailbox busy", 1);

    let child = job.spawn(&["--yes"]);
    server.wait_until(Duration::from_secs(10), "the other two", |s| s.accepted_total() == 2);
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    interrupt(&child);
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(sent.elapsed() < Duration::from_secs(3), "waited {:?} for a retry due in a minute", sent.elapsed());
    run.expect(130);
    let row = &job.last_report().by_email()[&busy];
    // Refused for now and its retry never came: deferred, with the server's reply, as the journal says.
    assert_eq!((row.status.as_str(), row.attempts, row.code), ("deferred", 1, Some(450)), "{row:?}");

    job.send(&["--yes"]).expect(0);
    assert!(job.recipients.iter().all(|r| server.accepted().get(r) == Some(&1)), "{:?}", server.accepted());
}

#[test]
fn a_second_signal_of_another_kind_also_exits_at_once_with_the_first_ones_code() {
    let server = MailServer::start();
    server.set_delay(Duration::from_millis(700));
    let tag = unique_tag("sigterm2");
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 2"), addresses(&tag, 20), "");

    let mut child = job.spawn(&["--yes"]);
    server.wait_until(Duration::from_secs(10), "a MAIL command", |s| s.commands("MAIL") >= 1);
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "the first signal waits for the message in flight");
    let second = Instant::now();
    interrupt(&child);
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(second.elapsed() < Duration::from_millis(1500), "took {:?} after the second signal", second.elapsed());
    run.expect(143).line_with(&["interrupted after SIGTERM"]);
    let journal = std::fs::read_to_string(job.journal_path()).unwrap();
    assert!(
        journal.ends_with('\n'),
        "the journal was flushed whole before quitting: {:?}",
        &journal[journal.len().saturating_sub(300)..]
    );
}
