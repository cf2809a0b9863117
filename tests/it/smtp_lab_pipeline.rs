//! Pipelining end to end (tier 5): hundreds of messages on one session to the lab's Postfix, the lab's
//! fault addresses mixed in, each message's outcome checked and the Maildir read back (delivered exactly
//! once, and nothing that was refused). Skipped with a reason when the lab is not running.

use std::collections::BTreeMap;

use mailshot::smtp::{self, Delivery, Envelope, Security, SessionError, Stage};

use crate::common::lab_env::lab;
use crate::common::lab_mail::Maildir;
use crate::common::unique_tag;
use crate::smtp_lab::config;
use crate::smtp_pipeline::{Outcome, send_all};

const FROM: &str = "news@example.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Delivered,
    Rejected(Stage, u16),
}

/// Message `i` of a run: mostly ordinary, with a fault every few messages, in every position of a group.
fn case(run: &str, i: usize) -> (Envelope, Vec<u8>, Want) {
    let own = format!("{run}-{i}@example.test");
    let (from, to, want) = match i % 20 {
        5 => (FROM, "rcpt-reject@example.test".to_owned(), Want::Rejected(Stage::Rcpt, 550)),
        9 => (FROM, "rcpt-tempfail@example.test".to_owned(), Want::Rejected(Stage::Rcpt, 450)),
        13 => ("eod-reject@example.test", own, Want::Rejected(Stage::DataEnd, 554)),
        17 => ("data-reject@example.test", own, Want::Rejected(Stage::Data, 554)),
        _ => (FROM, own, Want::Delivered),
    };
    let body =
        format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: {run} {i}\r\n\r\nmessage {i}\r\n.dot line\nbare LF\r\n");
    (Envelope::new(from, [to]).unwrap(), body.into_bytes(), want)
}

fn got(outcome: &Outcome) -> Want {
    match outcome {
        Ok(Delivery::Accepted { .. }) => Want::Delivered,
        Ok(Delivery::Rejected { stage, reply }) => Want::Rejected(*stage, reply.code()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn two_hundred_pipelined_messages_with_faults_each_get_their_own_outcome() {
    let Some(lab) = lab("two_hundred_pipelined_messages_with_faults_each_get_their_own_outcome") else { return };
    let run = unique_tag("pipe");
    let mut maildir = Maildir::mark(&lab);
    let cases: Vec<_> = (0..200).map(|i| case(&run, i)).collect();
    let messages: Vec<_> = cases.iter().map(|(e, b, _)| (e.clone(), b.clone())).collect();
    let mut session = smtp::connect(&config(&lab, lab.plain_port, Security::None)).await.unwrap();
    assert!(session.is_pipelining());

    let outcomes = send_all(&mut session, &messages).await;
    assert_eq!(outcomes.len(), 200);
    for (i, (outcome, (_, _, want))) in outcomes.iter().zip(&cases).enumerate() {
        assert_eq!(got(outcome), *want, "message {i}: {outcome:?}");
    }
    assert!(session.is_open());
    session.quit().await.unwrap();

    let want: BTreeMap<String, usize> = (cases.iter().enumerate())
        .filter(|(_, (_, _, want))| *want == Want::Delivered)
        .map(|(i, _)| (format!("{run}-{i}@example.test"), 1))
        .collect();
    assert_eq!(want.len(), 160);
    let delivered = maildir.settle_where(|to| to.starts_with(&run), want.len());
    assert_eq!(delivered.into_iter().collect::<BTreeMap<_, _>>(), want, "each delivered once, no refused one");
}

/// A 421 to the RCPT of the message opened behind a delivered one: that one stays delivered, the 421'd
/// message is retryable and the session is over (Postfix closes after a 421 from an access map).
#[tokio::test]
async fn a_421_in_a_pipelined_group_ends_the_session_after_the_delivered_message() {
    let Some(lab) = lab("a_421_in_a_pipelined_group_ends_the_session_after_the_delivered_message") else { return };
    let run = unique_tag("pipe421");
    let mut maildir = Maildir::mark(&lab);
    let to = |i: usize| format!("{run}-{i}@example.test");
    let body = b"Subject: 421\r\n\r\nx\r\n".to_vec();
    let rcpts = [to(0), to(1), "rcpt-421@example.test".to_owned(), to(3)];
    let messages: Vec<_> = rcpts.iter().map(|r| (Envelope::new(FROM, [r.as_str()]).unwrap(), body.clone())).collect();
    let mut session = smtp::connect(&config(&lab, lab.plain_port, Security::None)).await.unwrap();

    let outcomes = send_all(&mut session, &messages).await;
    assert_eq!(outcomes.iter().take(2).map(got).collect::<Vec<_>>(), [Want::Delivered, Want::Delivered]);
    let err = outcomes[2].as_ref().unwrap_err();
    let closing = matches!(err, SessionError::ServiceClosing { stage: Stage::Rcpt, reply } if reply.code() == 421);
    assert!(closing && err.is_retryable() && !err.is_uncertain(), "{err}");
    assert_eq!(outcomes.len(), 3, "the fourth message was never tried");
    assert!(!session.is_open());
    let want = BTreeMap::from([(to(0), 1), (to(1), 1)]);
    let delivered = maildir.settle_where(|to| to.starts_with(&run), 2);
    assert_eq!(delivered.into_iter().collect::<BTreeMap<_, _>>(), want);
}

/// smtp-sink advertises PIPELINING and ends its EHLO reply with an empty line; 500 messages on one session.
#[tokio::test]
async fn the_sink_takes_a_pipelined_stream() {
    let Some(lab) = lab("the_sink_takes_a_pipelined_stream") else { return };
    let messages: Vec<_> = (0..500).map(|i| case("sink", i * 20)).map(|(e, b, _)| (e, b)).collect();
    let mut session = smtp::connect(&config(&lab, lab.sink_port, Security::None)).await.unwrap();
    assert!(session.is_pipelining());
    let outcomes = send_all(&mut session, &messages).await;
    assert_eq!(outcomes.len(), 500);
    assert!(outcomes.iter().all(|o| got(o) == Want::Delivered));
    session.quit().await.unwrap();
}
