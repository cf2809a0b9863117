//! Cc and Bcc per row (issue 20) through `send` against the scripted server, for the replies Postfix's lab
//! does not give on demand: a copy refused *for now* (450, which must not retry the row: its main recipient
//! already has it), and a main recipient refused while every copy was accepted. With PIPELINING (`auto`)
//! every `RCPT TO` of a row goes in one flight and `DATA` follows alone, once their replies are read; without
//! it (`off`), lock-step.

use std::time::Duration;

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

/// Three rows, each with a Cc and a Bcc; `pipelining` as configured, the server offering PIPELINING.
fn job(server: &MailServer, pipelining: &str) -> SendJob {
    let tag = unique_tag(&format!("scripted-copies-{pipelining}"));
    let smtp = Smtp::scripted(server).with("connections = 1").with(&format!("pipelining = \"{pipelining}\""));
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 3), "");
    job.add_column("cc", |i| format!("cc{i}-{tag}@example.test"));
    job.add_column("bcc", |i| format!("bcc{i}-{tag}@example.test"));
    job.add_settings("recipients", "cc = \"cc\"\nbcc = \"bcc\"");
    job
}

fn copies_of(job: &SendJob, i: usize) -> [String; 3] {
    let tag = &job.tag;
    [job.recipients[i].clone(), format!("cc{i}-{tag}@example.test"), format!("bcc{i}-{tag}@example.test")]
}

/// Row 0's Cc gets `450` (every time): the row is delivered once, not retried, the 450 in `copies`.
/// Row 1's own address gets `550` while its copies are accepted: nothing is sent to anyone of row 1.
fn a_copy_refused_for_now_and_a_refused_main_recipient(pipelining: &str) {
    let server = MailServer::start();
    server.offer_pipelining();
    server.set_delay(Duration::from_millis(5));
    let job = job(&server, pipelining);
    let [_, cc0, _] = copies_of(&job, 0);
    server.reject(&cc0, "450 4.2.0 Mailbox busy", 100);
    server.reject(&job.recipients[1], "550 5.1.1 No such user", 100);

    // Lock-step runs quiet (`-q`, as from cron): the rejected copy is listed under the summary instead of
    // in a log line.
    let quiet = pipelining == "off";
    let run = job.send(if quiet { &["--yes", "-q"] } else { &["--yes"] });
    run.expect(1);
    match quiet {
        true => {
            run.line_with(&[&format!("  {}  delivered, but not to: {cc0}: 450 4.2.0 Mailbox busy", job.recipients[0])])
        }
        false => run.line_with(&[" delivered 250 ", &format!("; copies not delivered: {cc0}: 450 4.2.0 Mailbox busy")]),
    };
    let report = job.last_report().by_email();
    let row0 = &report[&job.recipients[0]];
    assert_eq!((row0.status.as_str(), row0.attempts), ("delivered", 1), "{row0:?}");
    assert_eq!(row0.copies, format!("{cc0}: 450 4.2.0 Mailbox busy"));
    let row1 = &report[&job.recipients[1]];
    assert_eq!((row1.status.as_str(), row1.code, row1.copies.as_str()), ("failed", Some(550), ""), "{row1:?}");

    let accepted = server.accepted();
    let count = |address: &String| accepted.get(address).copied().unwrap_or(0);
    let [main0, _, bcc0] = copies_of(&job, 0);
    assert_eq!([count(&main0), count(&cc0), count(&bcc0)], [1, 0, 1], "{accepted:?}");
    assert!(copies_of(&job, 1).iter().all(|a| count(a) == 0 && server.bodies(a).is_empty()), "{accepted:?}");
    assert!(copies_of(&job, 2).iter().all(|a| count(a) == 1), "{accepted:?}");
    assert_eq!(server.commands("DATA"), 2, "no DATA for row 1");

    let flights = server.flights();
    let envelopes: Vec<&Vec<String>> = flights.iter().filter(|f| f.contains(&"MAIL".to_owned())).collect();
    match pipelining {
        // Each row's MAIL and three RCPTs in one flight (behind the previous dot, or a RSET), DATA alone.
        "auto" => {
            for flight in &envelopes {
                let mail = flight.iter().position(|v| v == "MAIL").unwrap();
                assert_eq!(flight[mail..], ["MAIL", "RCPT", "RCPT", "RCPT"], "{flights:?}");
            }
            assert_eq!(flights.iter().filter(|f| **f == ["DATA"]).count(), 2, "{flights:?}");
        }
        _ => assert!(flights.iter().all(|f| f.len() == 1 || f.first().is_some_and(|v| v == ".")), "{flights:?}"),
    }
}

