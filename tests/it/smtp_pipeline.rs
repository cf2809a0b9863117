//! Pipelining as a worker drives it (RFC 2920): round trips counted on a paused clock against the scripted
//! server answering each flight of input after one round trip, and reply-to-message mapping over real TCP.

use std::time::Duration;

use mailshot::smtp::testing::{Mailbox, ScriptServer, Step, expect, greet, peer, send, timeouts};
use mailshot::smtp::{
    self, ClientConfig, Delivery, Envelope, Message, Opened, Pipelining, Security, Session, SessionError, Stage,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::smtp_pki::client_config;

pub type Outcome = Result<Delivery, SessionError>;

/// Sends `messages` on one session the way a worker does: open the first, then commit each one together
/// with the opening of the next. Returns one outcome per message, in order, up to the one where the
/// session ended (the rest were never tried).
pub async fn send_all<S>(session: &mut Session<S>, messages: &[(Envelope, Vec<u8>)]) -> Vec<Outcome>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let message = |i: usize| messages.get(i).map(|(envelope, body)| Message { envelope, body });
    let mut outcomes = Vec::with_capacity(messages.len());
    let Some(first) = message(0) else { return outcomes };
    let mut opened = session.open(first).await;
    loop {
        let i = outcomes.len();
        let next = match opened {
            Err(e) => {
                outcomes.push(Err(e));
                return outcomes;
            }
            Ok(Opened::Done(delivery)) => {
                outcomes.push(Ok(delivery));
                match message(i + 1) {
                    Some(m) => session.open(m).await,
                    None => return outcomes,
                }
            }
            Ok(Opened::Ready(ready)) => {
                let gate = std::future::ready(Ok::<(), std::io::Error>(()));
                let committed = session.commit(ready, &messages[i].1, gate, message(i + 1)).await;
                outcomes.push(committed.current);
                match committed.next {
                    Some(next) => next,
                    None => return outcomes,
                }
            }
        };
        opened = next;
    }
}

fn messages(n: usize, tag: &str) -> Vec<(Envelope, Vec<u8>)> {
    let message = |i| {
        let to = format!("{tag}-{i}@example.test");
        let body = format!("To: <{to}>\r\nSubject: {i}\r\n\r\nmessage {i}\r\n.starts with a dot\r\n").into_bytes();
        (Envelope::new("news@example.test", [to]).unwrap(), body)
    };
    (0..n).map(message).collect()
}

/// How many round trips `n` messages take on one session, after the handshake, and how many the server
/// accepted. The server answers each flight of input after `rtt` of (paused) time, as a server across a
/// network does: a pipelined group costs one `rtt`, a lock-step command one each.
async fn round_trips(n: usize, offered: bool, allowed: bool) -> (u128, u32) {
    let rtt = Duration::from_millis(20);
    let mailbox = Mailbox::default();
    mailbox.set_delay(rtt);
    if offered {
        mailbox.offer_pipelining();
    }
    let (client, server) = peer(vec![Step::Serve(mailbox.clone())]);
    let mut config = ClientConfig::new("localhost", 25);
    (config.security, config.timeouts) = (Security::None, timeouts(Duration::from_secs(5)));
    config.pipelining = if allowed { Pipelining::Full } else { Pipelining::Off };
    let mut session = smtp::establish(client, &config).await.unwrap();
    let start = Instant::now();
    let outcomes = send_all(&mut session, &messages(n, "rtt")).await;
    let elapsed = start.elapsed();
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Delivery::Accepted { .. }))), "{outcomes:?}");
    session.quit().await.unwrap();
    server.await.unwrap();
    (elapsed.as_millis() / rtt.as_millis(), mailbox.accepted_total())
}

#[tokio::test(start_paused = true)]
async fn pipelined_n_messages_take_n_plus_one_round_trips_and_lock_step_four_each() {
    assert_eq!(round_trips(20, true, true).await, (21, 20));
    assert_eq!(round_trips(1, true, true).await, (2, 1));
    assert_eq!(round_trips(20, false, true).await, (80, 20), "not offered");
    assert_eq!(round_trips(20, true, false).await, (80, 20), "offered but switched off");
}

/// Over TCP, with faults in the middle of groups: a refused recipient whose DATA still got 354 (lone dot,
/// then RSET, opening the next group), a refused dot, and a 421 to a MAIL that came behind a 250 dot.
#[tokio::test]
async fn each_reply_of_a_group_goes_to_its_own_message_over_tcp() {
    let mut script = greet(&["PIPELINING"]);
    let open = |to: &str| [expect("MAIL FROM:<news@example.test>"), expect(format!("RCPT TO:<{to}>")), expect("DATA")];
    let after_dot = |to: &str| [Step::Data, expect("RSET")].into_iter().chain(open(to));
    script.extend(open("map-0@example.test"));
    script.push(send("250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend(after_dot("map-1@example.test"));
    script.push(send("250 queued as Q0\r\n250 Ok\r\n250 Ok\r\n550 5.1.1 No such user\r\n354 go\r\n"));
    script.extend([expect("."), expect("RSET")].into_iter().chain(open("map-2@example.test")));
    script.push(send("554 5.5.1 No valid recipients\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend(after_dot("map-3@example.test"));
    script.push(send("554 5.7.1 Content rejected\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"));
    script.extend(after_dot("map-4@example.test"));
    script.extend([send("250 queued as Q3\r\n250 Ok\r\n421 4.7.0 Closing\r\n"), Step::Close]);
    let server = ScriptServer::start(script).await;
    let mut session = smtp::connect(&client_config(&server, Security::None)).await.unwrap();

    let outcomes = send_all(&mut session, &messages(6, "map")).await;
    let code = |o: &Outcome| match o {
        Ok(Delivery::Accepted { reply, .. }) => (None, reply.to_string()),
        Ok(Delivery::Rejected { stage, reply }) => (Some(*stage), reply.code().to_string()),
        other => panic!("{other:?}"),
    };
    assert_eq!(code(&outcomes[0]), (None, "250 queued as Q0".into()));
    assert_eq!(code(&outcomes[1]), (Some(Stage::Rcpt), "550".into()));
    assert_eq!(code(&outcomes[2]), (Some(Stage::DataEnd), "554".into()));
    assert_eq!(code(&outcomes[3]), (None, "250 queued as Q3".into()));
    let last = outcomes[4].as_ref().unwrap_err();
    assert!(matches!(last, SessionError::ServiceClosing { stage: Stage::Mail, .. }) && last.is_retryable(), "{last}");
    assert_eq!(outcomes.len(), 5, "message 5 was never tried");
    assert!(!session.is_open());
    server.finish().await.ok();
}
