//! Where the lines that cross the wire can be sent (for `-v` and tests), AUTH payloads already redacted,
//! where the connector's hints for a person go, and where what the handshake learns is reported as it is
//! learned (so that `probe` can show the banner and TLS even when a later step fails).

use std::sync::Arc;

use super::capabilities::Capabilities;
use super::reply::Reply;
use super::tls::TlsInfo;

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Client,
    Server,
}

/// Receives every line that crosses the wire, AUTH payloads already redacted; the body is summarised.
pub type TranscriptSink = Arc<dyn Fn(Direction, &str) + Send + Sync>;

/// Receives a one-line hint for the person running the client (e.g. a likely `security`/port mix-up).
pub type HintSink = Arc<dyn Fn(&str) + Send + Sync>;

/// One fact the handshake learned, reported the moment it is known, before any later step can fail.
#[derive(Debug, Clone, Copy)]
pub enum Learned<'a> {
    /// The server's first reply, whatever its code.
    Greeting(&'a Reply),
    /// The TLS handshake finished (implicit TLS, or after STARTTLS).
    Tls(&'a TlsInfo),
    /// What an EHLO (or HELO) reply offers; after STARTTLS a second one replaces the first.
    Capabilities(&'a Capabilities),
}

/// Receives each [`Learned`] fact of a handshake.
pub type LearnedSink = Arc<dyn Fn(Learned<'_>) + Send + Sync>;
