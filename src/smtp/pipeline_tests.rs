//! Pipelined transcripts over an in-memory pipe (tier 2): the exact bytes of every write call (one per
//! command group) and every reply mapped to its own message, faults in the middle of a group included.

use tokio::task::JoinHandle;

use super::*;
use crate::smtp::config::{ClientConfig, Pipelining, Security};
use crate::smtp::connector::establish;
use crate::smtp::delivery::Committed;
use crate::smtp::stream::MaybeTls;
use crate::smtp::testing::{Recorded, Step, Tap, expect, peer, quick_timeouts, send};

pub(super) const PIPELINING: &str = "250-test.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
pub(super) const LOCK_STEP: &str = "250-test.example\r\n250 8BITMIME\r\n";
pub(super) const OPEN_A: &str = "MAIL FROM:<news@example.test>\r\nRCPT TO:<a@example.test>\r\nDATA\r\n";

pub(super) type TestSession = Session<MaybeTls<Recorded>>;

pub(super) async fn session(ehlo: &'static str, script: Vec<Step>) -> (TestSession, Tap, JoinHandle<Vec<u8>>) {
    session_with(Pipelining::Full, ehlo, script).await
}

pub(super) async fn session_with(
    pipelining: Pipelining,
    ehlo: &'static str,
    script: Vec<Step>,
) -> (TestSession, Tap, JoinHandle<Vec<u8>>) {
    session_windowed(pipelining, 1, ehlo, script).await
}

/// As [`session_with`], with `window` BDAT transactions in flight where `ehlo` offers CHUNKING.
pub(super) async fn session_windowed(
    pipelining: Pipelining,
    window: usize,
    ehlo: &'static str,
    script: Vec<Step>,
) -> (TestSession, Tap, JoinHandle<Vec<u8>>) {
    let mut steps = vec![send("220 test.example ESMTP\r\n"), expect("EHLO localhost"), send(ehlo)];
    steps.extend(script);
    let (io, server) = peer(steps);
    let (io, writes) = Recorded::new(io);
    let mut config = ClientConfig::new("localhost", 25);
    (config.security, config.timeouts, config.pipelining, config.window) =
        (Security::None, quick_timeouts(), pipelining, window);
    (establish(io, &config).await.unwrap(), writes, server)
}

/// Every write after EHLO, each one string.
pub(super) async fn groups(s: TestSession, tap: Tap, server: JoinHandle<Vec<u8>>) -> Vec<String> {
    drop(s);
    server.await.expect("the peer's script");
    let writes = tap.writes.lock().unwrap().clone();
    assert_eq!(writes[0], "EHLO localhost\r\n");
    writes[1..].to_vec()
}

pub(super) fn env(to: &str) -> Envelope {
    Envelope::new("news@example.test", [to]).unwrap()
}

pub(super) fn ok() -> std::future::Ready<Result<(), std::io::Error>> {
    std::future::ready(Ok(()))
}

/// The peer reads a whole group, then answers it, as a pipelining server does.
pub(super) fn group(lines: &[&str], replies: &str) -> Vec<Step> {
    lines.iter().map(|l| expect(*l)).chain([send(replies)]).collect()
}

