//! One connection's bytes: a read buffer that lives as long as the connection and a write buffer flushed
//! once per command group, every I/O step under its phase's deadline.
//!
//! The read buffer persists across replies, so bytes that arrive early (a pipelined group's later replies,
//! RFC 2920) wait for their turn instead of being lost, and so a STARTTLS response-injection attack is
//! visible: anything still buffered after the `220` to STARTTLS was sent before the TLS handshake
//! (RFC 3207 §4, CVE-2011-0411). Commands are queued through [`Command::encode`], which checks every
//! argument before a byte is buffered; [`Connection::flush`] sends the whole group in one write, which with
//! `TCP_NODELAY` means one segment and no Nagle delay.
//!
//! Message data joins the same buffer ([`Connection::queue_data`] dot-stuffs straight into it), so a body,
//! its final dot and the next transaction's commands leave in one write (RFC 2920 §3.1 allows message
//! content as the first "command" of a group). [`Connection::flush_data`] reports how many bytes the stream
//! had taken when a write failed: whether the final dot was handed over decides between "retry" and
//! "uncertain". The buffer is reused for the connection's life, and shrunk after an unusually large message.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::command::{Command, CommandError};
use super::data;
use super::phase::{Phase, Timeouts};
use super::reply::{self, Reply, ReplyError};
use super::transcript::{Direction, TranscriptSink};

