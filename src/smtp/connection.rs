//! One connection's bytes: a read buffer that lives as long as the connection and a write buffer flushed
//! once per command group, every I/O step under its phase's deadline.
//!
//! The read buffer persists across replies, so bytes that arrive early (a pipelined group's later replies,
//! RFC 2920) wait for their turn instead of being lost, and so a STARTTLS response-injection attack is
//! visible: anything still buffered after the `220` to STARTTLS was sent before the TLS handshake
//! (RFC 3207 §4, CVE-2011-0411). Commands are queued through [`Command::encode`], which checks every
//! argument before a byte is buffered; [`Connection::flush`] sends the whole group in one write, which with
//! `TCP_NODELAY` means one segment and no Nagle delay.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::command::{Command, CommandError};
use super::config::{Direction, Phase, Timeouts, TranscriptSink};
use super::reply::{self, Reply, ReplyError};

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
        self.log(Direction::Client, &command.redacted());
        Ok(())
    }

    /// Sends everything queued in one write.
    pub async fn flush(&mut self) -> Result<(), ConnectionError> {
        let (stream, buf) = (&mut self.stream, &self.write_buf);
        within(Phase::Command, self.timeouts.command, async {
            stream.write_all(buf).await?;
            stream.flush().await
        })
        .await?;
        self.write_buf.clear();
        Ok(())
    }

    /// Reads the next reply, waiting at most the deadline of `phase`.
    pub async fn read_reply(&mut self, phase: Phase) -> Result<Reply, ConnectionError> {
        let after = self.timeouts.get(phase);
        let reply = match tokio::time::timeout(after, self.next_reply(phase)).await {
            Ok(result) => result?,
            Err(_) => return Err(ConnectionError::Timeout { phase, after }),
        };
        for line in reply.wire_lines() {
            self.log(Direction::Server, &line);
        }
        Ok(reply)
    }

    /// One command, one write, one reply: the lock-step exchange.
    pub async fn command(&mut self, command: &Command<'_>, phase: Phase) -> Result<Reply, ConnectionError> {
        self.queue(command)?;
        self.flush().await?;
        self.read_reply(phase).await
    }

    /// Writes one block of message data (already dot-stuffed) without flushing, under the data-block deadline.
    /// When this returns an error, the block's last byte was not handed to the stream.
    pub async fn write_block(&mut self, block: &[u8]) -> Result<(), ConnectionError> {
        let stream = &mut self.stream;
        within(Phase::DataBlock, self.timeouts.data_block, stream.write_all(block)).await
    }

    /// Pushes out whatever the stream still holds (TLS records) after the last data block.
    pub async fn flush_data(&mut self) -> Result<(), ConnectionError> {
        let stream = &mut self.stream;
        within(Phase::DataBlock, self.timeouts.data_block, stream.flush()).await
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
