//! `mailshot send` with `[smtp] window` (several BDAT transactions in flight per session, RFC 3030 with
//! RFC 2920) against the scripted server, which records what arrived in each flight: windows that really
//! hold several messages, refusals and a lost connection in the middle of one, the fallback to DATA for a
//! server that refuses commands behind message data, and the crash bound a window widens.

use std::time::Duration;

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

/// A CHUNKING server whose replies each take a little while, so the queue has messages at hand whenever
/// the window has room (the worker fills it only with what is ready).
fn chunking_server() -> MailServer {
    let server = MailServer::start();
    server.offer_chunking();
    server.set_delay(Duration::from_millis(20));
    server
}

fn job(server: &MailServer, prefix: &str, n: usize, window: u32) -> SendJob {
    let tag = unique_tag(prefix);
    let smtp = Smtp::scripted(server).with("connections = 1").with(&format!("window = {window}"));
    SendJob::new(&tag, &smtp, addresses(&tag, n), "")
}

/// How many transactions (BDAT commands) each flight carried.
fn bdat_per_flight(server: &MailServer) -> Vec<usize> {
    server.flights().iter().map(|f| f.iter().filter(|v| *v == "BDAT").count()).filter(|&n| n > 0).collect()
}

#[test]
fn a_window_keeps_several_messages_in_flight_and_delivers_each_once() {
    let server = chunking_server();
    let job = job(&server, "window", 24, 4);
    job.send(&["--yes"]).expect(0);

    let report = job.last_report();
    assert_eq!(report.count("delivered"), 24, "{:?}", report.counts());
    for (i, rcpt) in job.recipients.iter().enumerate() {
        assert_eq!(server.accepted().get(rcpt), Some(&1), "{rcpt}");
        let (subject, _) = job.personalised(i);
        assert!(String::from_utf8_lossy(&server.bodies(rcpt)[0]).contains(&subject), "{rcpt} got another's message");
    }
    assert_eq!((server.commands("DATA"), server.commands("BDAT")), (0, 24));
    let per_flight = bdat_per_flight(&server);
    assert!(per_flight.iter().any(|&n| n >= 3), "no flight held several transactions: {per_flight:?}");
    assert!(per_flight.iter().all(|&n| n <= 4), "more in flight than the window: {per_flight:?}");
}

#[test]
fn refusals_in_a_window_settle_their_own_rows_and_the_rest_is_delivered() {
    let server = chunking_server();
    let job = job(&server, "window-refused", 16, 4);
    server.reject(&job.recipients[2], "550 5.1.1 No such user", u32::MAX);
    server.reject(&job.recipients[5], "450 4.2.0 Mailbox busy", 1);
    server.reply_after_dot(&job.recipients[9], "554 5.7.1 Message content rejected", 1);
    job.send(&["--yes"]).expect(1);

    let by_email = job.last_report().by_email();
    for (i, rcpt) in job.recipients.iter().enumerate() {
        let (status, accepted) = match i {
            2 => ("failed", None),
            9 => ("failed", None),
            _ => ("delivered", Some(&1)),
        };
        assert_eq!(by_email[rcpt].status, status, "{rcpt}: {:?}", by_email[rcpt]);
        assert_eq!(server.accepted().get(rcpt), accepted, "{rcpt}");
    }
    assert_eq!(by_email[&job.recipients[5]].attempts, 2, "the 450 was retried");
    assert_eq!(by_email[&job.recipients[2]].code, Some(550));
    assert_eq!(by_email[&job.recipients[9]].code, Some(554));
}

/// The connection closes at one message's chunk with more in flight behind it: that one and every later
/// one whose bytes went out are uncertain (never sent again without --resend-uncertain), within the crash
/// bound of a window; everything else is delivered exactly once.
#[test]
fn a_connection_lost_in_a_window_leaves_at_most_the_window_uncertain_and_nothing_twice() {
    let server = chunking_server();
    let job = job(&server, "window-lost", 20, 4);
    server.close_after_dot(&job.recipients[6], 1);
    job.send(&["--yes"]).expect(1);

    let report = job.last_report();
    let uncertain = report.emails_with("uncertain");
    assert!(uncertain.contains(&job.recipients[6]), "{:?}", report.counts());
    assert!(uncertain.len() <= 4, "more uncertain than the window: {uncertain:?}");
    assert_eq!(report.count("delivered") + uncertain.len(), 20, "{:?}", report.counts());
    for rcpt in &job.recipients {
        let received = server.bodies(rcpt).len();
        assert!(received <= 1, "{rcpt} received {received} times");
        if !uncertain.contains(rcpt) {
            assert_eq!(server.accepted().get(rcpt), Some(&1), "{rcpt}");
        }
    }
    let mails = server.commands("MAIL");
    job.send(&["--yes"]).expect(1); // uncertain ones are still not known to be delivered
    assert_eq!(server.commands("MAIL"), mails, "an uncertain one was sent again");
}