/// Bytes a group is written in, each under the data-block deadline (RFC 5321 §4.5.3.2.5).
pub const DATA_BLOCK: usize = 64 * 1024;
/// A write buffer grown past this by a large message is shrunk back after it was sent.
const KEEP_CAPACITY: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("no answer within {after:?} ({phase})")]
    Timeout { phase: Phase, after: Duration },
    #[error("the server closed the connection ({phase})")]
    Closed { phase: Phase },
    #[error("connection error ({phase}): {source}")]
    Io { phase: Phase, source: io::Error },
    #[error("the server's reply is not SMTP: {0}")]
    Reply(#[from] ReplyError),
    #[error("refused to send the command: {0}")]
    Command(#[from] CommandError),
}

impl ConnectionError {
    /// The same fact again, for a second message that the same failure ended (`io::Error` is not `Clone`).
    pub fn duplicate(&self) -> ConnectionError {
        match self {
            ConnectionError::Timeout { phase, after } => ConnectionError::Timeout { phase: *phase, after: *after },
            ConnectionError::Closed { phase } => ConnectionError::Closed { phase: *phase },
            ConnectionError::Io { phase, source } => {
                ConnectionError::Io { phase: *phase, source: io::Error::new(source.kind(), source.to_string()) }
            }
            ConnectionError::Reply(e) => ConnectionError::Reply(e.clone()),
            ConnectionError::Command(e) => ConnectionError::Command(e.clone()),
        }
    }
}

/// A group write that failed after the stream had taken `handed` bytes of it.
#[derive(Debug)]
pub struct WriteError {
    pub handed: usize,
    pub source: ConnectionError,
}

pub struct Connection<S> {
    stream: S,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    timeouts: Timeouts,
    transcript: Option<TranscriptSink>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S, timeouts: Timeouts, transcript: Option<TranscriptSink>) -> Self {
        Connection { stream, read_buf: Vec::with_capacity(4096), write_buf: Vec::new(), timeouts, transcript }
    }

    /// Adds a command to the current group; on a refused argument nothing is added.
    pub fn queue(&mut self, command: &Command<'_>) -> Result<(), CommandError> {
        command.encode(&mut self.write_buf)?;
        if self.transcript.is_some() {
            self.log(Direction::Client, &command.redacted());
        }
        Ok(())
    }

    /// Adds a message body to the current group, dot-stuffed and ended with the final dot; returns the
    /// group's length up to and including that dot.
    pub fn queue_data(&mut self, body: &[u8]) -> usize {
        let start = self.write_buf.len();
        data::encode_into(body, &mut self.write_buf);
        if self.transcript.is_some() {
            let len = self.write_buf.len() - start;
            self.log(Direction::Client, &format!("<message data: {len} bytes, ending with the final dot>"));
        }
        self.write_buf.len()
    }

    /// Adds a message as one BDAT chunk (its `BDAT size LAST` already queued): canonical line ends, no
    /// dot-stuffing; returns the group's length up to the chunk's last byte.
    pub fn queue_chunk(&mut self, body: &[u8]) -> usize {
        let start = self.write_buf.len();
        data::chunk_into(body, &mut self.write_buf);
        if self.transcript.is_some() {
            let len = self.write_buf.len() - start;
            self.log(Direction::Client, &format!("<message data: {len} bytes, the BDAT chunk>"));
        }
        self.write_buf.len()
    }

    /// How many bytes the current group holds (a mark for [`truncate`](Self::truncate)).
    pub fn queued(&self) -> usize {
        self.write_buf.len()
    }

    /// Takes back what was queued after `mark`.
    pub fn truncate(&mut self, mark: usize) {
        self.write_buf.truncate(mark);
    }

    /// Sends everything queued in one write, under the command deadline.
    pub async fn flush(&mut self) -> Result<(), ConnectionError> {
        self.send_queued(Phase::Command).await.map_err(|e| e.source)
    }

    /// Sends a group that holds message data: in blocks, each under the data-block deadline. On failure,
    /// says how many bytes the stream had taken; everything after that never left this process.
    pub async fn flush_data(&mut self) -> Result<(), WriteError> {
        self.send_queued(Phase::DataBlock).await
    }

    /// Reads the next reply, waiting at most the deadline of `phase`.
    pub async fn read_reply(&mut self, phase: Phase) -> Result<Reply, ConnectionError> {
        let after = self.timeouts.get(phase);
        let reply = match tokio::time::timeout(after, self.next_reply(phase)).await {
            Ok(result) => result?,
            Err(_) => return Err(ConnectionError::Timeout { phase, after }),
        };
        self.log_reply(&reply);
        Ok(reply)
    }

    /// The next reply if it has already arrived, without waiting: what a server said before it stopped
    /// reading our write. `None`: not (wholly) here; the bytes that are stay buffered.
    pub fn reply_at_hand(&mut self, phase: Phase) -> Result<Option<Reply>, ConnectionError> {
        use futures_util::FutureExt;
        let reply = self.next_reply(phase).now_or_never().transpose()?;
        if let Some(reply) = &reply {
            self.log_reply(reply);
        }
        Ok(reply)
    }

    fn log_reply(&self, reply: &Reply) {
        if self.transcript.is_some() {
            for line in reply.wire_lines() {
                self.log(Direction::Server, &line);
            }
        }
    }

    /// One command, one write, one reply: the lock-step exchange.
    pub async fn command(&mut self, command: &Command<'_>, phase: Phase) -> Result<Reply, ConnectionError> {
        self.queue(command)?;
        self.flush().await?;
        self.read_reply(phase).await
    }

    /// True when the peer has already closed or reset the connection, judged without waiting: on a
    /// session with no reply due, before writing what cannot be taken back (a BDAT window, whose data goes
    /// with its commands). Bytes that did arrive (an unsolicited `421`) are kept for the next reply.
    pub fn peer_closed(&mut self) -> bool {
        use futures_util::FutureExt;
        self.read_buf.reserve(4096);
        match self.stream.read_buf(&mut self.read_buf).now_or_never() {
            Some(Ok(0) | Err(_)) => true,
            Some(Ok(_)) | None => false,
        }
    }

    /// Bytes received and not yet parsed as a reply.
    pub fn buffered(&self) -> usize {
        self.read_buf.len()
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, for a TLS upgrade; only sound when [`buffered`](Self::buffered) is 0.
    pub fn into_stream(self) -> S {
        self.stream
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    pub fn transcript(&self) -> Option<&TranscriptSink> {
        self.transcript.as_ref()
    }

    /// Writes a line to the transcript, if there is one.
    pub fn log(&self, direction: Direction, line: &str) {
        if let Some(sink) = &self.transcript {
            sink(direction, line);
        }
    }

    /// Closes our side of the connection, ignoring errors: the peer may already be gone.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(self.timeouts.command, self.stream.shutdown()).await;
    }

    /// The whole write buffer in blocks of [`DATA_BLOCK`] (one write for any ordinary group), then a flush
    /// (TLS records). Progress lives outside each block's deadline, so a timeout still says how far it got.
    async fn send_queued(&mut self, phase: Phase) -> Result<(), WriteError> {
        let after = self.timeouts.get(phase);
        let (stream, buf) = (&mut self.stream, &self.write_buf);
        let mut handed = 0;
        while handed < buf.len() {
            let end = (handed + DATA_BLOCK).min(buf.len());
            let block = async {
                while handed < end {
                    match stream.write(&buf[handed..end]).await? {
                        0 => return Err(io::ErrorKind::WriteZero.into()),
                        n => handed += n,
                    }
                }
                Ok(())
            };
            let result = within(phase, after, block).await;
            result.map_err(|source| WriteError { handed, source })?;
        }
        let flushed = within(phase, after, stream.flush()).await;
        flushed.map_err(|source| WriteError { handed, source })?;
        self.write_buf.clear();
        if self.write_buf.capacity() > KEEP_CAPACITY {
            self.write_buf.shrink_to(KEEP_CAPACITY / 16);
        }
        Ok(())
    }

    async fn next_reply(&mut self, phase: Phase) -> Result<Reply, ConnectionError> {
        loop {
            if let Some((reply, used)) = reply::parse(&self.read_buf)? {
                self.read_buf.drain(..used);
                return Ok(reply);
            }
            self.read_buf.reserve(4096);
            match self.stream.read_buf(&mut self.read_buf).await {
                Ok(0) => return Err(ConnectionError::Closed { phase }),
                Ok(_) => {}
                Err(source) => return Err(ConnectionError::Io { phase, source }),
            }
        }
    }
}

/// Runs one I/O step under a deadline, naming the phase in either error.
async fn within<F>(phase: Phase, after: Duration, io: F) -> Result<(), ConnectionError>
where
    F: Future<Output = io::Result<()>>,
{
    match tokio::time::timeout(after, io).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(ConnectionError::Io { phase, source }),
        Err(_) => Err(ConnectionError::Timeout { phase, after }),
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
