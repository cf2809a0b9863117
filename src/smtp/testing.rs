//! Unit-test helpers: a scripted peer on an in-memory pipe (tier 2), so session logic is tested with exact
//! transcripts and no sockets. The network-level fault-injection server lives in `tests/it/smtp_server.rs`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::duplex;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, ReadBuf,
};
use tokio::task::JoinHandle;

use super::phase::Timeouts;
use super::transcript::{Direction, TranscriptSink};

/// One step of the peer's script.
#[derive(Clone)]
pub enum Step {
    /// Send these bytes (CRLFs included).
    Send(&'static str),
    /// Read one line and check it equals this (without CRLF).
    Expect(&'static str),
    /// Read the message data up to and including the final `.` line; its bytes are in the record.
    Data,
    /// Close the connection.
    Close,
    /// Say nothing more; read (and record) until the client closes.
    Drain,
}

/// Runs `script` against the client end; the handle yields every byte the client sent.
pub fn peer(script: Vec<Step>) -> (DuplexStream, JoinHandle<Vec<u8>>) {
    let (client, server) = duplex(1 << 16);
    let handle = tokio::spawn(async move {
        let mut io = BufReader::new(server);
        let mut record = Vec::new();
        for step in script {
            match step {
                Step::Send(bytes) => io.get_mut().write_all(bytes.as_bytes()).await.unwrap(),
                Step::Expect(want) => {
                    let line = read_line(&mut io, &mut record).await;
                    assert_eq!(String::from_utf8_lossy(&line), format!("{want}\r\n"));
                }
                Step::Data => while read_line(&mut io, &mut record).await != b".\r\n" {},
                Step::Close => return record,
                Step::Drain => {
                    io.read_to_end(&mut record).await.unwrap();
                    return record;
                }
            }
        }
        record
    });
    (client, handle)
}

async fn read_line(io: &mut BufReader<DuplexStream>, record: &mut Vec<u8>) -> Vec<u8> {
    let mut line = Vec::new();
    io.read_until(b'\n', &mut line).await.unwrap();
    assert!(!line.is_empty(), "the client closed the connection");
    record.extend_from_slice(&line);
    line
}

pub fn quick_timeouts() -> Timeouts {
    let d = Duration::from_millis(500);
    Timeouts { connect: d, tls: d, greeting: d, command: d, data: d, data_block: d, data_end: d }
}

/// A transcript sink and the lines it collected.
pub fn transcript() -> (TranscriptSink, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = Arc::clone(&lines);
    let sink: TranscriptSink = Arc::new(move |dir, line| {
        let arrow = if dir == Direction::Client { "C:" } else { "S:" };
        sink_lines.lock().unwrap().push(format!("{arrow} {line}"));
    });
    (sink, lines)
}

/// The client's end of a pipe that keeps the bytes of every write call apart, so a test sees exactly which
/// commands went out together (a command group, RFC 2920) and how many writes a conversation took.
pub struct Recorded {
    inner: DuplexStream,
    tap: Tap,
}

/// The test's handle on a [`Recorded`] stream.
#[derive(Clone, Default)]
pub struct Tap {
    pub writes: Arc<Mutex<Vec<String>>>,
    /// When set, the stream takes only this many more bytes, then fails every write (a broken connection).
    pub budget: Arc<Mutex<Option<usize>>>,
}

impl Recorded {
    pub fn new(inner: DuplexStream) -> (Self, Tap) {
        let tap = Tap::default();
        (Recorded { inner, tap: tap.clone() }, tap)
    }
}

impl AsyncRead for Recorded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let budget = *self.tap.budget.lock().unwrap();
        let buf = match budget {
            Some(0) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Some(left) => &buf[..buf.len().min(left)],
            None => buf,
        };
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.tap.writes.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            if let Some(left) = self.tap.budget.lock().unwrap().as_mut() {
                *left -= n;
            }
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
