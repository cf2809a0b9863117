//! BDAT windows over an in-memory pipe: the exact bytes of each write (framing, sizes, `LAST`, no
//! dot-stuffing), every reply mapped to its own message with refusals in the middle, and the endings:
//! `421`, a lost connection, a write cut short, a server refusing pipelined commands, and the cases that
//! keep DATA.

pub(super) use super::pipeline_tests::session_windowed as windowed;
use super::pipeline_tests::{TestSession, env, groups};
use super::*;
use crate::smtp::testing::{Step, expect, send};

pub(super) const CHUNKING: &str = "250-test.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n";

/// The commands the server expects for one windowed transaction (a RSET before all but the first).
pub(super) fn transaction(to: &str, size: usize, rset: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    if rset {
        steps.push(expect("RSET"));
    }
    steps.push(expect("MAIL FROM:<news@example.test>"));
    steps.push(expect(format!("RCPT TO:<{to}>")));
    steps.push(expect(format!("BDAT {size} LAST")));
    steps.push(Step::Chunk(size));
    steps
}

pub(super) async fn outcome(s: &mut TestSession) -> Result<Delivery, SessionError> {
    match s.next_windowed().await.expect("a transaction in flight") {
        Windowed::Done(result) => result,
        Windowed::Again => panic!("refused as pipelined"),
    }
}

pub(super) fn accepted(result: &Result<Delivery, SessionError>, queue_id: &str) {
    assert!(
        matches!(result, Ok(Delivery::Accepted { reply, .. }) if reply.to_string().ends_with(queue_id)),
        "{result:?}"
    );
}

pub(super) fn rejected(result: &Result<Delivery, SessionError>, at: Stage, code: u16) {
    assert!(
        matches!(result, Ok(Delivery::Rejected { stage, reply }) if *stage == at && reply.code() == code),
        "{result:?}"
    );
}

/// Three messages leave in one write: each its MAIL, RCPT, `BDAT size LAST` and exactly `size` bytes, CRLF
/// line ends, lines starting with a dot sent as they are, no final dot; a RSET before the second and third.
#[tokio::test]
async fn a_window_is_one_write_of_exact_chunks_without_dot_stuffing() {
    let bodies: [&[u8]; 3] = [b"Subject: 1\n\n.one\n", b"Subject: 2\r\n\r\n..two\rbare", b""];
    let wire: [&str; 3] = ["Subject: 1\r\n\r\n.one\r\n", "Subject: 2\r\n\r\n..two\r\nbare\r\n", ""];
    let mut script = transaction("a@example.test", wire[0].len(), false);
    script.extend(transaction("b@example.test", wire[1].len(), true));
    script.extend(transaction("c@example.test", 0, true));
    let replies = "250 Ok\r\n250 Ok\r\n250 queued as A1\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n250 queued as B2\r\n\
                   250 Ok\r\n250 Ok\r\n250 Ok\r\n250 queued as C3\r\n";
    script.push(send(replies));
    let (mut s, writes, server) = windowed(Pipelining::Full, 3, CHUNKING, script).await;
    assert_eq!(s.window(), 3);

    let envelopes = [env("a@example.test"), env("b@example.test"), env("c@example.test")];
    for (envelope, body) in envelopes.iter().zip(bodies) {
        assert!(s.queue_chunked(Message { envelope, body }).is_none(), "queued");
    }
    assert_eq!(s.in_flight(), 3);
    s.flush_window().await;
    for queue_id in ["A1", "B2", "C3"] {
        accepted(&outcome(&mut s).await, queue_id);
    }
    assert!(s.next_windowed().await.is_none(), "nothing more in flight");
    assert!(s.is_open());
    let one_write = format!(
        "MAIL FROM:<news@example.test>\r\nRCPT TO:<a@example.test>\r\nBDAT {} LAST\r\n{}\
         RSET\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT {} LAST\r\n{}\
         RSET\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<c@example.test>\r\nBDAT 0 LAST\r\n",
        wire[0].len(),
        wire[0],
        wire[1].len(),
        wire[1]
    );
    assert_eq!(groups(s, writes, server).await, [one_write]);
}

