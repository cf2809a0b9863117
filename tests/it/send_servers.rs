//! `mailshot send` against servers that are not the lab's Postfix (issue 10): the lab's aiosmtpd listeners,
//! each playing one real server's limit or refusal, and the security/port mismatches users make.
//!
//! These state what issue 10 asks the run to do ("What to build", "Done when"), not what it did when they were
//! written: each limit is learned or survived, and the run goes on instead of stopping the job.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use crate::common::lab_aiosmtpd::{Mode, Store, Stored, aiosmtpd};
use crate::common::lab_env::lab;
use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::{Run, run_in};

/// An empty `[retry]`: the defaults (30 s before a retry), so that a retry shows as a wait.
const DEFAULT_RETRY: &str = "[retry]\n";

/// The reply Haraka (and the strict-dot listener) gives to a command sent behind a final dot.
const PIPELINED_AFTER_DOT: &str = "pipelined after end of DATA";

/// Every recipient delivered on its first attempt (the report) and stored exactly once (see [`stored_once`]).
fn assert_delivered_once_first_time(job: &SendJob, store: &Store) -> HashMap<String, Stored> {
    let report = job.last_report();
    let late: Vec<String> = report
        .rows
        .iter()
        .filter(|r| (r.status.as_str(), r.attempts) != ("delivered", 1))
        .map(|r| format!("row {}: {} after {} attempt(s): {}", r.row, r.status, r.attempts, r.reply))
        .collect();
    let some = &late[..late.len().min(5)];
    assert!(
        late.is_empty(),
        "{} of {} not delivered at the first attempt, e.g. {some:#?}",
        late.len(),
        report.rows.len()
    );
    stored_once(job, store)
}

/// Each recipient's one copy in the listener's store, from the job's sender to that recipient alone; panics
/// when a recipient has none or several.
fn stored_once(job: &SendJob, store: &Store) -> HashMap<String, Stored> {
    let mut copies = store.by_rcpt(&job.recipients);
    let wrong: Vec<_> = job.recipients.iter().filter(|r| copies.get(*r).map_or(0, Vec::len) != 1).collect();
    assert!(wrong.is_empty(), "not stored exactly once: {wrong:?}");
    let mut once = HashMap::new();
    for rcpt in &job.recipients {
        let copy = copies.remove(rcpt).unwrap().pop().unwrap();
        assert_eq!((copy.mail_from.as_str(), copy.rcpt_tos.as_slice()), (job.from.as_str(), [rcpt.clone()].as_slice()));
        once.insert(rcpt.clone(), copy);
    }
    once
}

/// Lines of the run's stderr (its log) that contain `needle`.
fn log_lines<'a>(run: &'a Run, needle: &str) -> Vec<&'a str> {
    run.stderr.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn an_ordinary_lock_step_server_stores_every_message_as_previewed() {
    let Some(aio) = aiosmtpd("an_ordinary_lock_step_server_stores_every_message_as_previewed") else { return };
    let tag = unique_tag("aio-accept");
    let store = aio.store(Mode::Accept);
    let job = SendJob::new(&tag, &aio.smtp(Mode::Accept).with("connections = 2"), addresses(&tag, 12), "");
    job.write(
        "templates/body.txt",
        "Hello {{ name }},\n.a line that starts with a dot\nyour code is {{ code }}.\nGrüße\n",
    );
    run_in(job.path(), &["preview", "job.toml", "--eml"]).expect(0);

    job.send(&["--yes"]).expect(0);
    let copies = assert_delivered_once_first_time(&job, &store);
    for (i, rcpt) in job.recipients.iter().enumerate() {
        let copy = &copies[rcpt];
        assert_eq!(copy.pipelined, 0, "{rcpt}: the server offers no PIPELINING, yet the client pipelined");
        let eml = std::fs::read(job.path().join(format!("preview/row-{:06}-{rcpt}.eml", i + 2))).unwrap();
        // The Date is the moment of rendering, a second or so apart; every other byte must be the same.
        assert_eq!(
            String::from_utf8_lossy(&without_date(&copy.bytes)),
            String::from_utf8_lossy(&without_date(&eml)),
            "{rcpt}: the stored message is the preview"
        );
    }
}

