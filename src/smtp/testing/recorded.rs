//! A stream that records each write the client makes, so a test sees exactly which commands went out
//! together (a command group, RFC 2920) and how many writes a conversation took.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

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
