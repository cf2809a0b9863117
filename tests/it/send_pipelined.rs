//! `mailshot send` through the worker's pipelined path (RFC 2920) against the scripted server, which records
//! what arrived in each flight: envelopes grouped, the next message's commands behind a final dot, and the
//! fallback when a server refuses those as Haraka does (503, then envelope pipelining for the rest of the run).

use std::time::Duration;

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

/// A pipelining server whose replies each take a little while, so that the next messages are rendered and at
/// hand whenever a final dot goes out (the worker pipelines only what is ready).
fn pipelining_server() -> MailServer {
    let server = MailServer::start();
    server.offer_pipelining();
    server.set_delay(Duration::from_millis(20));
    server
}

/// A one-connection job of `n` messages; one session, so every flight of the run is in order.
fn job(server: &MailServer, prefix: &str, n: usize) -> SendJob {
    let tag = unique_tag(prefix);
    SendJob::new(&tag, &Smtp::scripted(server).with("connections = 1"), addresses(&tag, n), "")
}

/// Every row delivered at its first attempt, each recipient's message accepted once and personalised.
fn assert_delivered_once(server: &MailServer, job: &SendJob) {
    let report = job.last_report();
    let late: Vec<_> = report.rows.iter().filter(|r| (r.status.as_str(), r.attempts) != ("delivered", 1)).collect();
    assert!(late.is_empty(), "not delivered at the first attempt: {late:#?}");
    for (i, rcpt) in job.recipients.iter().enumerate() {
        assert_eq!(server.accepted().get(rcpt), Some(&1), "{rcpt}");
        let bodies = server.bodies(rcpt);
        let (subject, _) = job.personalised(i);
        assert!(String::from_utf8_lossy(&bodies[0]).contains(&subject), "{rcpt} got another's message");
    }
}

/// Each flight that holds a MAIL holds its RCPT and DATA behind it, and nothing after them.
fn assert_envelopes_grouped(flights: &[Vec<String>]) {
    for flight in flights {
        if let Some(mail) = flight.iter().position(|v| v == "MAIL") {
            assert_eq!(flight[mail..], ["MAIL", "RCPT", "DATA"], "an envelope not sent as one group: {flights:?}");
        }
    }
}

/// A flight whose first line is a final dot with commands behind it.
fn behind_a_dot(flight: &[String]) -> bool {
    flight.first().is_some_and(|v| v == ".") && flight.len() > 1
}

#[test]
fn send_pipelines_each_envelope_and_the_next_one_behind_the_dot() {
    let server = pipelining_server();
    let job = job(&server, "pipelined", 12);
    job.send(&["--yes"]).expect(0);

    assert_delivered_once(&server, &job);
    let flights = server.flights();
    assert_eq!(server.commands("MAIL"), 12, "{flights:?}");
    assert_envelopes_grouped(&flights);
    let behind: Vec<_> = flights.iter().filter(|f| behind_a_dot(f)).collect();
    assert!(!behind.is_empty(), "no message was pipelined behind a final dot: {flights:?}");
    for flight in behind {
        assert_eq!(flight[..], [".", "RSET", "MAIL", "RCPT", "DATA"], "{flights:?}");
    }
    assert_eq!(server.rejected_behind_dot(), 0);
}

#[test]
fn a_server_refusing_commands_behind_the_dot_gets_envelope_pipelining_for_the_rest_of_the_run() {
    let server = pipelining_server();
    server.reject_behind_dot();
    let job = job(&server, "haraka", 12);
    let run = job.send(&["--yes"]);
    run.expect(0);

    assert_delivered_once(&server, &job);
    let flights = server.flights();
    let behind: Vec<_> = flights.iter().filter(|f| behind_a_dot(f)).collect();
    assert_eq!(behind.len(), 1, "pipelined past the dot once, then never again: {flights:?}");
    let refused = behind[0].len() - 1;
    assert_eq!(server.rejected_behind_dot() as usize, refused, "each command behind that dot was refused");
    // The refused envelope went again after the dot's reply, so 12 messages took 12 accepted MAILs and the
    // refused one.
    assert_eq!(server.commands("MAIL"), 13, "{flights:?}");
    let after_rejection: Vec<Vec<String>> = flights.iter().skip_while(|f| !behind_a_dot(f)).skip(1).cloned().collect();
    assert!(after_rejection.iter().any(|f| f[..] == ["MAIL", "RCPT", "DATA"]), "{flights:?}");
    assert_envelopes_grouped(&after_rejection);
    let switch: Vec<_> = run.stderr.lines().filter(|l| l.contains("pipelined after end of DATA")).collect();
    assert_eq!(switch.len(), 1, "the switch is logged once, with the server's reply:\n{}", run.stderr);
}
