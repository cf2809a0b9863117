//! Session logic over an in-memory pipe, with exact transcripts (tier 2).

use std::io;

use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

use super::*;
use crate::smtp::config::{ClientConfig, Security};
use crate::smtp::connector::establish;
use crate::smtp::stream::MaybeTls;
use crate::smtp::testing::{Step, expect, peer, quick_timeouts, send, transcript};
use crate::smtp::transcript::Direction;

const EHLO: &str = "250-test.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
/// The same server without PIPELINING: every command is its own round trip (pipelined transcripts are in
/// `pipeline_tests.rs`).
const LOCK_STEP: &str = "250-test.example\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";

type TestSession = Session<MaybeTls<DuplexStream>>;

/// A session whose peer greets, answers EHLO with `ehlo`, then follows `script`.
async fn session(ehlo: &'static str, script: Vec<Step>) -> (TestSession, JoinHandle<Vec<u8>>) {
    let mut steps = vec![send("220 test.example ESMTP\r\n"), expect("EHLO localhost"), send(ehlo)];
    steps.extend(script);
    let (io, server) = peer(steps);
    let mut config = ClientConfig::new("localhost", 25);
    config.security = Security::None;
    config.timeouts = quick_timeouts();
    (establish(io, &config).await.unwrap(), server)
}

fn envelope() -> Envelope {
    Envelope::new("news@example.test", ["ann@example.test"]).unwrap()
}

/// Ends the session and surfaces any failed expectation of the peer.
async fn finish(s: TestSession, server: JoinHandle<Vec<u8>>) {
    drop(s);
    server.await.expect("the peer's script");
}

/// What the client sent after EHLO.
async fn sent(server: JoinHandle<Vec<u8>>) -> String {
    let all = String::from_utf8(server.await.unwrap()).unwrap();
    all.strip_prefix("EHLO localhost\r\n").unwrap().to_owned()
}

