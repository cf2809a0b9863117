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
    let v =
        classify(&Ok(Delivery::Accepted { reply: reply("250 2.0.0 Ok: queued as 4ABC\r\n"), rejected_copies: vec![] }));
    assert_eq!(v.disposition, Disposition::Delivered);
    assert_eq!((v.code, v.enhanced.as_deref()), (Some(250), Some("2.0.0")));
    assert_eq!(v.text, "250 2.0.0 Ok: queued as 4ABC");
    assert_eq!(v.copies, "");
}

#[test]
fn rejected_copies_leave_the_row_delivered_and_are_listed() {
    let rejected_copies = vec![
        RejectedCopy { address: "cc@example.test".into(), reply: reply("550 5.1.1 No such user\r\n") },
        RejectedCopy { address: "bcc@example.test".into(), reply: reply("450-4.2.0 Try\r\n450 4.2.0 later\r\n") },
    ];
    let v = classify(&Ok(Delivery::Accepted { reply: reply("250 2.0.0 Ok\r\n"), rejected_copies }));
    assert_eq!(v.disposition, Disposition::Delivered);
    assert_eq!(v.copies, "cc@example.test: 550 5.1.1 No such user; bcc@example.test: 450 4.2.0 Try / 4.2.0 later");
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
        "450 4.7.1 Error: too much mail from 127.0.0.1\r\n",
        "450 4.7.1 Error: too many recipients from 127.0.0.1\r\n",
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

#[test]
fn a_5xx_at_mail_about_the_message_fails_it_and_one_about_the_sender_stops_the_job() {
    for wire in [
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n",
        "552 Too big\r\n",
        "555 5.5.4 Unsupported option: SIZE\r\n",
        "550 5.3.4 Message too big for system\r\n",
    ] {
        assert_eq!(rejected(Stage::Mail, wire), Disposition::Failed, "{wire}");
    }
    for wire in [
        "530 5.7.0 Authentication required\r\n",
        "550 5.7.1 Sender not allowed\r\n",
        "553 5.1.8 Sender domain does not exist\r\n",
        "552 5.7.0 Sending quota exceeded\r\n",
        "550 Denied\r\n",
    ] {
        assert_eq!(rejected(Stage::Mail, wire), Disposition::Abort, "{wire}");
    }
}

#[test]
fn a_421_or_a_4xx_about_the_session_at_mail_is_a_session_quota_candidate_and_nothing_else_is() {
    let at_mail = |wire| Ok(Delivery::Rejected { stage: Stage::Mail, reply: reply(wire) });
    let closing = Err(SessionError::ServiceClosing {
        stage: Stage::Mail,
        reply: reply("421 4.7.0 Too many messages in this session\r\n"),
    });
    assert!(session_quota_reply(&closing).is_some_and(|r| r.code() == 421));
    assert!(session_quota_reply(&at_mail("451 4.7.1 Try again\r\n")).is_none(), "a sender refused for now");
    assert!(session_quota_reply(&at_mail("451 4.3.0 Temporary lookup failure\r\n")).is_none());
    let about_session = at_mail("452 4.5.3 Too many messages in this session\r\n");
    assert!(session_quota_reply(&about_session).is_some());
    let gmail = reply("421 4.7.0 Try again later, closing connection.\r\n");
    let closing_gmail = Err(SessionError::ServiceClosing { stage: Stage::Mail, reply: gmail.clone() });
    assert!(session_quota_reply(&closing_gmail).is_some(), "a 421 ends the session: the next one takes it");
    assert!(!speaks_of_a_session_limit(&gmail), "but it states no limit per session");
    assert!(speaks_of_a_session_limit(&reply("421 4.7.0 Too many messages in this session\r\n")));
    assert!(speaks_of_a_session_limit(&reply("451 4.7.0 Message limit per session exceeded (session limit)\r\n")));
    assert!(session_quota_reply(&at_mail("550 5.7.1 No\r\n")).is_none());
    let at_rcpt = Ok(Delivery::Rejected { stage: Stage::Rcpt, reply: reply("450 4.2.0 Busy\r\n") });
    assert!(session_quota_reply(&at_rcpt).is_none());
    let closing_at_rcpt =
        Err(SessionError::ServiceClosing { stage: Stage::Rcpt, reply: reply("421 4.7.0 Closing\r\n") });
    assert!(session_quota_reply(&closing_at_rcpt).is_none());
}

mod setup_failures {
    use std::io;

    use super::*;
    use crate::smtp::{AuthError, ConnectError, HandshakeCause, Phase, TlsError};

    fn io_error(kind: io::ErrorKind) -> ConnectionError {
        ConnectionError::Io { phase: Phase::Command, source: io::Error::from(kind) }
    }

    fn handshake(cause: HandshakeCause) -> ConnectError {
        ConnectError::Tls(TlsError::Handshake { host: "h".into(), reason: "r".into(), cause })
    }

    fn verdict(error: ConnectError) -> (ConnectVerdict, ConnectVerdict) {
        (connect_failure(&error, false), connect_failure(&error, true))
    }

    const BACKOFF: (ConnectVerdict, ConnectVerdict) = (ConnectVerdict::Backoff, ConnectVerdict::Backoff);
    const ABORT: (ConnectVerdict, ConnectVerdict) = (ConnectVerdict::Abort, ConnectVerdict::Abort);
    const ONCE_CONNECTED: (ConnectVerdict, ConnectVerdict) = (ConnectVerdict::Abort, ConnectVerdict::Backoff);

    #[test]
    fn resets_4xx_and_421_during_setup_are_transient_even_before_any_session() {
        assert_eq!(verdict(ConnectError::Connection(io_error(io::ErrorKind::ConnectionReset))), BACKOFF);
        assert_eq!(verdict(ConnectError::Connection(ConnectionError::Closed { phase: Phase::Greeting })), BACKOFF);
        assert_eq!(verdict(ConnectError::Auth(AuthError::Connection(io_error(io::ErrorKind::BrokenPipe)))), BACKOFF);
        assert_eq!(verdict(ConnectError::Auth(AuthError::Temporary { reply: reply("454 4.7.0 Later\r\n") })), BACKOFF);
        assert_eq!(
            verdict(ConnectError::ServiceClosing { reply: reply("421 4.7.0 Too many connections\r\n") }),
            BACKOFF
        );
        assert_eq!(verdict(ConnectError::Greeting { reply: reply("450 4.3.2 Busy\r\n") }), BACKOFF);
        assert_eq!(verdict(ConnectError::Ehlo { reply: reply("451 4.3.2 Try later\r\n") }), BACKOFF);
        assert_eq!(
            verdict(ConnectError::StartTlsRejected { reply: reply("454 4.7.0 TLS not available\r\n") }),
            BACKOFF
        );
        assert_eq!(verdict(handshake(HandshakeCause::Io)), BACKOFF);
    }

    #[test]
    fn timeouts_and_refused_connects_are_transient_once_a_session_worked() {
        let timeout = ConnectionError::Timeout { phase: Phase::Greeting, after: Duration::from_secs(1) };
        assert_eq!(verdict(ConnectError::Connection(timeout)), ONCE_CONNECTED);
        let after = Duration::from_secs(1);
        assert_eq!(verdict(ConnectError::TlsTimeout { host: "h".into(), after }), ONCE_CONNECTED);
        assert_eq!(verdict(ConnectError::ConnectTimeout { host: "h".into(), port: 1, after }), ONCE_CONNECTED);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(verdict(ConnectError::Unreachable { host: "h".into(), port: 1, source: refused }), ONCE_CONNECTED);
    }

    /// Review of issue 10 (fails now): a server that accepts and resets at once (over its session cap) often
    /// has its RST land before tokio's `TcpStream::connect` returns, which then reports ECONNRESET from
    /// `SO_ERROR`; `connector::tcp` maps that to `Unreachable`, which aborts the job before any session
    /// opened. Seen against a one-session server resetting the others: 1 run in 8 with `connections = 4`
    /// ended "the job stopped: cannot connect to 127.0.0.1:…: Connection reset by peer (os error 104)",
    /// exit 3. A reset means a server answered: it is the "reset before the greeting" of the README's table.
    #[test]
    fn a_reset_reported_by_connect_is_transient_even_before_any_session() {
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::ConnectionAborted] {
            let reset = ConnectError::Unreachable { host: "h".into(), port: 1, source: io::Error::from(kind) };
            assert_eq!(verdict(reset), BACKOFF, "{kind:?}");
        }
    }

    #[test]
    fn only_refusals_about_capacity_teach_a_session_cap() {
        let greeting_reset = ConnectionError::Closed { phase: Phase::Greeting };
        assert!(rejects_more_sessions(&ConnectError::Connection(greeting_reset)));
        assert!(rejects_more_sessions(&ConnectError::ServiceClosing { reply: reply("421 4.7.0 Busy\r\n") }));
        assert!(rejects_more_sessions(&ConnectError::Greeting { reply: reply("450 4.7.0 Later\r\n") }));
        let many = reply("451 4.7.0 Too many connections from your host\r\n");
        assert!(rejects_more_sessions(&ConnectError::Ehlo { reply: many }));
        assert!(!rejects_more_sessions(&ConnectError::Ehlo { reply: reply("451 4.3.2 Try again later\r\n") }));
        let at_auth = AuthError::Temporary { reply: reply("454 4.7.0 Temporary authentication failure\r\n") };
        assert!(!rejects_more_sessions(&ConnectError::Auth(at_auth)));
        let reset_at_auth = ConnectionError::Closed { phase: Phase::Command };
        assert!(!rejects_more_sessions(&ConnectError::Connection(reset_at_auth)));
    }

    #[test]
    fn permanent_refusals_and_certificate_errors_are_final_at_once() {
        assert_eq!(verdict(ConnectError::Greeting { reply: reply("554 5.7.1 No SMTP service here\r\n") }), ABORT);
        assert_eq!(verdict(ConnectError::Ehlo { reply: reply("550 5.7.1 Go away\r\n") }), ABORT);
        assert_eq!(verdict(ConnectError::StartTlsRejected { reply: reply("502 5.5.1 No\r\n") }), ABORT);
        assert_eq!(verdict(ConnectError::StartTlsNotOffered), ABORT);
        let rejected = AuthError::Rejected { username: "u".into(), reply: reply("535 5.7.8 Bad credentials\r\n") };
        assert_eq!(verdict(ConnectError::Auth(rejected)), ABORT);
        assert_eq!(verdict(ConnectError::Auth(AuthError::Failed { reply: reply("504 5.5.4 No\r\n") })), ABORT);
        assert_eq!(verdict(handshake(HandshakeCause::Certificate)), ABORT);
        assert_eq!(verdict(handshake(HandshakeCause::NotTls)), ABORT);
        assert_eq!(verdict(handshake(HandshakeCause::Protocol)), ABORT);
        assert_eq!(verdict(ConnectError::PlaintextAuth), ABORT);
    }
}
