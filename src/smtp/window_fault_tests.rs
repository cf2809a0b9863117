//! BDAT windows against a server that lies or splits its replies, and against the checks made before a
//! message's commands are written (SIZE, 8BITMIME, SMTPUTF8): each message still gets its own outcome.

use std::time::Duration;

use super::pipeline_tests::{env, groups};
use super::window_tests::{CHUNKING, accepted, outcome, rejected, transaction, windowed};
use super::*;
use crate::smtp::testing::{Step, expect, send};

/// A server that refused the RCPT and still says `250` to the BDAT behind it: nothing can have been
/// delivered without a recipient, so the refusal stands and the lie is not a delivery.
#[tokio::test]
async fn a_250_to_bdat_after_a_refused_rcpt_is_still_the_refusal() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    script.push(send(
        "250 Ok\r\n550 5.1.1 No such user\r\n250 2.0.0 queued as LIE\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n250 queued as B2\r\n",
    ));
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    for envelope in [&a, &b] {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    rejected(&outcome(&mut s).await, Stage::Rcpt, 550);
    accepted(&outcome(&mut s).await, "B2");
    assert!(s.is_open());
}

/// Replies cut anywhere across reads (inside a code, inside a line, between lines) are put together
/// before they are mapped to their messages.
#[tokio::test]
async fn replies_split_across_reads_are_mapped_as_whole_ones() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    let pause = || Step::Sleep(Duration::from_millis(5));
    for piece in
        ["25", "0 Ok\r\n250 O", "k\r\n250 queued", " as A1\r", "\n250 Ok\r\n250 Ok\r\n250-Ok\r\n", "250 Ok\r\n"]
    {
        script.extend([send(piece), pause()]);
    }
    script.push(send("250 queued as B2\r\n"));
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    for envelope in [&a, &b] {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    accepted(&outcome(&mut s).await, "A1");
    accepted(&outcome(&mut s).await, "B2");
}

/// A `354` to a BDAT makes no sense (there is no data phase to open): the session ends, and that message
/// and every later one whose bytes went out may have been delivered (uncertain); none is reported as sent.
#[tokio::test]
async fn a_354_to_bdat_ends_the_session_and_leaves_the_handed_uncertain() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    script.extend([send("250 Ok\r\n250 Ok\r\n354 Go ahead\r\n"), Step::Drain]);
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    for envelope in [&a, &b] {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    for _ in 0..2 {
        let lost = outcome(&mut s).await;
        assert!(matches!(&lost, Err(e) if e.is_uncertain()), "{lost:?}");
    }
    assert!(!s.is_open());
}

/// A message over the server's SIZE in the middle of a window is refused here, none of its commands
/// written; the ones before and after it go out in the same write and are delivered.
#[tokio::test]
async fn a_message_over_size_in_the_middle_of_a_window_is_refused_and_the_rest_go() {
    const SIZED: &str = "250-test.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-SIZE 100\r\n250 8BITMIME\r\n";
    let mut script = vec![
        expect("MAIL FROM:<news@example.test> SIZE=3"),
        expect("RCPT TO:<a@example.test>"),
        expect("BDAT 3 LAST"),
        Step::Chunk(3),
        expect("RSET"),
        expect("MAIL FROM:<news@example.test> SIZE=3"),
        expect("RCPT TO:<c@example.test>"),
        expect("BDAT 3 LAST"),
        Step::Chunk(3),
    ];
    script.push(send("250 Ok\r\n250 Ok\r\n250 queued as A1\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n250 queued as C3\r\n"));
    let (mut s, writes, server) = windowed(Pipelining::Full, 3, SIZED, script).await;
    let (a, big, c) = (env("a@example.test"), env("big@example.test"), env("c@example.test"));
    assert!(s.queue_chunked(Message { envelope: &a, body: b"x\r\n" }).is_none());
    let too_big = s.queue_chunked(Message { envelope: &big, body: &[b'y'; 200] });
    assert!(matches!(too_big, Some(Ok(Delivery::Refused(Refusal::TooLarge { .. })))), "{too_big:?}");
    assert!(s.queue_chunked(Message { envelope: &c, body: b"z\r\n" }).is_none());
    accepted(&outcome(&mut s).await, "A1");
    accepted(&outcome(&mut s).await, "C3");
    assert_eq!(groups(s, writes, server).await.len(), 1, "one write for the window");
}

