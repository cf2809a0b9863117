use std::time::Duration;

use super::*;
use crate::smtp::connection::ConnectionError;
use crate::smtp::reply;

fn reply(wire: &str) -> Reply {
    reply::parse(wire.as_bytes()).unwrap().expect("a complete reply").0
}

fn rejected(stage: Stage, wire: &str) -> Disposition {
    classify(&Ok(Delivery::Rejected { stage, reply: reply(wire) })).disposition
}

#[test]
fn accepted_is_delivered_with_the_full_reply() {
    let v = classify(&Ok(Delivery::Accepted(reply("250 2.0.0 Ok: queued as 4ABC\r\n"))));
    assert_eq!(v.disposition, Disposition::Delivered);
    assert_eq!((v.code, v.enhanced.as_deref()), (Some(250), Some("2.0.0")));
    assert_eq!(v.text, "250 2.0.0 Ok: queued as 4ABC");
}

#[test]
fn permanent_refusals_fail_the_recipient_but_at_mail_stop_the_job() {
    assert_eq!(rejected(Stage::Rcpt, "550 5.1.1 No such user\r\n"), Disposition::Failed);
    assert_eq!(rejected(Stage::Data, "554 5.7.1 DATA refused\r\n"), Disposition::Failed);
    assert_eq!(rejected(Stage::DataEnd, "554 5.7.1 Message content rejected\r\n"), Disposition::Failed);
    assert_eq!(rejected(Stage::Mail, "553 5.7.1 Sender address rejected\r\n"), Disposition::Abort);
}

#[test]
fn temporary_refusals_are_retried_on_the_same_session() {
    for stage in [Stage::Mail, Stage::Rcpt, Stage::Data, Stage::DataEnd] {
        assert_eq!(
            rejected(stage, "450 4.2.0 Mailbox temporarily unavailable\r\n"),
            Disposition::Retry { after: None, session_ends: false, throttled: false },
            "{stage}"
        );
    }
}

#[test]
fn closing_421_ends_the_session_and_is_retried() {
    let error = SessionError::ServiceClosing { stage: Stage::Rcpt, reply: reply("421 4.7.0 Closing connection\r\n") };
    let v = classify(&Err(error));
    assert_eq!(v.disposition, Disposition::Retry { after: None, session_ends: true, throttled: true });
    assert_eq!(v.code, Some(421));
}

#[test]
fn connection_lost_before_the_dot_is_retried_after_it_is_uncertain() {
    let lost = || ConnectionError::Closed { phase: crate::smtp::Phase::Data };
    let before = classify(&Err(SessionError::Connection { stage: Stage::Data, source: lost() }));
    assert_eq!(before.disposition, Disposition::Retry { after: None, session_ends: true, throttled: false });
    let after = classify(&Err(SessionError::Uncertain { source: lost() }));
    assert_eq!(after.disposition, Disposition::Uncertain);
}

#[test]
fn a_failed_journal_commit_stops_the_job() {
    let v = classify(&Err(SessionError::Gate { source: "disk full".into() }));
    assert_eq!(v.disposition, Disposition::Abort);
}

#[test]
fn throttling_replies_are_recognised() {
    for wire in [
        "421 4.7.0 Try again later, closing connection\r\n",
        "450 4.2.1 The user you are trying to contact is receiving mail too quickly\r\n",
        "454 4.7.0 Too many login attempts, please try again later\r\n",
        "451 Rate limit exceeded\r\n",
    ] {
        assert!(is_throttling(&reply(wire)), "{wire}");
    }
    for wire in ["450 4.2.0 Mailbox temporarily unavailable\r\n", "550 5.7.0 Too many recipients\r\n"] {
        assert!(!is_throttling(&reply(wire)), "{wire}");
    }
}

#[test]
fn server_hints_for_the_wait_are_honoured() {
    let cases = [
        ("451 4.7.1 Please try again in 30 seconds\r\n", Some(30)),
        ("421 4.7.0 Too many connections, retry in 5 minutes\r\n", Some(300)),
        ("450 4.2.1 Try again after 120s\r\n", Some(120)),
        ("450-4.2.1 Busy\r\n450 4.2.1 try again in 1 hour.\r\n", Some(3600)),
        ("450 4.2.0 Mailbox temporarily unavailable\r\n", None),
        ("450 4.2.0 Quota 30 seconds\r\n", None),
    ];
    for (wire, secs) in cases {
        assert_eq!(retry_hint(&reply(wire)), secs.map(Duration::from_secs), "{wire}");
    }
    let v = classify(&Ok(Delivery::Rejected { stage: Stage::Rcpt, reply: reply(cases[0].0) }));
    assert!(matches!(v.disposition, Disposition::Retry { after: Some(d), .. } if d == Duration::from_secs(30)));
}

#[test]
fn backoff_grows_exponentially_with_bounded_jitter() {
    let initial = Duration::from_secs(10);
    let max = Duration::from_secs(300);
    for attempt in 1..=8u32 {
        let base = (initial * 2u32.pow(attempt - 1)).min(max);
        for _ in 0..50 {
            let d = backoff(attempt, initial, max);
            assert!(d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25), "attempt {attempt}: {d:?}");
        }
    }
}

#[test]
fn a_multi_line_reply_keeps_every_line() {
    let r = reply("550-5.1.1 The email account does not exist.\r\n550-5.1.1 Please check.\r\n550 5.1.1 id x12\r\n");
    assert_eq!(one_line(&r), "550 5.1.1 The email account does not exist. / 5.1.1 Please check. / 5.1.1 id x12");
}