/// Refusals in the middle of a window: each reply is its own message's, the first refusal of a
/// transaction is its outcome (not the 554/503 to its BDAT), and the session serves the rest.
#[tokio::test]
async fn refusals_in_the_middle_of_a_window_go_to_their_own_messages() {
    let body = b"x\r\n";
    let mut script = transaction("a@example.test", 3, false);
    for to in ["b@example.test", "c@example.test", "d@example.test"] {
        script.extend(transaction(to, 3, true));
    }
    script.push(send(
        "250 Ok\r\n250 Ok\r\n250 queued as A1\r\n\
         250 Ok\r\n250 Ok\r\n550 5.1.1 No such user\r\n554 5.5.1 No valid recipients\r\n\
         250 Ok\r\n451 4.3.0 Sender refused for now\r\n503 5.5.1 Need MAIL\r\n503 5.5.1 Need MAIL\r\n\
         250 Ok\r\n250 Ok\r\n250 Ok\r\n250 queued as D4\r\n",
    ));
    let (mut s, writes, server) = windowed(Pipelining::Full, 4, CHUNKING, script).await;
    let envelopes = ["a", "b", "c", "d"].map(|n| env(&format!("{n}@example.test")));
    for envelope in &envelopes {
        assert!(s.queue_chunked(Message { envelope, body }).is_none());
    }
    accepted(&outcome(&mut s).await, "A1");
    rejected(&outcome(&mut s).await, Stage::Rcpt, 550);
    rejected(&outcome(&mut s).await, Stage::Mail, 451);
    accepted(&outcome(&mut s).await, "D4");
    assert!(s.is_open() && s.window() == 4);
    assert_eq!(groups(s, writes, server).await.len(), 1, "one write for the whole window");
}

/// A `421` ends the session: its message and the ones after it are retryable (the server read no more),
/// none uncertain; the one before it stays delivered.
#[tokio::test]
async fn a_421_in_the_middle_makes_the_rest_retryable() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    script.extend(transaction("c@example.test", 3, true));
    script.push(send("250 Ok\r\n250 Ok\r\n250 queued as A1\r\n250 Ok\r\n250 Ok\r\n421 4.7.0 Closing\r\n"));
    script.push(Step::Close);
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 3, CHUNKING, script).await;
    let envelopes = ["a", "b", "c"].map(|n| env(&format!("{n}@example.test")));
    for envelope in &envelopes {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    accepted(&outcome(&mut s).await, "A1");
    let b = outcome(&mut s).await;
    assert!(matches!(&b, Err(SessionError::ServiceClosing { stage: Stage::Rcpt, .. })), "{b:?}");
    let c = outcome(&mut s).await;
    assert!(matches!(&c, Err(e) if e.is_retryable()), "{c:?}");
    assert!(!s.is_open());
    assert!(
        s.queue_chunked(Message { envelope: &envelopes[0], body: b"x" }).is_some(),
        "a closed session takes nothing"
    );
}

/// The connection lost after the window went out: every message whose bytes were handed over and not
/// answered may have been delivered (uncertain), and only those.
#[tokio::test]
async fn a_connection_lost_after_the_window_left_makes_the_unanswered_uncertain() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    script.extend(transaction("c@example.test", 3, true));
    script.push(send("250 Ok\r\n250 Ok\r\n250 queued as A1\r\n250 Ok\r\n"));
    script.push(Step::Close);
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 3, CHUNKING, script).await;
    let envelopes = ["a", "b", "c"].map(|n| env(&format!("{n}@example.test")));
    for envelope in &envelopes {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    accepted(&outcome(&mut s).await, "A1");
    for _ in 0..2 {
        let lost = outcome(&mut s).await;
        assert!(matches!(&lost, Err(e) if e.is_uncertain()), "{lost:?}");
    }
    assert!(!s.is_open());
}

/// A write cut short: the message whose last byte the stream took is uncertain, the one it did not
/// take is retryable.
#[tokio::test]
async fn a_write_cut_short_splits_the_window_into_uncertain_and_retryable() {
    let (mut s, writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, vec![Step::Drain]).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    assert!(s.queue_chunked(Message { envelope: &a, body: b"x\r\n" }).is_none());
    let first_len = s.conn.queued();
    assert!(s.queue_chunked(Message { envelope: &b, body: b"y\r\n" }).is_none());
    *writes.budget.lock().unwrap() = Some(first_len + 5);
    s.flush_window().await;
    let a_outcome = outcome(&mut s).await;
    assert!(matches!(&a_outcome, Err(e) if e.is_uncertain()), "{a_outcome:?}");
    let b_outcome = outcome(&mut s).await;
    assert!(matches!(&b_outcome, Err(e) if e.is_retryable()), "{b_outcome:?}");
}