#[test]
fn a_copy_refused_for_now_and_a_refused_main_recipient_pipelined() {
    a_copy_refused_for_now_and_a_refused_main_recipient("auto");
}

#[test]
fn a_copy_refused_for_now_and_a_refused_main_recipient_lock_step() {
    a_copy_refused_for_now_and_a_refused_main_recipient("off");
}

/// A server with a recipient limit (Postfix's `smtpd_recipient_limit`: `452 4.5.3 Error: too many
/// recipients`) accepts the row's own address and refuses its copies, with `pipelining = "envelope"`
/// (MAIL and RCPTs grouped, DATA after their replies): the row is delivered once, both copies are in
/// `copies` with the 452, nothing is retried, the other rows are untouched, and the run exits 1, again
/// when it is run again.
#[test]
fn copies_refused_as_too_many_recipients_leave_the_row_delivered_once_envelope_pipelining() {
    let server = MailServer::start();
    server.offer_pipelining();
    let job = job(&server, "envelope");
    let [main0, cc0, bcc0] = copies_of(&job, 0);
    for copy in [&cc0, &bcc0] {
        server.reject(copy, "452 4.5.3 Error: too many recipients", 100);
    }
    let run = job.send(&["--yes"]);
    // Every row is delivered, but two people got nothing: exit 1, so that cron hears of it.
    run.expect(1).line_with(&[&format!("; copies not delivered: {cc0}: 452 4.5.3 Error: too many recipients")]);
    let row0 = &job.last_report().by_email()[&main0];
    assert_eq!((row0.status.as_str(), row0.attempts), ("delivered", 1), "{row0:?}");
    for copy in [&cc0, &bcc0] {
        assert!(row0.copies.contains(&format!("{copy}: 452 4.5.3 Error: too many recipients")), "{row0:?}");
    }
    let accepted = server.accepted();
    let count = |address: &String| accepted.get(address).copied().unwrap_or(0);
    assert_eq!([count(&main0), count(&cc0), count(&bcc0)], [1, 0, 0], "{accepted:?}");
    assert!((1..3).all(|i| copies_of(&job, i).iter().all(|a| count(a) == 1)), "{accepted:?}");
    assert_eq!(server.commands("DATA"), 3);
    let flights = server.flights();
    assert!(flights.iter().any(|f| f.ends_with(&["MAIL", "RCPT", "RCPT", "RCPT"].map(String::from))), "{flights:?}");
    assert!(!flights.iter().any(|f| f.len() > 1 && f.contains(&"DATA".to_owned())), "{flights:?}");

    // Run again (cron, a Kubernetes retry): nothing is sent, and the run still exits 1 for the copies
    // rejected the first time, as it would for a failed row; the report says where to look.
    job.send(&["--yes"]).expect(1);
    assert_eq!(server.commands("DATA"), 3, "nothing is sent again");
    let report = job.last_report().by_email();
    let row0 = &report[&main0];
    let got = (row0.status.as_str(), row0.copies.as_str());
    assert_eq!(got, ("delivered", "some rejected in an earlier run (see its report)"), "{row0:?}");
    assert!(report[&job.recipients[1]].copies.is_empty(), "{report:?}");
}
