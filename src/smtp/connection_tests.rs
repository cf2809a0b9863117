use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

use super::*;

fn timeouts(ms: u64) -> Timeouts {
    let d = Duration::from_millis(ms);
    Timeouts { connect: d, tls: d, greeting: d, command: d, data: d, data_block: d, data_end: d }
}

#[tokio::test]
async fn a_queued_group_goes_out_in_one_write() {
    let (client, mut server) = duplex(4096);
    let mut conn = Connection::new(client, timeouts(1000), None);
    conn.queue(&Command::Rset).unwrap();
    conn.queue(&Command::Noop).unwrap();
    conn.flush().await.unwrap();
    let mut got = vec![0; 64];
    let n = server.read(&mut got).await.unwrap();
    assert_eq!(&got[..n], b"RSET\r\nNOOP\r\n");
}

#[tokio::test]
async fn replies_split_across_reads_and_pipelined_replies_both_arrive() {
    let (client, mut server) = duplex(4096);
    let mut conn = Connection::new(client, timeouts(1000), None);
    let writer = tokio::spawn(async move {
        server.write_all(b"250-first\r\n25").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        server.write_all(b"0 last\r\n221 bye\r\n").await.unwrap();
        server
    });
    let first = conn.read_reply(Phase::Command).await.unwrap();
    assert_eq!(first.lines(), ["first", "last"]);
    assert_eq!(conn.buffered(), "221 bye\r\n".len(), "the second reply stays buffered");
    assert_eq!(conn.read_reply(Phase::Command).await.unwrap().code(), 221);
    drop(writer.await.unwrap());
    assert!(matches!(conn.read_reply(Phase::Command).await, Err(ConnectionError::Closed { .. })));
}

#[tokio::test]
async fn a_silent_server_times_out_in_the_named_phase() {
    let (client, _server) = duplex(4096);
    let mut conn = Connection::new(client, timeouts(30), None);
    let err = conn.read_reply(Phase::Greeting).await.unwrap_err();
    assert!(matches!(err, ConnectionError::Timeout { phase: Phase::Greeting, .. }), "{err}");
}

#[tokio::test]
async fn a_refused_argument_writes_nothing() {
    let (client, mut server) = duplex(4096);
    let mut conn = Connection::new(client, timeouts(1000), None);
    let err = conn.command(&Command::Rcpt { to: "a@b\r\nDATA" }, Phase::Command).await.unwrap_err();
    assert!(matches!(err, ConnectionError::Command(_)));
    drop(conn);
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn garbage_from_the_server_is_a_protocol_error() {
    let (client, mut server) = duplex(4096);
    let mut conn = Connection::new(client, timeouts(1000), None);
    server.write_all(b"HTTP/1.1 400 Bad Request\r\n").await.unwrap();
    assert!(matches!(conn.read_reply(Phase::Greeting).await, Err(ConnectionError::Reply(_))));
}
