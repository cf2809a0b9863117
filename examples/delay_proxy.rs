//! Bench tooling: a TCP proxy on loopback that holds every chunk for a fixed delay in each direction, so a
//! round trip through it costs twice the delay — loopback with the latency of a real network.
//!
//! `cargo run --release --example delay_proxy -- LISTEN_PORT TARGET_PORT DELAY_MS`
//! Listens on 127.0.0.1:LISTEN_PORT and forwards to 127.0.0.1:TARGET_PORT (loopback only, by design).
//! Chunks keep their order; bandwidth is not limited, only latency added.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, target, delay] = args.as_slice() else {
        eprintln!("usage: delay_proxy LISTEN_PORT TARGET_PORT DELAY_MS");
        std::process::exit(2);
    };
    let target: u16 = target.parse().expect("TARGET_PORT");
    let delay = Duration::from_millis(delay.parse().expect("DELAY_MS"));
    let listener = TcpListener::bind(("127.0.0.1", listen.parse::<u16>().expect("LISTEN_PORT"))).await?;
    eprintln!("delay_proxy: 127.0.0.1:{listen} -> 127.0.0.1:{target}, {delay:?} each way");
    loop {
        let (client, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await {
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(pipe(cr, sw, delay), pipe(sr, cw, delay));
            }
        });
    }
}

/// Reads chunks as they come and writes each one `delay` after it arrived.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 || tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