pub(super) fn opening(to: &'static str) -> Vec<&'static str> {
    vec!["MAIL FROM:<news@example.test>", to, "DATA"]
}

pub(super) fn after_dot(to: &'static str) -> Vec<&'static str> {
    vec!["RSET", "MAIL FROM:<news@example.test>", to, "DATA"]
}

pub(super) fn ready(opened: Result<Opened, SessionError>) -> Ready {
    match opened {
        Ok(Opened::Ready(ready)) => ready,
        other => panic!("not ready: {other:?}"),
    }
}

pub(super) fn next(committed: &mut Committed) -> Result<Opened, SessionError> {
    committed.next.take().expect("a next message was given")
}

pub(super) fn accepted(result: &Result<Delivery, SessionError>, queue_id: &str) {
    assert!(
        matches!(result, Ok(Delivery::Accepted { reply: r, .. }) if r.to_string().ends_with(queue_id)),
        "{result:?}"
    );
}

/// Three messages: the first costs two groups, each later one a single group that carries the previous
/// body, its dot and the next envelope; each reply goes to its own message.
#[tokio::test]
async fn body_dot_and_the_next_envelope_leave_in_one_write() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    script.extend(group(
        &after_dot("RCPT TO:<b@example.test>"),
        "250 queued as A1\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n",
    ));
    script.push(Step::Data);
    script.extend(group(
        &after_dot("RCPT TO:<c@example.test>"),
        "250 queued as B2\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n",
    ));
    script.extend([Step::Data, send("250 queued as C3\r\n")]);
    let (mut s, writes, server) = session(PIPELINING, script).await;

    let (a, b, c) = (env("a@example.test"), env("b@example.test"), env("c@example.test"));
    let bodies: [&[u8]; 3] = [b"Subject: 1\n\none", b"Subject: 2\n\n.two", b"Subject: 3\n\nthree\r\n"];
    let messages = [
        Message { envelope: &a, body: bodies[0] },
        Message { envelope: &b, body: bodies[1] },
        Message { envelope: &c, body: bodies[2] },
    ];
    let mut opened = s.open(messages[0]).await;
    for (i, queue_id) in ["A1", "B2", "C3"].into_iter().enumerate() {
        let mut committed = s.commit(ready(opened), bodies[i], ok(), messages.get(i + 1).copied()).await;
        accepted(&committed.current, queue_id);
        match committed.next.take() {
            Some(next) => opened = next,
            None => break,
        }
    }
    assert!(s.is_open());
    let want = [
        OPEN_A.to_owned(),
        "Subject: 1\r\n\r\none\r\n.\r\nRSET\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
            .to_owned(),
        "Subject: 2\r\n\r\n..two\r\n.\r\nRSET\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n"
            .to_owned(),
        "Subject: 3\r\n\r\nthree\r\n.\r\n".to_owned(),
    ];
    assert_eq!(groups(s, writes, server).await, want);
}

/// RFC 2920 §3.1: RCPT refused but DATA accepted, so the data is ended with a lone dot; that dot and the
/// RSET open the next group instead of costing a round trip of their own.
#[tokio::test]
async fn a_refused_rcpt_whose_data_got_354_gets_a_lone_dot_and_rset_in_front_of_the_next_group() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    let replies = "250 queued as A1\r\n250 Ok\r\n250 Ok\r\n550 5.1.1 No such user\r\n354 go\r\n";
    script.extend(group(&after_dot("RCPT TO:<b@example.test>"), replies));
    let cleanup_and_c = [".", "RSET", "MAIL FROM:<news@example.test>", "RCPT TO:<c@example.test>", "DATA"];
    script.extend(group(&cleanup_and_c, "554 5.5.1 No valid recipients\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend([Step::Data, send("250 queued as C3\r\n")]);
    let (mut s, writes, server) = session(PIPELINING, script).await;

    let (a, b, c) = (env("a@example.test"), env("b@example.test"), env("c@example.test"));
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: b"two" })).await;
    accepted(&committed.current, "A1");
    let rejected = next(&mut committed).unwrap();
    assert!(matches!(&rejected, Opened::Done(Delivery::Rejected { stage: Stage::Rcpt, reply }) if reply.code() == 550));
    assert!(s.is_open());
    let third = ready(s.open(Message { envelope: &c, body: b"three" }).await);
    accepted(&s.commit(third, b"three", ok(), None).await.current, "C3");
    let sent = groups(s, writes, server).await;
    assert_eq!(sent[2], ".\r\nRSET\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n");
    assert_eq!(sent.len(), 4, "{sent:?}");
}

/// A refused MAIL: the 503s to RCPT and DATA are read (the replies stay in step) and the first refusal
/// is the outcome; RSET goes in front of the next group, no dot (DATA got no 354).
#[tokio::test]
async fn a_refused_mail_keeps_its_own_reply_and_the_later_503s_are_read_and_dropped() {
    let replies = "553 5.7.1 Sender rejected\r\n503 5.5.1 Need MAIL\r\n503 5.5.1 Need RCPT\r\n";
    let mut script = group(&opening("RCPT TO:<a@example.test>"), replies);
    let rset_and_a = ["RSET", "MAIL FROM:<news@example.test>", "RCPT TO:<a@example.test>", "DATA"];
    script.extend(group(&rset_and_a, "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.push(Step::Drain);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let a = env("a@example.test");
    let got = s.open(Message { envelope: &a, body: b"x" }).await.unwrap();
    assert!(matches!(&got, Opened::Done(Delivery::Rejected { stage: Stage::Mail, reply }) if reply.code() == 553));
    let _ready = ready(s.open(Message { envelope: &a, body: b"x" }).await);
    assert_eq!(groups(s, writes, server).await, [OPEN_A.to_owned(), format!("RSET\r\n{OPEN_A}")]);
}

/// The current dot refused and the next envelope accepted, in one round trip; the RSET that went behind
/// the dot covers the refusal, so no second RSET follows.
#[tokio::test]
async fn a_refused_dot_and_the_next_envelope_accepted_in_the_same_reply_batch() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    let replies = "554 5.7.1 Content rejected\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n";
    script.extend(group(&after_dot("RCPT TO:<b@example.test>"), replies));
    script.extend([Step::Data, send("250 queued as B2\r\n")]);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: b"two" })).await;
    let current = &committed.current;
    assert!(matches!(current, Ok(Delivery::Rejected { stage: Stage::DataEnd, reply }) if reply.code() == 554));
    let second = ready(next(&mut committed));
    accepted(&s.commit(second, b"two", ok(), None).await.current, "B2");
    assert_eq!(groups(s, writes, server).await.last().unwrap(), "two\r\n.\r\n");
}