/// The message with its `Date:` header's value blanked; panics when it has none.
fn without_date(message: &[u8]) -> Vec<u8> {
    let mut in_header = true;
    let mut dates = 0;
    let lines: Vec<&[u8]> = message
        .split_inclusive(|&b| b == b'\n')
        .map(|line| {
            in_header &= line != b"\r\n";
            if in_header && line.starts_with(b"Date: ") {
                dates += 1;
                return b"Date: -\r\n".as_slice();
            }
            line
        })
        .collect();
    assert_eq!(dates, 1, "one Date header in {}", String::from_utf8_lossy(message));
    lines.concat()
}

#[test]
fn a_server_refusing_commands_after_the_dot_gets_200_messages_each_on_its_first_attempt() {
    let test = "a_server_refusing_commands_after_the_dot_gets_200_messages_each_on_its_first_attempt";
    let Some(aio) = aiosmtpd(test) else { return };
    let tag = unique_tag("aio-strict");
    let store = aio.store(Mode::StrictDot);
    let smtp = aio.smtp(Mode::StrictDot).with("connections = 4");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 200), DEFAULT_RETRY);

    let started = Instant::now();
    let run = job.send(&["--yes"]);
    let elapsed = started.elapsed();
    run.expect(0);
    assert_delivered_once_first_time(&job, &store);
    assert!(elapsed < Duration::from_secs(30), "200 messages took {elapsed:?}: no retry waits expected");
    // `pipelining = "auto"` (the default) pipelines until the server refuses, then switches once for the run.
    let switch = log_lines(&run, PIPELINED_AFTER_DOT);
    assert_eq!(switch.len(), 1, "the switch is logged once, with the server's reply:\n{}", run.stderr);
}

#[test]
fn pipelining_envelope_or_off_never_sends_behind_a_dot() {
    let Some(aio) = aiosmtpd("pipelining_envelope_or_off_never_sends_behind_a_dot") else { return };
    for setting in ["envelope", "off"] {
        let tag = unique_tag(&format!("aio-{setting}"));
        let store = aio.store(Mode::StrictDot);
        let smtp = aio.smtp(Mode::StrictDot).with("connections = 2").with(&format!("pipelining = \"{setting}\""));
        let job = SendJob::new(&tag, &smtp, addresses(&tag, 40), "");

        let run = job.send(&["--yes"]);
        run.expect(0);
        let copies = assert_delivered_once_first_time(&job, &store);
        assert!(log_lines(&run, PIPELINED_AFTER_DOT).is_empty(), "{setting}: refused:\n{}", run.stderr);
        let pipelined = copies.values().map(|c| c.pipelined).max().unwrap();
        match setting {
            // MAIL, RCPT and DATA still go out together.
            "envelope" => assert!(pipelined > 0, "envelope: no command was pipelined"),
            _ => assert_eq!(pipelined, 0, "off: a command went out before the previous reply"),
        }
    }
}

#[test]
fn a_cap_of_two_sessions_with_four_connections_delivers_everyone_once() {
    let Some(aio) = aiosmtpd("a_cap_of_two_sessions_with_four_connections_delivers_everyone_once") else { return };
    let _serial = Mode::SessionCap.serial();
    assert_eq!(aio.session_cap, 2);
    let tag = unique_tag("aio-sessions");
    let store = aio.store(Mode::SessionCap);
    // Sessions end after 20 messages, so the four workers keep reconnecting against the cap all along.
    let smtp = aio.smtp(Mode::SessionCap).with("connections = 4").with("max_messages_per_connection = 20");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 120), "");

    let run = job.send(&["--yes"]);
    run.expect(0);
    let report = job.last_report();
    assert_eq!(report.count("delivered"), 120, "{:?}", report.counts());
    let copies = stored_once(&job, &store);
    // The listener offers PIPELINING and serves it: the cap is the only thing in the way.
    assert!(copies.values().any(|c| c.pipelined > 0), "nothing was pipelined");
}

