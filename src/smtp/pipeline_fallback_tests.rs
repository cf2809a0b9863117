//! A server that refuses commands pipelined behind a final dot (Haraka's SMTP-smuggling defence), and the
//! `Envelope` level that never writes past a dot (tier 2, exact writes).

use super::pipeline_tests::*;
use crate::smtp::config::Pipelining;
use crate::smtp::testing::{PIPELINED_AFTER_DOT, Step, send};
use crate::smtp::transaction::Message;

fn body(n: u8) -> Vec<u8> {
    format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Haraka answers the dot, then 503 to each command behind it. The session resets, opens the refused
/// transaction again at once (the caller sees only its opening), and from then on writes nothing behind a
/// dot: the next body goes alone, the envelope after its reply, still grouped.
#[tokio::test]
async fn commands_refused_behind_the_dot_are_sent_again_after_it_and_never_behind_one_again() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    let reply = format!("250 2.0.0 queued as A1\r\n{}", PIPELINED_AFTER_DOT.repeat(4));
    script.extend(group(&after_dot("RCPT TO:<b@example.test>"), &reply));
    script.extend(group(&["RSET"], "250 2.0.0 Ok\r\n"));
    script.extend(group(&opening("RCPT TO:<b@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend([Step::Data, send("250 2.0.0 queued as B2\r\n")]);
    script.extend(group(&opening("RCPT TO:<c@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend([Step::Data, send("250 2.0.0 queued as C3\r\n")]);
    let (mut s, writes, server) = session(PIPELINING, script).await;

    let (a, b, c) = (env("a@example.test"), env("b@example.test"), env("c@example.test"));
    let bodies = [body(1), body(2), body(3)];
    let m = |e, i: usize| Some(Message { envelope: e, body: &bodies[i] });
    let opened = s.open(m(&a, 0).unwrap()).await;
    let mut committed = s.commit(ready(opened), &bodies[0], ok(), m(&b, 1)).await;
    accepted(&committed.current, "A1");
    assert_eq!(s.pipelining(), Pipelining::Envelope);
    assert_eq!(s.pipelining_rejected().map(|r| r.code()), Some(503));
    let mut committed_b = s.commit(ready(next(&mut committed)), &bodies[1], ok(), m(&c, 2)).await;
    accepted(&committed_b.current, "B2");
    let committed_c = s.commit(ready(next(&mut committed_b)), &bodies[2], ok(), None).await;
    accepted(&committed_c.current, "C3");
    assert!(s.is_open());

    let want = [
        OPEN_A.to_owned(),
        format!(
            "{}.\r\nRSET\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n",
            "Subject: 1\r\n\r\nbody 1\r\n"
        ),
        "RSET\r\n".to_owned(),
        "MAIL FROM:<news@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n".to_owned(),
        "Subject: 2\r\n\r\nbody 2\r\n.\r\n".to_owned(),
        "MAIL FROM:<news@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n".to_owned(),
        "Subject: 3\r\n\r\nbody 3\r\n.\r\n".to_owned(),
    ];
    assert_eq!(groups(s, writes, server).await, want);
}

/// A server that takes the RSET but refuses the MAIL behind the dot as pipelined is recognised too.
#[tokio::test]
async fn a_mail_refused_as_pipelined_behind_the_dot_is_recognised() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    let replies = "250 queued as A1\r\n250 Ok\r\n550 5.5.0 Command pipelined after DATA refused\r\n503 no MAIL\r\n503 no MAIL\r\n";
    script.extend(group(&after_dot("RCPT TO:<b@example.test>"), replies));
    script.extend(group(&["RSET"], "250 Ok\r\n"));
    script.extend(group(&opening("RCPT TO:<b@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.push(Step::Drain);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let bodies = [body(1), body(2)];
    let opened = s.open(Message { envelope: &a, body: &bodies[0] }).await;
    let mut committed =
        s.commit(ready(opened), &bodies[0], ok(), Some(Message { envelope: &b, body: &bodies[1] })).await;
    accepted(&committed.current, "A1");
    ready(next(&mut committed));
    assert_eq!(s.pipelining(), Pipelining::Envelope);
    assert!(s.pipelining_rejected().is_some_and(|r| r.code() == 550));
    let writes = groups(s, writes, server).await;
    assert_eq!(writes.len(), 4, "{writes:?}");
}

/// An ordinary refusal of the next envelope behind a dot (a 550 at RCPT) is that message's outcome and
/// changes nothing about pipelining.
#[tokio::test]
async fn an_ordinary_refusal_behind_the_dot_keeps_full_pipelining() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    let replies = "250 queued as A1\r\n250 Ok\r\n250 Ok\r\n550 5.1.1 No such user\r\n503 5.5.1 No recipients\r\n";
    script.extend(group(&after_dot("RCPT TO:<b@example.test>"), replies));
    script.push(Step::Drain);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let bodies = [body(1), body(2)];
    let opened = s.open(Message { envelope: &a, body: &bodies[0] }).await;
    let mut committed =
        s.commit(ready(opened), &bodies[0], ok(), Some(Message { envelope: &b, body: &bodies[1] })).await;
    accepted(&committed.current, "A1");
    let refused = next(&mut committed);
    assert!(
        matches!(&refused, Ok(crate::smtp::Opened::Done(crate::smtp::Delivery::Rejected { reply, .. })) if reply.code() == 550),
        "{refused:?}"
    );
    assert_eq!((s.pipelining(), s.pipelining_rejected()), (Pipelining::Full, None));
    drop(groups(s, writes, server).await);
}

/// `Envelope`, configured: each envelope is one group, and nothing follows a dot in its write.
#[tokio::test]
async fn envelope_pipelining_never_writes_past_a_dot() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.extend([Step::Data, send("250 queued as A1\r\n")]);
    script.extend(group(&opening("RCPT TO:<b@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend([Step::Data, send("250 queued as B2\r\n")]);
    let (mut s, writes, server) = session_with(Pipelining::Envelope, PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let bodies = [body(1), body(2)];
    let opened = s.open(Message { envelope: &a, body: &bodies[0] }).await;
    let mut committed =
        s.commit(ready(opened), &bodies[0], ok(), Some(Message { envelope: &b, body: &bodies[1] })).await;
    accepted(&committed.current, "A1");
    let last = s.commit(ready(next(&mut committed)), &bodies[1], ok(), None).await;
    accepted(&last.current, "B2");
    let want = [
        OPEN_A.to_owned(),
        "Subject: 1\r\n\r\nbody 1\r\n.\r\n".to_owned(),
        "MAIL FROM:<news@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n".to_owned(),
        "Subject: 2\r\n\r\nbody 2\r\n.\r\n".to_owned(),
    ];
    assert_eq!(groups(s, writes, server).await, want);
}