/// Without PIPELINING the same calls give the same results, one command per write.
#[tokio::test]
async fn without_pipelining_the_same_calls_go_lock_step() {
    let mut script = vec![];
    for (to, queue_id) in
        [("RCPT TO:<a@example.test>", "250 queued as A1\r\n"), ("RCPT TO:<b@example.test>", "250 queued as B2\r\n")]
    {
        script.extend([expect("MAIL FROM:<news@example.test>"), send("250 Ok\r\n")]);
        script.extend([expect(to), send("250 Ok\r\n"), expect("DATA"), send("354 go\r\n")]);
        script.extend([Step::Data, send(queue_id)]);
    }
    let (mut s, writes, server) = session(LOCK_STEP, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: b"two" })).await;
    accepted(&committed.current, "A1");
    let second = ready(next(&mut committed));
    accepted(&s.commit(second, b"two", ok(), None).await.current, "B2");
    let mail = "MAIL FROM:<news@example.test>\r\n";
    let want = [mail, "RCPT TO:<a@example.test>\r\n", "DATA\r\n", "one\r\n.\r\n"];
    let want = want.into_iter().chain([mail, "RCPT TO:<b@example.test>\r\n", "DATA\r\n", "two\r\n.\r\n"]);
    assert_eq!(groups(s, writes, server).await, want.collect::<Vec<_>>());
}

/// With several recipients DATA waits for every RCPT reply: a 354 could then only be left with a dot,
/// delivering an empty message to the recipients that were accepted.
#[tokio::test]
async fn several_recipients_keep_data_out_of_the_group() {
    let rcpts = ["MAIL FROM:<news@example.test>", "RCPT TO:<a@example.test>", "RCPT TO:<b@example.test>"];
    let mut script = group(&rcpts, "250 Ok\r\n250 Ok\r\n550 5.1.1 No such user\r\n");
    script.extend(group(
        &["RSET"].into_iter().chain(rcpts).collect::<Vec<_>>(),
        "250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n",
    ));
    script.extend(group(&["DATA"], "354 go\r\n"));
    script.extend([Step::Data, send("250 queued as AB\r\n")]);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let both = Envelope::new("news@example.test", ["a@example.test", "b@example.test"]).unwrap();
    let got = s.open(Message { envelope: &both, body: b"x" }).await.unwrap();
    assert!(matches!(got, Opened::Done(Delivery::Rejected { stage: Stage::Rcpt, .. })), "{got:?}");
    let again = ready(s.open(Message { envelope: &both, body: b"x" }).await);
    accepted(&s.commit(again, b"x", ok(), None).await.current, "AB");
    let sent = groups(s, writes, server).await;
    let rcpts = "MAIL FROM:<news@example.test>\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n";
    assert_eq!(sent, [rcpts.to_owned(), format!("RSET\r\n{rcpts}"), "DATA\r\n".into(), "x\r\n.\r\n".into()]);
}

/// A next message the server cannot take (SIZE) is refused here and nothing of it is written.
#[tokio::test]
async fn a_next_message_refused_here_is_done_and_not_sent() {
    let open_a = ["MAIL FROM:<news@example.test> SIZE=5", "RCPT TO:<a@example.test>", "DATA"];
    let mut script = group(&open_a, "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.extend([Step::Data, send("250 queued as A1\r\n")]);
    let (mut s, writes, server) = session("250-t\r\n250-PIPELINING\r\n250 SIZE 50\r\n", script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let big = [b'x'; 80];
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: &big })).await;
    accepted(&committed.current, "A1");
    let refused = next(&mut committed).unwrap();
    assert_eq!(refused, Opened::Done(Delivery::Refused(Refusal::TooLarge { size: 82, limit: 50 })));
    assert_eq!(groups(s, writes, server).await.last().unwrap(), "one\r\n.\r\n");
}

/// A `Ready` dropped without commit leaves the server reading data: the session can only end.
#[tokio::test]
async fn a_dropped_ready_ends_the_session() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Drain);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let a = env("a@example.test");
    let _forgotten = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    assert!(matches!(s.open(Message { envelope: &a, body: b"one" }).await, Err(SessionError::Closed)));
    assert!(!s.is_open());
    assert_eq!(groups(s, writes, server).await, [OPEN_A]);
}

#[test]
fn replies_are_judged_by_stage() {
    let reply = |wire: &str| crate::smtp::reply::parse(wire.as_bytes()).unwrap().unwrap().0;
    let cases = [
        (Stage::Mail, "250 Ok\r\n", Judgement::Wanted),
        (Stage::Rcpt, "550 No\r\n", Judgement::Rejected),
        (Stage::Rcpt, "452 Later\r\n", Judgement::Rejected),
        (Stage::Data, "354 Go\r\n", Judgement::Wanted),
        (Stage::Data, "250 Ok\r\n", Judgement::Unexpected),
        (Stage::Mail, "354 Go\r\n", Judgement::Unexpected),
        (Stage::DataEnd, "421 Bye\r\n", Judgement::Closing),
        (Stage::DataEnd, "250 Queued\r\n", Judgement::Wanted),
    ];
    for (stage, wire, want) in cases {
        assert_eq!(judge(stage, &reply(wire)), want, "{stage} {wire:?}");
    }
}
