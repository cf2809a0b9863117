//! `[retry]`: how often and how patiently a temporarily refused message is tried again within one run.

use std::time::Duration;

use serde::Deserialize;

use super::seconds::bounded_seconds;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    /// Attempts per message in one run, the first included (default 3).
    pub attempts: u32,
    /// Seconds before the first retry; doubled for each further one, with ±25 % jitter (default 30).
    pub initial_delay: f64,
    /// The longest wait between attempts, in seconds (default 600).
    pub max_delay: f64,
}

impl Default for RetrySection {
    fn default() -> Self {
        RetrySection { attempts: 3, initial_delay: 30.0, max_delay: 600.0 }
    }
}

impl RetrySection {
    /// `check` refuses delays outside `config::numbers`' range; clamped here too, so that no path can panic.
    pub fn initial(&self) -> Duration {
        bounded_seconds(self.initial_delay)
    }

    pub fn max(&self) -> Duration {
        bounded_seconds(self.max_delay).max(self.initial())
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.max(1)
    }
}