/// An 8-bit body and an address that needs SMTPUTF8 go in a window with their MAIL parameters, sent as
/// they are (BDAT has no 7-bit rule of its own); where the server lacks the extension, the message is
/// refused here and the window goes on.
#[tokio::test]
async fn eight_bit_and_smtputf8_messages_go_in_windows_with_their_parameters() {
    const UTF8: &str = "250-test.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
    let body = "Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0} vu\r\n".as_bytes();
    let script = vec![
        expect("MAIL FROM:<news@example.test> BODY=8BITMIME SMTPUTF8"),
        expect("RCPT TO:<j\u{f6}rg@example.test>"),
        expect(format!("BDAT {} LAST", body.len())),
        Step::Chunk(body.len()),
        send("250 Ok\r\n250 Ok\r\n250 queued as U1\r\n"),
    ];
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, UTF8, script).await;
    let to = env("j\u{f6}rg@example.test");
    assert!(s.queue_chunked(Message { envelope: &to, body }).is_none());
    accepted(&outcome(&mut s).await, "U1");

    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, vec![]).await;
    let refused = s.queue_chunked(Message { envelope: &to, body });
    assert!(matches!(refused, Some(Ok(Delivery::Refused(Refusal::SmtpUtf8NotOffered)))), "{refused:?}");
    assert_eq!((s.in_flight(), s.conn.queued()), (0, 0), "nothing of it queued");
}

/// A server that sent one reply more than it was asked for: every later reply would be taken for the
/// message before its own (here a content refusal of `b` would read as its delivery). Found before the next
/// window is written, when no reply is due: the session ends, and the window, never written, is retryable.
#[tokio::test]
async fn a_reply_nobody_asked_for_ends_the_session_before_the_next_window() {
    let mut script = transaction("a@example.test", 3, false);
    script.push(send("250 Ok\r\n250 Ok\r\n250 queued as A1\r\n250 2.0.0 Ok\r\n"));
    script.extend(transaction("b@example.test", 3, true));
    script.push(send("250 Ok\r\n250 Ok\r\n250 Ok\r\n554 5.7.1 Message content rejected\r\n"));
    let (mut s, writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    assert!(s.queue_chunked(Message { envelope: &a, body: b"x\r\n" }).is_none());
    accepted(&outcome(&mut s).await, "A1");
    tokio::task::yield_now().await;
    assert!(s.queue_chunked(Message { envelope: &b, body: b"x\r\n" }).is_none());
    let b_outcome = outcome(&mut s).await;
    assert!(
        matches!(&b_outcome, Err(SessionError::Protocol { stage: Stage::Mail, reply }) if reply.code() == 250),
        "{b_outcome:?}"
    );
    assert!(b_outcome.as_ref().is_err_and(|e| e.is_retryable()));
    assert!(!s.is_open());
    assert_eq!(writes.writes.lock().unwrap().len(), 2, "EHLO and a's window; nothing of b");
}

/// A server that refuses the RSET written behind a chunk and then takes the transaction after it anyway
/// (MAIL, RCPT and BDAT all 2xx): the message was delivered, whatever the RSET's refusal said. Sending it
/// again would deliver it twice.
#[tokio::test]
async fn a_refused_rset_before_a_delivered_transaction_is_not_a_refusal() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    script.push(send(format!(
        "250 Ok\r\n250 Ok\r\n250 queued as A1\r\n{}250 Ok\r\n250 Ok\r\n250 queued as B2\r\n",
        crate::smtp::testing::PIPELINED_AFTER_DOT
    )));
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    for envelope in [&a, &b] {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    accepted(&outcome(&mut s).await, "A1");
    let b_outcome = s.next_windowed().await.expect("b in flight");
    assert!(
        matches!(&b_outcome, Windowed::Done(Ok(Delivery::Accepted { reply, .. })) if reply.to_string().ends_with("B2")),
        "{b_outcome:?}"
    );
}

/// The RSET behind a chunk refused, then the connection lost before the MAIL's reply: the RSET's refusal
/// says nothing of the message (a permanent refusal at MAIL FROM would stop the whole job). Its bytes went
/// out unanswered: uncertain, as for any lost connection.
#[tokio::test]
async fn a_refused_rset_then_a_lost_connection_is_not_a_refusal_of_the_sender() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    script.push(send(format!("250 Ok\r\n250 Ok\r\n250 queued as A1\r\n{}", crate::smtp::testing::PIPELINED_AFTER_DOT)));
    script.push(Step::Close);
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    for envelope in [&a, &b] {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    accepted(&outcome(&mut s).await, "A1");
    let lost = outcome(&mut s).await;
    assert!(matches!(&lost, Err(e) if e.is_uncertain()), "{lost:?}");
}