#[test]
fn a_cap_of_seven_messages_per_session_is_learned_with_nothing_deferred_or_duplicated() {
    let test = "a_cap_of_seven_messages_per_session_is_learned_with_nothing_deferred_or_duplicated";
    let Some(aio) = aiosmtpd(test) else { return };
    let _serial = Mode::PerSessionCap.serial();
    assert_eq!(aio.messages_per_session, 7);
    let tag = unique_tag("aio-persession");
    let store = aio.store(Mode::PerSessionCap);
    let smtp = aio.smtp(Mode::PerSessionCap).with("connections = 2");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 60), DEFAULT_RETRY);

    let run = job.send(&["--yes"]);
    run.expect(0);
    let copies = assert_delivered_once_first_time(&job, &store);
    assert!(copies.values().all(|c| c.message_in_session <= 7), "the listener's cap held");
    // The summary (stdout) names the learned cap and the key that sets it for the next run.
    let seven = |l: &str| l.split(|c: char| !c.is_ascii_digit()).any(|n| n == "7");
    let learned = run.stdout.lines().find(|l| l.contains("max_messages_per_connection") && seven(l));
    assert!(learned.is_some(), "the summary does not suggest max_messages_per_connection = 7:\n{}", run.stdout);
}

#[test]
fn a_552_at_mail_fails_only_the_messages_that_are_too_big() {
    let Some(aio) = aiosmtpd("a_552_at_mail_fails_only_the_messages_that_are_too_big") else { return };
    let tag = unique_tag("aio-size");
    let store = aio.store(Mode::SizeAtMail);
    let big = [2, 7, 12];
    let job = SendJob::new(&tag, &aio.smtp(Mode::SizeAtMail), addresses(&tag, 16), "");
    job.write("templates/body.txt", "Hello {{ name }},\nyour code is {{ code }}.\n{{ pad }}\n");
    let line = "All work and no play makes a message too big for this server.\n";
    let big_pad = line.repeat(aio.size_limit / line.len() + 50);
    job.add_column("pad", |i| if big.contains(&i) { big_pad.clone() } else { String::new() });

    let run = job.send(&["--yes"]);
    run.expect(1);
    let report = job.last_report().by_email();
    let copies = store.by_rcpt(&job.recipients);
    for (i, rcpt) in job.recipients.iter().enumerate() {
        let row = &report[rcpt];
        if big.contains(&i) {
            let got = (row.status.as_str(), row.code, row.enhanced.as_str(), row.attempts);
            assert_eq!(got, ("failed", Some(552), "5.3.4", 1), "{row:?}");
            assert!(!copies.contains_key(rcpt), "{rcpt} was stored");
        } else {
            assert_eq!((row.status.as_str(), row.attempts), ("delivered", 1), "{row:?}");
            let copy = copies.get(rcpt).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(copy.len(), 1, "{rcpt} stored {} times", copy.len());
            let options = &copy[0].mail_options;
            assert!(options.iter().any(|o| o.starts_with("SIZE=")), "SIZE offered, not sent: {options:?}");
        }
    }
}

#[test]
fn a_554_greeting_stops_the_job_at_the_first_try_naming_the_reply() {
    let Some(aio) = aiosmtpd("a_554_greeting_stops_the_job_at_the_first_try_naming_the_reply") else { return };
    let tag = unique_tag("aio-554");
    let job = SendJob::new(&tag, &aio.smtp(Mode::Greeting554).with("connections = 2"), addresses(&tag, 10), "");

    let started = Instant::now();
    let run = job.send(&["--yes"]);
    let elapsed = started.elapsed();
    run.expect(3).line_with(&["554", "No SMTP service here"]);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}: a 5xx greeting gets one try");
    let report = job.last_report();
    assert_eq!(report.count("not sent"), 10, "{:?}", report.counts());
}

#[test]
fn transient_failures_while_opening_sessions_are_retried_and_everyone_is_delivered_once() {
    let test = "transient_failures_while_opening_sessions_are_retried_and_everyone_is_delivered_once";
    let Some(aio) = aiosmtpd(test) else { return };
    let _serial = Mode::FlakySetup.serial();
    let tag = unique_tag("aio-flaky");
    let store = aio.store(Mode::FlakySetup);
    // The listener's cycle runs per EHLO name: this job's own name meets it from the start. Three messages per
    // session make ten good sessions, so the run goes through the cycle's three failures at least twice.
    let smtp = aio
        .smtp(Mode::FlakySetup)
        .with(&format!("ehlo_name = \"{tag}.example.test\""))
        .with("connections = 2")
        .with("max_messages_per_connection = 3");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 30), "");

    let run = job.send(&["--yes"]);
    run.expect(0);
    let report = job.last_report();
    assert_eq!(report.count("delivered"), 30, "{:?}", report.counts());
    let copies = stored_once(&job, &store);
    let sessions: Vec<u64> = copies.values().map(|c| c.session).collect();
    assert!(sessions.iter().all(|s| [1, 4].contains(&(s % 5))), "stored by a failing session? {sessions:?}");
    assert!(sessions.iter().any(|&s| s >= 6), "the run never got past the failures: {sessions:?}");
}

