//! A run that its surroundings treat badly (issue 11): its output pipe closed early, a server that sends
//! terminal escapes and spreadsheet formulas, a worker that panics. The run still completes its journal and
//! its report, and says what happened with the documented exit code.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::time::{Duration, Instant};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::Run;

/// Waits for `child` at most `limit`; kills it and fails the test if it is still running then (a hang).
fn wait_or_kill(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run did not end within {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_end(job: &SendJob) -> serde_json::Value {
    job.journal().into_iter().rfind(|r| r["t"] == "run_end").expect("a run_end record in the journal")
}

/// `mailshot send job.toml --yes -v | head -n 1`, on stdout and on stderr at once: whatever it could not
/// print, the run delivers everyone, writes every report row and the run-end record, and exits 0.
#[test]
fn a_closed_output_pipe_does_not_stop_the_run_from_completing_its_journal_and_report() {
    let server = MailServer::start();
    let tag = unique_tag("epipe");
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 2"), addresses(&tag, 40), "");
    let mut child = job.spawn(&["--yes", "-v"]);
    // `head -n 1` on stderr: one line read, then the pipe is closed; stdout is closed before anything came.
    drop(child.stdout.take());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    drop(stderr);
    let status = wait_or_kill(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "first line: {first:?}");
    assert_eq!(server.accepted_total(), 40);
    let report = job.last_report();
    assert_eq!(report.count("delivered"), 40, "{report:#?}");
    assert_eq!(run_end(&job)["exit_code"], 0);
}

/// ESC, BEL and C1 controls as a hostile server sends them, and text a spreadsheet would run.
const HOSTILE_REPLY: &str = "550 =HYPERLINK(\"http://evil.test\") \x1b[2J\x1b]0;owned\x07 \u{9b}31m";

/// A server that answers with terminal escapes: nothing of them reaches the terminal raw (log lines, summary,
/// `status`); and the report, opened in a spreadsheet, runs nothing (cells that start like a formula get a
/// `'`, here an address that starts with `=`).
#[test]
fn server_text_is_escaped_on_the_terminal_and_report_cells_cannot_be_formulas() {
    let server = MailServer::start();
    let tag = unique_tag("escape");
    let mut recipients = addresses(&tag, 3);
    recipients.push(format!("=1+1-{tag}@example.test"));
    let job = SendJob::new(&tag, &Smtp::scripted(&server), recipients.clone(), "[retry]\nattempts = 1\n");
    server.reject(&recipients[1], HOSTILE_REPLY, u32::MAX);
    server.reject(&recipients[3], "450 4.2.0 =cmd|' /C calc'!A0 \x1b[31mred", u32::MAX);
    let run = job.send(&["--yes", "-v"]);
    run.expect(1);
    let status = crate::send_status::status(&job, &["--failed"]);
    status.expect(0);
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr), ("status --failed", &status.stdout)] {
        let raw: Vec<char> = text.chars().filter(|c| c.is_control() && !['\n', '\t'].contains(c)).collect();
        assert!(raw.is_empty(), "{name}: raw control characters {raw:?} in:\n{text}");
    }
    run.line_with(&["row 3", "failed", "=HYPERLINK", "\\x1b[2J\\x1b]0;owned\\x07 \\u{9b}31m"]);
    status.line_with(&["\\x1b[2J"]);

    let report = job.last_report();
    let text = std::fs::read_to_string(&report.path).unwrap();
    assert!(!text.contains(['\x1b', '\x07', '\u{9b}']), "raw control characters in the report:\n{text}");
    let mut reader = csv::Reader::from_path(&report.path).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let formula = record.iter().find(|cell| cell.starts_with(['=', '+', '-', '@', '\t', '\r']));
        assert!(formula.is_none(), "a cell a spreadsheet would run: {formula:?} in {record:?}");
    }
    let row = &report.rows[3];
    assert_eq!((row.email.as_str(), row.status.as_str()), (format!("'{}", recipients[3]).as_str(), "deferred"));
    assert!(report.rows[1].reply.contains("=HYPERLINK"), "{:?}", report.rows[1]);
}

/// A bug that panics a worker (made real by the debug builds' `MAILSHOT_TEST_PANIC_ROW` hook, as the worker
/// is about to settle row 4) stops the run as a fatal error would: it ends (before, the other connection
/// waited for ever for the message the dead worker held), exits 70, the report lists every recipient (row 4
/// uncertain: its committing record is in the journal without an outcome) and the journal has its run-end
/// record. The next run does not send row 4 again unless asked.
#[test]
fn a_panicking_worker_stops_the_run_with_exit_70_a_complete_report_and_a_run_end_record() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: release builds have no MAILSHOT_TEST_PANIC_ROW hook");
        return;
    }
    let server = MailServer::start();
    server.set_delay(Duration::from_millis(2));
    let tag = unique_tag("panic");
    let mut job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 2"), addresses(&tag, 30), "");
    job.set_env("MAILSHOT_TEST_PANIC_ROW", "4");
    let mut child = job.spawn(&["--yes"]);
    let status = wait_or_kill(&mut child, Duration::from_secs(60));
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(70), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("internal error: a connection's task panicked"), "{stderr}");
    assert!(stdout.contains("summary") && stdout.contains("report "), "{stdout}");

    let report = job.last_report();
    let rows: Vec<u64> = report.rows.iter().map(|r| r.row).collect();
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (2..32).collect::<Vec<u64>>(), "one report row per recipient: {report:#?}");
    let four = report.rows.iter().find(|r| r.row == 4).unwrap();
    assert_eq!(four.status, "uncertain", "{four:?}");
    assert!(report.rows.iter().all(|r| ["delivered", "not sent", "uncertain"].contains(&r.status.as_str())));
    // The worker held row 4 and perhaps the message it had taken to pipeline behind it, whose committing
    // record was written: the journal calls both uncertain, and so does the report.
    let uncertain = report.count("uncertain");
    assert!((1..=2).contains(&uncertain), "{report:#?}");
    assert_eq!(run_end(&job)["exit_code"], 70);

    // The next run sends the rest, and not the uncertain ones (their dot may have gone out).
    job.set_env("MAILSHOT_TEST_PANIC_ROW", "");
    let again = Run::from(job.command(&["--yes"]).output().unwrap());
    again.expect(1);
    let report = job.last_report();
    assert_eq!((report.count("uncertain"), report.count("delivered")), (uncertain, 30 - uncertain), "{report:#?}");
    assert!(server.accepted().values().all(|&n| n == 1), "a recipient was sent twice");
}
