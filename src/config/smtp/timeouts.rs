//! `[smtp.timeouts]`: one deadline per network phase, in seconds, lowered to the client's [`smtp::Timeouts`].

use std::time::Duration;

use serde::Deserialize;

use crate::smtp;

/// Per-phase timeouts in seconds, RFC 5321 §4.5.3.2 defaults (connect and TLS are ours).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub connect: f64,
    pub tls: f64,
    pub greeting: f64,
    pub command: f64,
    pub data: f64,
    pub data_block: f64,
    pub data_end: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: 30.0,
            tls: 60.0,
            greeting: 300.0,
            command: 300.0,
            data: 120.0,
            data_block: 180.0,
            data_end: 600.0,
        }
    }
}

impl Timeouts {
    /// Negative or NaN is zero; too large to represent is "forever".
    pub fn seconds(value: f64) -> Duration {
        Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::MAX)
    }
}

impl Timeouts {
    /// The same deadlines as the `smtp` client's type.
    pub fn to_smtp(&self) -> smtp::Timeouts {
        smtp::Timeouts {
            connect: Self::seconds(self.connect),
            tls: Self::seconds(self.tls),
            greeting: Self::seconds(self.greeting),
            command: Self::seconds(self.command),
            data: Self::seconds(self.data),
            data_block: Self::seconds(self.data_block),
            data_end: Self::seconds(self.data_end),
        }
    }
}