/// A server that refuses commands written behind another message's chunk (503, as Haraka does behind a
/// dot): the refused messages go again at once, the session and the rest of the run use DATA, and the
/// switch is logged once.
#[test]
fn a_server_refusing_commands_behind_a_chunk_gets_data_for_the_rest_of_the_run() {
    let server = chunking_server();
    server.reject_behind_dot();
    let job = job(&server, "window-haraka", 12, 4);
    let run = job.send(&["--yes"]);
    run.expect(0);

    for rcpt in &job.recipients {
        assert_eq!(server.accepted().get(rcpt), Some(&1), "{rcpt}");
    }
    assert!(server.rejected_behind_dot() > 0, "the server never refused: {:?}", server.flights());
    assert!(server.commands("DATA") > 0, "no fallback to DATA: {:?}", server.flights());
    let switch: Vec<_> = run.stderr.lines().filter(|l| l.contains("pipelined after end of DATA")).collect();
    assert_eq!(switch.len(), 1, "the switch is logged once, with the server's reply:\n{}", run.stderr);
    let report = job.last_report();
    assert!(report.rows.iter().all(|r| r.attempts == 1), "a refused-as-pipelined message counted an attempt");
}

/// Rows with a copy (`[recipients] cc`) never go in a window: their data would leave before the server
/// said whether it takes the main recipient. They go by DATA, between windows, on the same run.
#[test]
fn rows_with_copies_go_by_data_and_the_others_in_windows() {
    let server = chunking_server();
    let job = job(&server, "window-cc", 12, 4);
    job.add_column("cc", |i| if i % 4 == 1 { format!("copy{i}@cc.example.test") } else { String::new() });
    job.add_settings("recipients", "cc = \"cc\"\n");
    job.send(&["--yes"]).expect(0);

    for (i, rcpt) in job.recipients.iter().enumerate() {
        assert_eq!(server.accepted().get(rcpt), Some(&1), "{rcpt}");
        if i % 4 == 1 {
            assert_eq!(server.accepted().get(&format!("copy{i}@cc.example.test")), Some(&1));
        }
    }
    assert_eq!((server.commands("DATA"), server.commands("BDAT")), (3, 9), "{:?}", server.flights());
}

/// `max_messages_per_connection` below the window: a session carries no more than that many messages, so
/// a window never fills past what is left of the session's allowance.
#[test]
fn a_limit_per_connection_below_the_window_holds() {
    let server = chunking_server();
    let tag = unique_tag("window-per-conn");
    let smtp =
        Smtp::scripted(&server).with("connections = 1").with("window = 4").with("max_messages_per_connection = 2");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 12), "");
    job.send(&["--yes"]).expect(0);

    for rcpt in &job.recipients {
        assert_eq!(server.accepted().get(rcpt), Some(&1), "{rcpt}");
    }
    assert_eq!(server.connections().0, 6, "12 messages, 2 per connection: {:?}", server.flights());
    let per_flight = bdat_per_flight(&server);
    assert!(per_flight.iter().all(|&n| n <= 2), "a flight carried more than the limit: {per_flight:?}");
}

