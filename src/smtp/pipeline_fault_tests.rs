//! Pipelined faults in the middle of a group (tier 2): a 421, a lost connection, a broken write, a failed
//! gate; each message gets its own outcome, and only a message whose dot was handed over can be uncertain.

use std::io;

use super::pipeline_tests::*;
use crate::smtp::connection::ConnectionError;
use crate::smtp::delivery::{SessionError, Stage};
use crate::smtp::testing::{Step, expect};
use crate::smtp::transaction::Message;

/// A 421 to the next MAIL after the current dot got its 250: the current is delivered, the next retryable.
#[tokio::test]
async fn a_421_at_the_next_mail_leaves_the_delivered_message_delivered_and_the_next_retryable() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    let replies = "250 queued as A1\r\n250 Ok\r\n421 4.7.0 Closing connection\r\n";
    script.extend(group(&after_dot("RCPT TO:<b@example.test>"), replies));
    script.push(Step::Close);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: b"two" })).await;
    accepted(&committed.current, "A1");
    let err = next(&mut committed).unwrap_err();
    assert!(matches!(&err, SessionError::ServiceClosing { stage: Stage::Mail, reply } if reply.code() == 421));
    assert!(err.is_retryable() && !err.is_uncertain(), "{err}");
    assert!(!s.is_open());
    groups(s, writes, server).await;
}

/// A 421 to the current dot: the current is not taken (retryable, as in lock-step), and neither is the next.
#[tokio::test]
async fn a_421_to_the_dot_makes_both_messages_retryable() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    script.extend(group(&after_dot("RCPT TO:<b@example.test>"), "421 4.3.2 Shutting down\r\n"));
    script.push(Step::Close);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: b"two" })).await;
    let current = committed.current.as_ref().unwrap_err();
    assert!(matches!(current, SessionError::ServiceClosing { stage: Stage::DataEnd, .. }) && current.is_retryable());
    // The 421 answered the current message; the next got no reply of its own (nothing to judge it by).
    let err = next(&mut committed).unwrap_err();
    assert!(matches!(err, SessionError::Connection { stage: Stage::Mail, .. }), "{err:?}");
    assert!(err.is_retryable() && err.reply().is_none(), "{err:?}");
    groups(s, writes, server).await;
}

/// The connection lost after the current dot went out and before its reply: the current message is
/// uncertain; the next one, whose DATA never got content, is retryable.
#[tokio::test]
async fn lost_after_the_dot_the_current_is_uncertain_and_the_next_retryable() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Data);
    script.extend(after_dot("RCPT TO:<b@example.test>").into_iter().map(expect));
    script.push(Step::Close);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: b"two" })).await;
    let current = committed.current.as_ref().unwrap_err();
    assert!(matches!(current, SessionError::Uncertain { source: ConnectionError::Closed { .. } }), "{current}");
    assert!(current.is_uncertain());
    let err = next(&mut committed).unwrap_err();
    assert!(matches!(err, SessionError::Connection { stage: Stage::Mail, .. }) && err.is_retryable(), "{err}");
    groups(s, writes, server).await;
}

/// A write that breaks: before the dot's last byte was taken the current message is retryable, after it
/// (while the next envelope was being written) uncertain; the next one is retryable either way.
#[tokio::test]
async fn a_broken_write_is_uncertain_only_once_the_dot_was_handed_over() {
    let group_len = "one\r\n.\r\n".len();
    for (budget, uncertain) in [(0, false), (group_len - 1, false), (group_len, true), (group_len + 5, true)] {
        let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
        script.push(Step::Drain);
        let (mut s, tap, server) = session(PIPELINING, script).await;
        let (a, b) = (env("a@example.test"), env("b@example.test"));
        let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
        *tap.budget.lock().unwrap() = Some(budget);
        let mut committed = s.commit(first, b"one", ok(), Some(Message { envelope: &b, body: b"two" })).await;
        let current = committed.current.as_ref().unwrap_err();
        assert_eq!(current.is_uncertain(), uncertain, "budget {budget}: {current}");
        if !uncertain {
            assert!(matches!(current, SessionError::Connection { stage: Stage::Data, .. }), "{current}");
        }
        let err = next(&mut committed).unwrap_err();
        assert!(matches!(err, SessionError::Connection { stage: Stage::Mail, .. }) && err.is_retryable(), "{err}");
        assert!(!s.is_open());
        groups(s, tap, server).await;
    }
}

/// A failed gate: nothing of the group is written (no dot, no next envelope); the session is dropped.
#[tokio::test]
async fn a_failed_gate_writes_nothing_and_the_next_message_is_untouched() {
    let mut script = group(&opening("RCPT TO:<a@example.test>"), "250 Ok\r\n250 Ok\r\n354 go\r\n");
    script.push(Step::Drain);
    let (mut s, writes, server) = session(PIPELINING, script).await;
    let (a, b) = (env("a@example.test"), env("b@example.test"));
    let first = ready(s.open(Message { envelope: &a, body: b"one" }).await);
    let gate = async { Err::<(), _>(io::Error::other("journal disk full")) };
    let mut committed = s.commit(first, b"one", gate, Some(Message { envelope: &b, body: b"two" })).await;
    assert!(matches!(committed.current, Err(SessionError::Gate { .. })));
    assert!(matches!(next(&mut committed), Err(SessionError::Closed)));
    assert!(!s.is_open());
    assert_eq!(groups(s, writes, server).await, [OPEN_A]);
}
