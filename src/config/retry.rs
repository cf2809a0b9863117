//! `[retry]`: how often and how patiently a temporarily refused message is tried again within one run.

use std::time::Duration;

use serde::Deserialize;

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
    pub fn initial(&self) -> Duration {
        Duration::from_secs_f64(self.initial_delay.max(0.0))
    }

    pub fn max(&self) -> Duration {
        Duration::from_secs_f64(self.max_delay.max(self.initial_delay).max(0.0))
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.max(1)
    }
}
