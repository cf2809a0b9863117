//! Bench tooling: messages per second on ONE session, pipelined (RFC 2920, one round trip per message)
//! against lock-step (four), plaintext to a local relay or sink (loopback only, like `delay_proxy`).
//!
//! `cargo run --release --example smtp_throughput -- PORT COUNT [BODY_BYTES]`
//! e.g. against the lab's smtp-sink, directly or through `delay_proxy` for a real network's latency.

use std::time::Instant;

use mailshot::smtp::{self, ClientConfig, Delivery, Envelope, Message, Opened, Pipelining, Security};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, count, size) = match args.as_slice() {
        [port, count] => (port.parse()?, count.parse()?, 2048),
        [port, count, size] => (port.parse()?, count.parse()?, size.parse()?),
        _ => {
            eprintln!("usage: smtp_throughput PORT COUNT [BODY_BYTES]");
            std::process::exit(2);
        }
    };
    let messages: Vec<(Envelope, Vec<u8>)> = (0..count).map(|i| message(i, size)).collect();
    for pipelining in [Pipelining::Full, Pipelining::Off] {
        let mut config = ClientConfig::new("127.0.0.1", port);
        (config.security, config.pipelining) = (Security::None, pipelining);
        let mut session = smtp::connect(&config).await?;
        let mode = if session.is_pipelining() { "pipelined" } else { "lock-step" };
        let start = Instant::now();
        let accepted = run(&mut session, &messages).await?;
        let secs = start.elapsed().as_secs_f64();
        session.quit().await?;
        println!("{mode:>9}: {accepted}/{count} accepted in {secs:.3} s = {:.0} msg/s", count as f64 / secs);
    }
    Ok(())
}

fn message(i: usize, size: usize) -> (Envelope, Vec<u8>) {
    let to = format!("bench-{i}@example.test");
    let mut body = format!("From: <news@example.test>\r\nTo: <{to}>\r\nSubject: bench {i}\r\n\r\n").into_bytes();
    while body.len() < size {
        body.extend_from_slice(b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n");
    }
    (Envelope::new("news@example.test", [to]).unwrap(), body)
}

/// The worker's loop: open the first message, then commit each together with the opening of the next.
async fn run(session: &mut smtp::TcpSession, messages: &[(Envelope, Vec<u8>)]) -> Result<usize, smtp::SessionError> {
    let message = |i: usize| messages.get(i).map(|(envelope, body)| Message { envelope, body });
    let (mut accepted, mut i) = (0, 0);
    let mut opened = session.open(message(0).expect("COUNT > 0")).await?;
    loop {
        let Opened::Ready(ready) = opened else { panic!("message {i} refused: {opened:?}") };
        let gate = std::future::ready(Ok::<(), std::io::Error>(()));
        let committed = session.commit(ready, &messages[i].1, gate, message(i + 1)).await;
        accepted += usize::from(matches!(committed.current?, Delivery::Accepted { .. }));
        i += 1;
        match committed.next {
            Some(next) => opened = next?,
            None => return Ok(accepted),
        }
    }
}
