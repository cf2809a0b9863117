//! Envelopes with copies (Cc/Bcc of a mail merge row, [`Envelope::with_copies`]): a copy's rejected `RCPT`
//! is noted and the message still goes to the main recipient; the main recipient's rejection sends nothing,
//! whatever the copies got. Pipelined (every `RCPT` reply read before `DATA`) and lock-step.

use super::pipeline_tests::{LOCK_STEP, PIPELINING, TestSession, group, groups, ok, ready, session_with};
use super::*;
use crate::smtp::config::Pipelining;
use crate::smtp::testing::{Step, expect, send};

const ENVELOPE: [&str; 4] = [
    "MAIL FROM:<news@example.test>",
    "RCPT TO:<ann@example.test>",
    "RCPT TO:<cc@example.test>",
    "RCPT TO:<bcc@example.test>",
];
const ENVELOPE_GROUP: &str = "MAIL FROM:<news@example.test>\r\nRCPT TO:<ann@example.test>\r\n\
    RCPT TO:<cc@example.test>\r\nRCPT TO:<bcc@example.test>\r\n";

fn with_copies() -> Envelope {
    Envelope::with_copies("news@example.test", "ann@example.test", ["cc@example.test", "bcc@example.test"]).unwrap()
}

async fn send_one(s: &mut TestSession) -> Result<Delivery, SessionError> {
    let env = with_copies();
    match s.open(Message { envelope: &env, body: b"Subject: x\n\nhi" }).await? {
        Opened::Done(delivery) => Ok(delivery),
        opened => s.commit(ready(Ok(opened)), b"Subject: x\n\nhi", ok(), None).await.current,
    }
}

fn rejected_cc(delivery: &Result<Delivery, SessionError>) -> Vec<String> {
    match delivery {
        Ok(Delivery::Accepted { rejected_copies, .. }) => rejected_copies.iter().map(|c| c.to_string()).collect(),
        other => panic!("not accepted: {other:?}"),
    }
}

/// Every RCPT in one group; DATA only once all their replies are read, and the rejected copy noted.
#[tokio::test]
async fn pipelined_a_rejected_copy_is_noted_and_the_main_recipient_gets_the_message() {
    let mut script = group(&ENVELOPE, "250 Ok\r\n250 Ok\r\n550 5.1.1 No such user\r\n250 Ok\r\n");
    script.extend([expect("DATA"), send("354 go\r\n"), Step::Data, send("250 queued as A1\r\n")]);
    let (mut s, writes, server) = session_with(Pipelining::Full, PIPELINING, script).await;
    let delivery = send_one(&mut s).await;
    assert_eq!(rejected_cc(&delivery), ["cc@example.test: 550 5.1.1 No such user"]);
    assert!(s.is_open());
    let want = [ENVELOPE_GROUP, "DATA\r\n", "Subject: x\r\n\r\nhi\r\n.\r\n"];
    assert_eq!(groups(s, writes, server).await, want);
}

/// The main recipient rejected and both copies accepted: no DATA, a RSET in front of the next group.
#[tokio::test]
async fn pipelined_a_rejected_main_recipient_sends_nothing_to_the_accepted_copies() {
    let mut script = group(&ENVELOPE, "250 Ok\r\n550 5.1.1 No such user\r\n250 Ok\r\n250 Ok\r\n");
    let next = ["RSET", "MAIL FROM:<news@example.test>", "RCPT TO:<bob@example.test>", "DATA"];
    script.extend(group(&next, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend([Step::Data, send("250 queued as B2\r\n")]);
    let (mut s, writes, server) = session_with(Pipelining::Full, PIPELINING, script).await;
    let delivery = send_one(&mut s).await;
    assert!(
        matches!(&delivery, Ok(Delivery::Rejected { stage: Stage::Rcpt, reply }) if reply.code() == 550),
        "{delivery:?}"
    );
    let bob = Envelope::new("news@example.test", ["bob@example.test"]).unwrap();
    assert!(matches!(s.send(&bob, b"x").await, Ok(Delivery::Accepted { .. })));
    let written = groups(s, writes, server).await;
    assert_eq!(written[0], ENVELOPE_GROUP);
    assert!(written[1].starts_with("RSET\r\nMAIL FROM:"), "{written:?}");
    assert!(!written[0].contains("DATA"));
}

#[tokio::test]
async fn lock_step_a_rejected_copy_is_noted_and_the_main_recipient_gets_the_message() {
    let mut script = Vec::new();
    for (line, reply) in ENVELOPE.iter().zip(["250 Ok\r\n", "250 Ok\r\n", "250 Ok\r\n", "450 4.2.0 Busy\r\n"]) {
        script.extend([expect(*line), send(reply)]);
    }
    script.extend([expect("DATA"), send("354 go\r\n"), Step::Data, send("250 queued as A1\r\n")]);
    let (mut s, writes, server) = session_with(Pipelining::Full, LOCK_STEP, script).await;
    let delivery = send_one(&mut s).await;
    assert_eq!(rejected_cc(&delivery), ["bcc@example.test: 450 4.2.0 Busy"]);
    assert_eq!(groups(s, writes, server).await.len(), 6, "one write per command and the body");
}

/// Lock-step: the main recipient's RCPT goes first, so its rejection stops before any copy's RCPT.
#[tokio::test]
async fn lock_step_a_rejected_main_recipient_stops_before_the_copies() {
    let script = vec![
        expect(ENVELOPE[0]),
        send("250 Ok\r\n"),
        expect(ENVELOPE[1]),
        send("550 5.1.1 No such user\r\n"),
        expect("RSET"),
        send("250 Ok\r\n"),
    ];
    let (mut s, writes, server) = session_with(Pipelining::Off, PIPELINING, script).await;
    let delivery = send_one(&mut s).await;
    assert!(matches!(&delivery, Ok(Delivery::Rejected { stage: Stage::Rcpt, .. })), "{delivery:?}");
    let want = [ENVELOPE[0], ENVELOPE[1], "RSET"].map(|l| format!("{l}\r\n"));
    assert_eq!(groups(s, writes, server).await, want);
}
