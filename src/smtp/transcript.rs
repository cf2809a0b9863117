//! Where the lines that cross the wire can be sent (for `-v` and tests), AUTH payloads already redacted, and
//! where the connector's hints for a person go.

use std::sync::Arc;

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