fn accept_one() -> Vec<Step> {
    vec![
        expect("MAIL FROM:<news@example.test> SIZE=20"),
        send("250 2.1.0 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("250 2.1.5 Ok\r\n"),
        expect("DATA"),
        send("354 End data with <CR><LF>.<CR><LF>\r\n"),
        Step::Data,
        send("250-2.0.0 Ok:\r\n250 2.0.0 queued as 4F2A1\r\n"),
    ]
}

#[tokio::test]
async fn a_message_goes_out_with_exact_bytes_and_the_full_final_reply() {
    let (mut s, server) = session(EHLO, accept_one()).await;
    let delivery = s.send(&envelope(), b"Subject: x\n\n.hi").await.unwrap();
    let Delivery::Accepted { reply, .. } = delivery else { panic!("{delivery:?}") };
    assert_eq!(reply.lines(), ["2.0.0 Ok:", "2.0.0 queued as 4F2A1"]);
    drop(s);
    let want = "MAIL FROM:<news@example.test> SIZE=20\r\nRCPT TO:<ann@example.test>\r\nDATA\r\n\
                Subject: x\r\n\r\n..hi\r\n.\r\n";
    assert_eq!(sent(server).await, want);
}

#[tokio::test]
async fn a_refused_recipient_is_a_value_and_the_next_message_uses_the_same_session() {
    let mut script = vec![
        expect("MAIL FROM:<news@example.test> SIZE=20"),
        send("250 2.1.0 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("550 5.1.1 <ann@example.test>: Recipient address rejected\r\n"),
        expect("RSET"),
        send("250 2.0.0 Ok\r\n"),
    ];
    script.extend(accept_one());
    let (mut s, server) = session(LOCK_STEP, script).await;
    let first = s.send(&envelope(), b"Subject: x\n\n.hi").await.unwrap();
    let Delivery::Rejected { stage: Stage::Rcpt, reply } = first else { panic!("{first:?}") };
    assert_eq!((reply.code(), reply.enhanced().map(|e| e.to_string())), (550, Some("5.1.1".into())));
    assert!(s.is_open());
    assert!(matches!(s.send(&envelope(), b"Subject: x\n\n.hi").await.unwrap(), Delivery::Accepted { .. }));
    finish(s, server).await;
}

/// In lock-step a refusal is followed by RSET at once (RFC 5321 §4.1.1.5), even after the final dot (Postfix
/// keeps the sender after refusing at end of data), and the session goes on.
#[tokio::test]
async fn rejections_at_each_stage_are_values_followed_by_rset() {
    let mail = vec![expect("MAIL FROM:<news@example.test> SIZE=4"), send("451 4.3.0 Try later\r\n")];
    let data = vec![
        expect("MAIL FROM:<news@example.test> SIZE=4"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("250 Ok\r\n"),
        expect("DATA"),
        send("554 5.5.1 No valid recipients\r\n"),
    ];
    let mut end = data.clone();
    end.truncate(5);
    end.extend([send("354 go\r\n"), Step::Data, send("554 5.7.1 Message rejected\r\n")]);
    let rset = [expect("RSET"), send("250 Ok\r\n")];
    let mail = mail.into_iter().chain(rset.clone()).collect();
    let data = data.into_iter().chain(rset.clone()).collect();
    let end = end.into_iter().chain(rset).collect();
    for (script, stage, code) in [(mail, Stage::Mail, 451), (data, Stage::Data, 554), (end, Stage::DataEnd, 554)] {
        let mut script: Vec<Step> = script;
        script.extend(accept_one().into_iter().map(|step| match step {
            Step::Expect(line) if line.starts_with("MAIL") => expect("MAIL FROM:<news@example.test> SIZE=4"),
            other => other,
        }));
        let (mut s, server) = session(LOCK_STEP, script).await;
        let got = s.send(&envelope(), b"hi\r\n").await.unwrap();
        assert!(
            matches!(&got, Delivery::Rejected { stage: st, reply } if *st == stage && reply.code() == code),
            "{got:?}"
        );
        assert!(s.is_open(), "{stage}");
        assert!(matches!(s.send(&envelope(), b"hi\r\n").await.unwrap(), Delivery::Accepted { .. }), "{stage}");
        finish(s, server).await;
    }
}

#[tokio::test]
async fn a_421_ends_the_session_and_the_message_is_retryable() {
    let script = vec![
        expect("MAIL FROM:<news@example.test> SIZE=4"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("421 4.7.0 Closing connection\r\n"),
        Step::Close,
    ];
    let (mut s, server) = session(EHLO, script).await;
    let err = s.send(&envelope(), b"hi\r\n").await.unwrap_err();
    assert!(matches!(err, SessionError::ServiceClosing { stage: Stage::Rcpt, .. }), "{err}");
    assert!(err.is_retryable() && !err.is_uncertain());
    assert!(!s.is_open());
    assert!(matches!(s.send(&envelope(), b"hi\r\n").await, Err(SessionError::Closed)));
    finish(s, server).await;
}

#[tokio::test]
async fn lost_before_the_dot_is_retryable_and_after_it_uncertain() {
    let until_data = || {
        vec![
            expect("MAIL FROM:<news@example.test> SIZE=4"),
            send("250 Ok\r\n"),
            expect("RCPT TO:<ann@example.test>"),
            send("250 Ok\r\n"),
            expect("DATA"),
        ]
    };
    let mut before = until_data();
    before.push(Step::Close);
    let (mut s, server) = session(EHLO, before).await;
    let err = s.send(&envelope(), b"hi\r\n").await.unwrap_err();
    assert!(matches!(err, SessionError::Connection { stage: Stage::Data, .. }) && !err.is_uncertain(), "{err}");
    finish(s, server).await;

    let mut after = until_data();
    after.extend([send("354 go\r\n"), Step::Data, Step::Close]);
    let (mut s, server) = session(EHLO, after).await;
    let err = s.send(&envelope(), b"hi\r\n").await.unwrap_err();
    assert!(err.is_uncertain() && !err.is_retryable(), "{err}");
    finish(s, server).await;

    let mut silent = until_data();
    silent.extend([send("354 go\r\n"), Step::Data, Step::Drain]);
    let (mut s, server) = session(EHLO, silent).await;
    let err = s.send(&envelope(), b"hi\r\n").await.unwrap_err();
    assert!(
        matches!(&err, SessionError::Uncertain { source: ConnectionError::Timeout { phase: Phase::DataEnd, .. } }),
        "{err}"
    );
    finish(s, server).await;
}

#[tokio::test]
async fn the_gate_runs_after_354_and_before_the_body() {
    let mut script = accept_one();
    script[0] = expect("MAIL FROM:<news@example.test> SIZE=20");
    let (io, server) =
        peer([send("220 t\r\n"), expect("EHLO localhost"), send(EHLO)].into_iter().chain(script).collect());
    let (sink, lines) = transcript();
    let mut config = ClientConfig::new("localhost", 25);
    (config.security, config.timeouts, config.transcript) = (Security::None, quick_timeouts(), Some(sink.clone()));
    let mut s = establish(io, &config).await.unwrap();
    let gate = async move {
        sink(Direction::Client, "GATE");
        Ok::<(), io::Error>(())
    };
    assert!(matches!(s.send_gated(&envelope(), b"Subject: x\n\n.hi", gate).await, Ok(Delivery::Accepted { .. })));
    drop(s);
    server.await.unwrap();
    let lines = lines.lock().unwrap().clone();
    let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap();
    assert!(at("S: 354") < at("C: GATE") && at("C: GATE") < at("C: <message data"), "{lines:?}");
}

#[tokio::test]
async fn a_failed_gate_sends_no_dot() {
    let script = vec![
        expect("MAIL FROM:<news@example.test> SIZE=4"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("250 Ok\r\n"),
        expect("DATA"),
        send("354 go\r\n"),
        Step::Drain,
    ];
    let (mut s, server) = session(EHLO, script).await;
    let gate = async { Err::<(), _>(io::Error::other("journal disk full")) };
    let err = s.send_gated(&envelope(), b"hi\r\n", gate).await.unwrap_err();
    assert!(matches!(err, SessionError::Gate { .. }) && err.is_retryable(), "{err}");
    drop(s);
    assert!(sent(server).await.ends_with("DATA\r\n"));
}

#[tokio::test]
async fn what_the_server_cannot_take_is_refused_before_mail() {
    let (mut s, server) = session("250-t\r\n250 SIZE 10\r\n", vec![Step::Drain]).await;
    let big = s.send(&envelope(), b"0123456789abcdef").await.unwrap();
    assert_eq!(big, Delivery::Refused(Refusal::TooLarge { size: 18, limit: 10 }));
    let utf8 = Envelope::new("news@example.test", ["jöran@example.test"]).unwrap();
    assert_eq!(s.send(&utf8, b"x").await.unwrap(), Delivery::Refused(Refusal::SmtpUtf8NotOffered));
    assert_eq!(s.send(&envelope(), "é".as_bytes()).await.unwrap(), Delivery::Refused(Refusal::EightBitNotOffered));
    drop(s);
    assert_eq!(sent(server).await, "");
}

#[tokio::test]
async fn utf8_and_8bit_messages_carry_their_parameters() {
    let script = vec![
        expect("MAIL FROM:<news@example.test> SIZE=4 BODY=8BITMIME SMTPUTF8"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<jöran@example.test>"),
        send("250 Ok\r\n"),
        expect("DATA"),
        send("354 go\r\n"),
        Step::Data,
        send("250 Ok\r\n"),
    ];
    let (mut s, server) = session(EHLO, script).await;
    let env = Envelope::new("news@example.test", ["jöran@example.test"]).unwrap();
    assert!(matches!(s.send(&env, "é".as_bytes()).await.unwrap(), Delivery::Accepted { .. }));
    finish(s, server).await;
}

#[tokio::test]
async fn a_trial_sends_mail_and_rcpt_then_rset_and_no_data() {
    let script = vec![
        expect("MAIL FROM:<news@example.test>"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("250 2.1.5 Ok\r\n"),
        expect("RSET"),
        send("250 Ok\r\n"),
    ];
    let (mut s, server) = session(EHLO, script).await;
    let trial = s.try_envelope(&envelope()).await.unwrap();
    assert!(matches!(&trial, Trial::Accepted { rcpt, .. } if rcpt[0].code() == 250), "{trial:?}");
    finish(s, server).await;
}

#[tokio::test]
async fn a_failed_rset_keeps_the_rejection_but_closes_the_session() {
    let script = vec![
        expect("MAIL FROM:<news@example.test> SIZE=4"),
        send("553 5.7.1 Sender rejected\r\n"),
        expect("RSET"),
        send("421 4.4.2 Timeout\r\n"),
    ];
    let (mut s, server) = session(LOCK_STEP, script).await;
    let got = s.send(&envelope(), b"hi\r\n").await.unwrap();
    assert!(matches!(got, Delivery::Rejected { stage: Stage::Mail, .. }));
    assert!(!s.is_open());
    finish(s, server).await;
}
