//! Faults over real TCP against the scripted server: refusals that leave the session usable, a 421, a
//! connection lost after the final dot, and a deadline for every phase (tiny deadlines, no real waiting).

use std::time::Duration;

use mailshot::job::policy::{ConnectVerdict, connect_failure};
use mailshot::smtp::testing::{ScriptServer, Step, accept_message, expect, greet, send, timeouts};
use mailshot::smtp::{self, ConnectError, ConnectionError, Delivery, Envelope, Phase, Security, SessionError, Stage};

use crate::smtp_pki::{client_config, pki};

const FROM: &str = "news@example.test";

fn envelope(to: &str) -> Envelope {
    Envelope::new(FROM, [to]).unwrap()
}

#[tokio::test]
async fn a_550_on_rcpt_then_the_next_message_on_the_same_session() {
    // Lock-step (no PIPELINING): the refusal stops the transaction and RSET follows at once. The pipelined
    // form of this conversation is in `smtp_pipeline.rs`.
    let mut script = greet(&["8BITMIME"]);
    script.extend([
        expect("MAIL FROM:<news@example.test>"),
        send("250 2.1.0 Ok\r\n"),
        expect("RCPT TO:<gone@example.test>"),
        send("550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown\r\n"),
        expect("RSET"),
        send("250 2.0.0 Ok\r\n"),
    ]);
    script.extend(accept_message(FROM, "ann@example.test", "AB12"));
    script.extend([expect("QUIT"), send("221 2.0.0 Bye\r\n")]);
    let server = ScriptServer::start(script).await;
    let mut session = smtp::connect(&client_config(&server, Security::None)).await.unwrap();

    let first = session.send(&envelope("gone@example.test"), b"Subject: 1\r\n\r\nhi\r\n").await.unwrap();
    assert!(matches!(&first, Delivery::Rejected { stage: Stage::Rcpt, reply } if reply.code() == 550), "{first:?}");
    let second = session.send(&envelope("ann@example.test"), b"Subject: 2\r\n\r\nhi\r\n").await.unwrap();
    let Delivery::Accepted { reply, .. } = second else { panic!("{second:?}") };
    assert_eq!(reply.to_string(), "250 2.0.0 Ok: queued as AB12");
    session.quit().await.unwrap();
    let record = server.finish().await.ok();
    assert!(record.received.ends_with("Subject: 2\r\n\r\nhi\r\n.\r\nQUIT\r\n"), "{:?}", record.received);
}