/// A server that refuses commands written behind another message's data (503, as Haraka does behind a
/// dot): the refused message was never begun (`Again`), and the session stops using windows.
#[tokio::test]
async fn a_503_behind_a_chunk_means_again_and_the_session_drops_to_one_at_a_time() {
    let mut script = transaction("a@example.test", 3, false);
    script.extend(transaction("b@example.test", 3, true));
    let refused = "503 5.5.0 Bad sequence of commands - pipelined after end of DATA\r\n";
    script.push(send(format!("250 Ok\r\n250 Ok\r\n250 queued as A1\r\n{}", refused.repeat(4))));
    let (mut s, _writes, _server) = windowed(Pipelining::Full, 2, CHUNKING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    assert!(s.queue_chunked(Message { envelope: &a, body: b"x\r\n" }).is_none());
    assert!(s.queue_chunked(Message { envelope: &b, body: b"x\r\n" }).is_none());
    accepted(&outcome(&mut s).await, "A1");
    assert!(matches!(s.next_windowed().await, Some(Windowed::Again)));
    assert!(s.is_open());
    assert_eq!((s.pipelining(), s.window()), (Pipelining::Envelope, 1));
    assert!(s.pipelining_rejected().is_some_and(|r| r.code() == 503));
}

/// DATA stays where a window cannot be used: window 1, no CHUNKING, pipelining limited, or copies.
#[tokio::test]
async fn windows_need_chunking_full_pipelining_a_window_above_one_and_one_recipient() {
    let cases = [
        (Pipelining::Full, 1, CHUNKING, 1),
        (Pipelining::Full, 8, "250-test.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 1),
        (Pipelining::Full, 8, "250-test.example\r\n250-CHUNKING\r\n250 8BITMIME\r\n", 1),
        (Pipelining::Envelope, 8, CHUNKING, 1),
        (Pipelining::Off, 8, CHUNKING, 1),
        (Pipelining::Full, 8, CHUNKING, 8),
    ];
    for (pipelining, window, ehlo, want) in cases {
        let (s, _writes, _server) = windowed(pipelining, window, ehlo, vec![]).await;
        assert_eq!(s.window(), want, "{pipelining:?} window {window} {ehlo:?}");
        let one = env("a@example.test");
        assert_eq!(s.fits_window(Message { envelope: &one, body: b"" }), want > 1);
    }
    let (s, _writes, _server) = windowed(Pipelining::Full, 8, CHUNKING, vec![]).await;
    let copies = Envelope::new("news@example.test", ["a@example.test", "cc@example.test"]).unwrap();
    assert!(!s.fits_window(Message { envelope: &copies, body: b"" }), "copies go by DATA");
}

/// What Postfix does to a window on one connection: it answers `421` at a RCPT and closes while the rest
/// of the window is still being written, so our write fails. The replies it sent first are still read: the
/// message before is delivered, the one with the 421 and the ones after it are retryable, none uncertain.
#[tokio::test]
async fn a_421_that_breaks_our_write_is_still_read_and_nothing_is_uncertain() {
    let replies = "250 Ok\r\n250 Ok\r\n250 queued as A1\r\n250 Ok\r\n250 Ok\r\n421 4.7.0 Closing connection\r\n";
    let script = vec![expect("MAIL FROM:<news@example.test>"), send(replies), Step::Drain];
    let (mut s, writes, _server) = windowed(Pipelining::Full, 3, CHUNKING, script).await;
    let envelopes = ["a", "b", "c"].map(|n| env(&format!("{n}@example.test")));
    for envelope in &envelopes[..2] {
        assert!(s.queue_chunked(Message { envelope, body: b"x\r\n" }).is_none());
    }
    let two = s.conn.queued();
    assert!(s.queue_chunked(Message { envelope: &envelopes[2], body: b"x\r\n" }).is_none());
    *writes.budget.lock().unwrap() = Some(two + 4); // the peer is gone before the third message's data
    s.flush_window().await;
    accepted(&outcome(&mut s).await, "A1");
    let b = outcome(&mut s).await;
    assert!(matches!(&b, Err(SessionError::ServiceClosing { stage: Stage::Rcpt, .. })), "{b:?}");
    let c = outcome(&mut s).await;
    assert!(matches!(&c, Err(e) if e.is_retryable() && e.reply().is_none()), "{c:?}");
    assert!(!s.is_open());
}