/// `--rate` with windows and rows with copies mixed in: every message takes a throttle slot (a window
/// never lets one through unpaced), and the run keeps the pace.
#[test]
fn rate_with_windows_and_copies_paces_every_message() {
    let server = MailServer::start();
    server.offer_chunking();
    let job = job(&server, "window-rate", 20, 4);
    job.add_column("cc", |i| if i % 2 == 1 { format!("copy{i}@cc.example.test") } else { String::new() });
    job.add_settings("recipients", "cc = \"cc\"\n");
    let started = std::time::Instant::now();
    job.send(&["--yes", "--rate", "5"]).expect(0);
    let elapsed = started.elapsed();

    for rcpt in &job.recipients {
        assert_eq!(server.accepted().get(rcpt), Some(&1), "{rcpt}");
    }
    assert!(server.commands("BDAT") > 0 && server.commands("DATA") > 0, "{:?}", server.flights());
    // A burst of 2, then 18 messages at 5/s: at least 3.6 s whatever the machine.
    assert!(elapsed >= Duration::from_millis(3500), "20 messages at --rate 5 took only {elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "20 messages at --rate 5 took {elapsed:?}");
}

/// The journal's sync fails in the middle of a run with windows (strace fails `fdatasync` with EIO from
/// the 4th on; CI installs strace): the run stops, no message whose committing record could not be made
/// durable reaches the server, nobody receives twice, and every row is accounted for.
#[test]
fn a_journal_failing_mid_window_stops_the_run_and_sends_nothing_unrecorded() {
    if !crate::common::strace::available(module_path!()) {
        return;
    }
    let server = chunking_server();
    server.set_delay(Duration::from_millis(5));
    let job = job(&server, "window-gate", 40, 8);
    let journal = job.path().canonicalize().unwrap().join("job.journal.jsonl");
    let options = ["-o", "/dev/null", "-e", "trace=fdatasync", "-e", "inject=fdatasync:error=EIO:when=4+", "-P"];
    let options = options.map(std::ffi::OsStr::new).into_iter().chain([journal.as_os_str()]);
    let journal_text = job.journal_path();
    server.check_at_dot(move |rcpt| {
        let text = std::fs::read_to_string(&journal_text).unwrap_or_default();
        text.contains(&format!(r#""t":"committing","key":"{rcpt}""#))
    });
    let run = crate::jobs_support::Run::from(crate::common::strace::run(&job.command(&["--yes"]), options));
    run.expect(3).line_with(&["the job stopped", "journal"]);

    let report = job.last_report();
    assert_eq!(report.rows.len(), 40, "one row per recipient");
    assert!(report.count("not sent") > 0, "the failure came after the run: {:?}", report.counts());
    for row in &report.rows {
        let received = server.bodies(&row.email).len();
        let want = usize::from(row.status == "delivered");
        assert_eq!(received, want, "{}: {} but received {received} times", row.email, row.status);
    }
    assert_eq!(server.failed_dot_checks(), Vec::<String>::new(), "data sent before its committing record");
}

/// `pipelining = "envelope"` or `"off"` turns windows off whatever `window` says: DATA, one message at a
/// time, each delivered once.
#[test]
fn pipelining_envelope_or_off_keeps_data_with_a_window_of_8() {
    for pipelining in ["envelope", "off"] {
        let server = chunking_server();
        let tag = unique_tag(&format!("window-{pipelining}"));
        let smtp = Smtp::scripted(&server).with("window = 8").with(&format!("pipelining = \"{pipelining}\""));
        let job = SendJob::new(&tag, &smtp, addresses(&tag, 6), "");
        job.send(&["--yes"]).expect(0);
        for rcpt in &job.recipients {
            assert_eq!(server.accepted().get(rcpt), Some(&1), "{pipelining}: {rcpt}");
        }
        assert_eq!((server.commands("DATA"), server.commands("BDAT")), (6, 0), "{pipelining}: {:?}", server.flights());
    }
}

/// Messages around DATA_BLOCK's 64 KiB and one of several MiB in the same windows: each chunk arrives
/// whole and exact (the attachment decodes to the file's bytes, lines of dots as they were), once.
#[test]
fn big_messages_in_windows_arrive_whole_and_once() {
    let server = chunking_server();
    let job = job(&server, "window-big", 7, 4);
    let sizes = [47_000, 48_500, 49_152, 3 << 20, 0, 65_536, 49_000];
    std::fs::create_dir_all(job.path().join("files")).unwrap();
    let mut seed = 0x2545_f491_u64;
    for size in sizes {
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (seed >> 56) as u8
            })
            .collect();
        std::fs::write(job.path().join(format!("files/f{size}.bin")), bytes).unwrap();
    }
    job.add_column("file", |i| format!("f{}.bin", sizes[i]));
    let toml = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    job.write("job.toml", toml.replace("[recipients]", "attachments = [\"files/{{ file }}\"]\n\n[recipients]"));
    job.write("templates/body.txt", "Hello {{ name }},\n.\n..two dots\n.end\nyour code is {{ code }}.\n");
    job.send(&["--yes"]).expect(0);

    assert_eq!((server.commands("DATA"), server.commands("BDAT")), (0, 7), "{:?}", server.flights());
    for (i, rcpt) in job.recipients.iter().enumerate() {
        let bodies = server.bodies(rcpt);
        assert_eq!((bodies.len(), server.accepted().get(rcpt)), (1, Some(&1)), "{rcpt}");
        let parsed = mail_parser::MessageParser::default().parse(&bodies[0]).expect("a message");
        let (subject, _) = job.personalised(i);
        assert_eq!(parsed.subject(), Some(subject.as_str()), "{rcpt} got another's message");
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains("\r\n.\r\n..two dots\r\n.end\r\n"), "{rcpt}: dots changed: {text:?}");
        let file = std::fs::read(job.path().join(format!("files/f{}.bin", sizes[i]))).unwrap();
        assert_eq!(parsed.attachments().next().expect("the attachment").contents(), file, "{rcpt}");
    }
}