#[tokio::test]
async fn a_421_in_the_middle_ends_the_session_and_the_message_is_retryable() {
    let mut script = greet(&[]);
    script.extend([
        expect("MAIL FROM:<news@example.test>"),
        send("250 2.1.0 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("250 2.1.5 Ok\r\n"),
        expect("DATA"),
        send("421 4.3.2 Service shutting down, closing transmission channel\r\n"),
        Step::Close,
    ]);
    let server = ScriptServer::start(script).await;
    let mut session = smtp::connect(&client_config(&server, Security::None)).await.unwrap();
    let err = session.send(&envelope("ann@example.test"), b"hi\r\n").await.unwrap_err();
    assert!(matches!(&err, SessionError::ServiceClosing { stage: Stage::Data, reply } if reply.code() == 421), "{err}");
    assert!(err.is_retryable() && !err.is_uncertain());
    assert!(!session.is_open());
    server.finish().await.ok();
}

#[tokio::test]
async fn a_disconnect_after_the_dot_is_uncertain() {
    let mut script = greet(&[]);
    script.extend(accept_message(FROM, "ann@example.test", "X"));
    script.pop(); // no reply to the final dot: close instead
    script.push(Step::Close);
    let server = ScriptServer::start(script).await;
    let mut session = smtp::connect(&client_config(&server, Security::None)).await.unwrap();
    let err = session.send(&envelope("ann@example.test"), b"hi\r\n").await.unwrap_err();
    assert!(err.is_uncertain(), "{err}");
    assert!(matches!(err, SessionError::Uncertain { source: ConnectionError::Closed { phase: Phase::DataEnd } }));
    server.finish().await.ok();
}

#[tokio::test]
async fn a_disconnect_before_the_dot_is_retryable() {
    let mut script = greet(&[]);
    script.extend([expect("MAIL FROM:<news@example.test>"), Step::Close]);
    let server = ScriptServer::start(script).await;
    let mut session = smtp::connect(&client_config(&server, Security::None)).await.unwrap();
    let err = session.send(&envelope("ann@example.test"), b"hi\r\n").await.unwrap_err();
    assert!(matches!(err, SessionError::Connection { stage: Stage::Mail, .. }) && err.is_retryable(), "{err}");
    server.finish().await.ok();
}

#[tokio::test]
async fn a_server_without_ehlo_gets_helo_and_no_extensions() {
    let script = vec![
        send("220 old.example SMTP\r\n"),
        expect("EHLO localhost"),
        send("502 5.5.2 Error: command not recognized\r\n"),
        expect("HELO localhost"),
        send("250 old.example\r\n"),
        Step::Drain,
    ];
    let server = ScriptServer::start(script).await;
    let session = smtp::connect(&client_config(&server, Security::None)).await.unwrap();
    assert_eq!(session.capabilities(), &smtp::Capabilities::default());
    drop(session);
    server.finish().await.ok();
}

#[tokio::test]
async fn a_refusing_greeting_is_reported_with_its_reply() {
    let server = ScriptServer::start(vec![send("554 5.7.1 No SMTP service here\r\n"), Step::Drain]).await;
    let err = smtp::connect(&client_config(&server, Security::None)).await.unwrap_err();
    assert!(matches!(err, ConnectError::Greeting { .. }), "{err}");
    assert_eq!(connect_failure(&err, true), ConnectVerdict::Abort, "a 5xx greeting is final: {err}");
    assert!(err.to_string().contains("No SMTP service here"), "{err}");
}

const TINY: Duration = Duration::from_millis(200);

/// Connects with every deadline generous except the one under test, which is tiny.
async fn connect_with(
    server: &ScriptServer,
    security: Security,
    phase: Phase,
) -> Result<smtp::TcpSession, ConnectError> {
    let mut config = client_config(server, security);
    config.timeouts = timeouts(Duration::from_secs(5));
    match phase {
        Phase::Connect => config.timeouts.connect = TINY,
        Phase::Tls => config.timeouts.tls = TINY,
        Phase::Greeting => config.timeouts.greeting = TINY,
        Phase::Command => config.timeouts.command = TINY,
        Phase::Data => config.timeouts.data = TINY,
        Phase::DataBlock => config.timeouts.data_block = TINY,
        Phase::DataEnd => config.timeouts.data_end = TINY,
    }
    smtp::connect(&config).await
}

#[tokio::test]
async fn handshake_phases_time_out() {
    let tls = ScriptServer::start(vec![Step::Drain]).await; // accepts TCP, never answers the ClientHello
    let err = connect_with(&tls, Security::ImplicitTls, Phase::Tls).await.unwrap_err();
    assert!(matches!(err, ConnectError::TlsTimeout { .. }), "{err}");
    assert_eq!(connect_failure(&err, true), ConnectVerdict::Backoff, "{err}");

    let greeting = ScriptServer::start(vec![Step::Drain]).await;
    let err = connect_with(&greeting, Security::None, Phase::Greeting).await.unwrap_err();
    assert!(matches!(err, ConnectError::Connection(ConnectionError::Timeout { phase: Phase::Greeting, .. })), "{err}");

    let ehlo = ScriptServer::start(vec![send("220 ok\r\n"), expect("EHLO localhost"), Step::Drain]).await;
    let err = connect_with(&ehlo, Security::None, Phase::Command).await.unwrap_err();
    assert!(matches!(err, ConnectError::Connection(ConnectionError::Timeout { phase: Phase::Command, .. })), "{err}");

    let mut implicit = greet(&[]);
    implicit.push(Step::Drain);
    let server = ScriptServer::start_tls(pki().localhost.server_config(), implicit).await;
    assert!(connect_with(&server, Security::ImplicitTls, Phase::Tls).await.is_ok(), "a fast handshake fits");
}

#[tokio::test]
async fn transaction_phases_time_out_and_say_whether_the_message_may_be_delivered() {
    let to = "ann@example.test";
    let until_data = || {
        let mut s = greet(&[]);
        s.extend([expect("MAIL FROM:<news@example.test>"), send("250 Ok\r\n"), expect("RCPT TO:<ann@example.test>")]);
        s.extend([send("250 Ok\r\n"), expect("DATA")]);
        s
    };
    let mut rcpt = greet(&[]);
    rcpt.extend([expect("MAIL FROM:<news@example.test>"), send("250 Ok\r\n"), expect("RCPT TO:<ann@example.test>")]);
    rcpt.push(Step::Drain);
    let mut data = until_data();
    data.push(Step::Drain);
    let mut end = until_data();
    end.extend([send("354 go\r\n"), Step::Data, Step::Drain]);
    let cases = [(rcpt, Phase::Command, false), (data, Phase::Data, false), (end, Phase::DataEnd, true)];
    for (script, phase, uncertain) in cases {
        let server = ScriptServer::start(script).await;
        let mut session = connect_with(&server, Security::None, phase).await.unwrap();
        let err = session.send(&envelope(to), b"hi\r\n").await.unwrap_err();
        let timed_out = match &err {
            SessionError::Connection { source, .. } | SessionError::Uncertain { source } => {
                matches!(source, ConnectionError::Timeout { phase: p, .. } if *p == phase)
            }
            _ => false,
        };
        assert!(timed_out && err.is_uncertain() == uncertain, "{phase}: {err}");
        drop(session);
        server.finish().await.ok();
    }
}

/// A server that stops reading: the body cannot be written, and the data-block deadline fires.
#[tokio::test]
async fn a_stalled_body_write_times_out_as_retryable() {
    let mut script = greet(&[]);
    script.extend([
        expect("MAIL FROM:<news@example.test>"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("250 Ok\r\n"),
        expect("DATA"),
        send("354 go\r\n"),
        Step::Sleep(Duration::from_secs(3)),
    ]);
    let server = ScriptServer::start(script).await;
    let mut session = connect_with(&server, Security::None, Phase::DataBlock).await.unwrap();
    // Far more than loopback socket buffers hold, so the writes must stall.
    let body = "0123456789abcdef".repeat(4 << 20 >> 2);
    let err = session.send(&envelope("ann@example.test"), body.as_bytes()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            SessionError::Connection {
                stage: Stage::Data,
                source: ConnectionError::Timeout { phase: Phase::DataBlock, .. }
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
}

/// Linux drops SYNs once a listener's accept queue is full, so a connect to it hangs until the deadline.
#[tokio::test]
async fn connecting_times_out() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(100), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break, // the queue is full
        }
    }
    let mut config = smtp::ClientConfig::new("127.0.0.1", addr.port());
    config.security = Security::None;
    config.timeouts.connect = TINY;
    let err = smtp::connect(&config).await.unwrap_err();
    assert!(matches!(err, ConnectError::ConnectTimeout { .. }), "{err}");
}
