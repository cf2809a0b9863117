//! The server's end of one scripted connection: owns the stream (plain, then perhaps TLS), the bytes read
//! and not yet taken, and every byte received. Below both the [`Step`](super::Step) interpreter and the
//! mailbox server, so that neither imports the other.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A stream the interpreter can own, whatever it is (a pipe, TCP, TLS over either).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The server's end of one connection: the stream, bytes read but not yet taken, and the record.
pub(super) struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    received: Vec<u8>,
}

impl Conn {
    pub(super) fn new(io: Box<dyn Io>) -> Conn {
        Conn { io, buf: Vec::new(), received: Vec::new() }
    }

    /// Every byte the client sent, in order.
    pub(super) fn into_received(self) -> Vec<u8> {
        self.received
    }

    /// Reads to EOF, keeping everything.
    pub(super) async fn drain(&mut self) {
        self.received.append(&mut self.buf);
        let _ = self.io.read_to_end(&mut self.received).await;
    }

    /// The server side of a TLS handshake on this connection.
    pub(super) async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> Result<(), String> {
        if !self.buf.is_empty() {
            return Err("the client sent bytes before the TLS handshake".into());
        }
        let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::empty()));
        let tls = tokio_rustls::TlsAcceptor::from(config).accept(plain).await.map_err(|e| format!("TLS: {e}"))?;
        self.io = Box::new(tls);
        Ok(())
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.io.write_all(bytes).await.map_err(|e| format!("write: {e}"))?;
        self.io.flush().await.map_err(|e| format!("flush: {e}"))
    }

    /// One line, CRLF included, lossily as text; EOF is an error.
    pub(super) async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                self.received.extend_from_slice(&line);
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if !self.fill().await? {
                return Err("the client closed the connection".into());
            }
        }
    }

    /// Exactly `n` bytes; EOF before them is an error.
    pub(super) async fn bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(format!("the client closed the connection {} bytes into a {n}-byte chunk", self.buf.len()));
            }
        }
        let taken: Vec<u8> = self.buf.drain(..n).collect();
        self.received.extend_from_slice(&taken);
        Ok(taken)
    }

    /// Every whole line that has arrived, after reading once more if none had (RFC 2920: what the client
    /// sent in one flight, answered together); `None` when the client closed between lines.
    pub(super) async fn flight(&mut self) -> Result<Option<Vec<Vec<u8>>>, String> {
        while !self.buf.contains(&b'\n') {
            if !self.fill().await? {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err("the client closed the connection in the middle of a line".into()),
                };
            }
        }
        let end = self.buf.iter().rposition(|&b| b == b'\n').expect("a whole line") + 1;
        let lines: Vec<u8> = self.buf.drain(..end).collect();
        self.received.extend_from_slice(&lines);
        Ok(Some(lines.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()))
    }

    /// Reads what is there; false at EOF.
    async fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 8192];
        let n = self.io.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }
}