#[test]
fn tls_against_a_plaintext_port_suggests_starttls_or_none() {
    let Some(lab) = lab("tls_against_a_plaintext_port_suggests_starttls_or_none") else { return };
    let tag = unique_tag("mismatch-tls");
    let job = SendJob::new(&tag, &Smtp::lab(&lab, "tls", lab.plain_port, &lab.password), addresses(&tag, 3), "");

    let run = job.send(&["--yes"]);
    run.expect(3).line_with(&["security = \"starttls\""]);
    assert!(format!("{}{}", run.stdout, run.stderr).contains("\"none\""), "no `\"none\"`:\n{}", run.stderr);
}

#[test]
fn starttls_against_an_implicit_tls_port_hints_at_tls_after_ten_seconds() {
    let Some(lab) = lab("starttls_against_an_implicit_tls_port_hints_at_tls_after_ten_seconds") else { return };
    let tag = unique_tag("mismatch-starttls");
    // The server waits for a TLS handshake and the client for a greeting: neither comes. A short greeting
    // timeout ends the run; the hint must come before it, about 10 s after connecting.
    let smtp = Smtp::lab(&lab, "starttls", lab.tls_port, &lab.password).with("timeouts = { greeting = 15 }");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 3), "");

    let lines = timed_lines(&job, Duration::from_secs(25));
    let hint = lines.iter().find(|(_, l)| l.contains("security = \"tls\""));
    let Some((at, line)) = hint else { panic!("no hint about security = \"tls\" in:\n{lines:#?}") };
    assert!((Duration::from_secs(8)..=Duration::from_secs(14)).contains(at), "the hint came at {at:?}: {line}");
}

/// Runs `send` for at most `limit` (then kills it), and returns each line it printed, on stdout or stderr, with
/// the time it came.
fn timed_lines(job: &SendJob, limit: Duration) -> Vec<(Duration, String)> {
    let started = Instant::now();
    let mut child = job.spawn(&["--yes"]);
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    let readers: Vec<_> = pipes
        .into_iter()
        .map(|pipe| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send((started.elapsed(), line));
                }
            })
        })
        .collect();
    drop(tx);
    while started.elapsed() < limit && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    child.wait().unwrap();
    readers.into_iter().for_each(|r| r.join().unwrap());
    let mut lines: Vec<_> = rx.into_iter().collect();
    lines.sort_by_key(|(at, _)| *at);
    lines
}

/// A 4xx at MAIL FROM is the server's limit per session only after that session delivered something: a
/// sender refused for now (the lab Postfix's `mail-tempfail@` gets `451` at every MAIL) is an ordinary
/// deferral, each attempt counted, and teaches no limit.
#[test]
fn a_sender_refused_for_now_is_deferred_with_its_attempts_counted_and_teaches_no_limit() {
    let test = "a_sender_refused_for_now_is_deferred_with_its_attempts_counted_and_teaches_no_limit";
    let Some(lab) = lab(test) else { return };
    let tag = unique_tag("mail-tempfail");
    let smtp = Smtp::plain(lab.plain_port).with("connections = 1");
    let retry = "[retry]\nattempts = 2\ninitial_delay = 0.2\nmax_delay = 1\n";
    let job = SendJob::with_from(&tag, "mail-tempfail@example.test", &smtp, addresses(&tag, 4), retry);
    let run = job.send(&["--yes"]);
    run.expect(1);
    let report = job.last_report();
    assert_eq!(report.count("deferred"), 4, "{:?}", report.counts());
    assert!(report.rows.iter().all(|r| r.attempts == 2 && r.reply.contains("451")), "{:#?}", report.rows);
    assert!(!run.stdout.contains("learned"), "no limit was learned from a refused sender:\n{}", run.stdout);
}
