//! BDAT windows over real TCP against the scripted server: what only a real socket shows, where a write
//! to a peer that has already closed still succeeds and the loss is seen only when reading.

use std::time::Duration;

use mailshot::smtp::testing::{ScriptServer, Step, expect, greet, send};
use mailshot::smtp::{self, Delivery, Envelope, Pipelining, Security, SessionError, Windowed};

use crate::smtp_pki::client_config;

fn envelope(to: &str) -> Envelope {
    Envelope::new("news@example.test", [to]).unwrap()
}

async fn windowed_session(server: &ScriptServer, window: usize) -> smtp::TcpSession {
    let mut config = client_config(server, Security::None);
    (config.pipelining, config.window) = (Pipelining::Full, window);
    let session = smtp::connect(&config).await.unwrap();
    assert_eq!(session.window(), window);
    session
}

async fn outcome(session: &mut smtp::TcpSession) -> Result<Delivery, SessionError> {
    match session.next_windowed().await.expect("a transaction in flight") {
        Windowed::Done(result) => result,
        Windowed::Again => panic!("refused as pipelined"),
    }
}

/// A server that closed an idle session without a word (an idle timeout, a load balancer) before the
/// window was written: it read none of it, so nothing is uncertain; every message is retryable.
#[tokio::test]
async fn a_session_the_server_closed_while_idle_leaves_the_next_window_retryable() {
    let mut script = greet(&["PIPELINING", "CHUNKING"]);
    script.push(Step::Close);
    let server = ScriptServer::start(script).await;
    let mut session = windowed_session(&server, 2).await;
    server.finish().await.ok();
    tokio::time::sleep(Duration::from_millis(50)).await; // the FIN has arrived; the session does not know yet

    let (a, b) = (envelope("a@example.test"), envelope("b@example.test"));
    for envelope in [&a, &b] {
        assert!(session.queue_chunked(smtp::Message { envelope, body: b"x\r\n" }).is_none());
    }
    session.flush_window().await;
    for _ in 0..2 {
        let lost = outcome(&mut session).await;
        assert!(matches!(&lost, Err(e) if e.is_retryable() && e.reply().is_none()), "{lost:?}");
    }
    assert!(!session.is_open());
}

/// A server that answered the first message and then stopped reading while a big window was being
/// written: our write times out (the data-block deadline). The first message's replies had already come,
/// so it is delivered, not uncertain; the big one, whose last bytes never left, and the one after it are
/// retryable.
#[tokio::test]
async fn a_write_that_times_out_still_takes_the_replies_already_received() {
    let big = vec![b'y'; 16 << 20];
    let mut script = greet(&["PIPELINING", "CHUNKING"]);
    script.extend([
        expect("MAIL FROM:<news@example.test>"),
        expect("RCPT TO:<a@example.test>"),
        expect("BDAT 3 LAST"),
        Step::Chunk(3),
        send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as A1\r\n"),
        Step::Sleep(Duration::from_secs(3)),
    ]);
    let server = ScriptServer::start(script).await;
    let mut config = client_config(&server, Security::None);
    (config.pipelining, config.window) = (Pipelining::Full, 3);
    config.timeouts.data_block = Duration::from_millis(500);
    let mut session = smtp::connect(&config).await.unwrap();

    let (a, b, c) = (envelope("a@example.test"), envelope("b@example.test"), envelope("c@example.test"));
    for (envelope, body) in [(&a, &b"x\r\n"[..]), (&b, &big), (&c, b"z\r\n")] {
        assert!(session.queue_chunked(smtp::Message { envelope, body }).is_none());
    }
    session.flush_window().await;
    let first = outcome(&mut session).await;
    assert!(matches!(&first, Ok(Delivery::Accepted { reply, .. }) if reply.to_string().ends_with("A1")), "{first:?}");
    for _ in 0..2 {
        let unsent = outcome(&mut session).await;
        assert!(matches!(&unsent, Err(e) if e.is_retryable() && e.reply().is_none()), "{unsent:?}");
    }
    assert!(!session.is_open());
}
