//! `[rate]`: how fast a job may send. Absent means as fast as the server takes it.

use std::time::Duration;

use serde::Deserialize;

use super::seconds::bounded_seconds;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSection {
    pub per_second: Option<f64>,
    pub per_minute: Option<f64>,
    pub per_hour: Option<f64>,
    /// How many messages may go out back to back after an idle spell; default 2: one slot of slack, so that
    /// a turn no connection was ready to take at its instant is not lost (with 1, four busy connections
    /// achieved 4–16 % less than the configured rate; with 2, within 1 %).
    pub burst: Option<u32>,
    /// A rolling 24-hour budget, counted across runs from the journal.
    pub max_per_day: Option<u64>,
    /// Sharded runs (`send --shard I/N`): the relative weight of each shard in the rate and the daily
    /// budget, one per shard (`[2, 1, 1]`: shard 0 gets half); absent, the shards share equally.
    pub shard_share: Option<Vec<f64>>,
}

impl RateSection {
    /// Messages per second, if limited; more than one of per_second/per_minute/per_hour is an error.
    pub fn messages_per_second(&self) -> Result<Option<f64>, String> {
        let given: Vec<f64> = [self.per_second, self.per_minute.map(|m| m / 60.0), self.per_hour.map(|h| h / 3600.0)]
            .into_iter()
            .flatten()
            .collect();
        match given.as_slice() {
            [] => Ok(None),
            [r] if r.is_finite() && *r > 0.0 => Ok(Some(*r)),
            [_] => Err("the rate must be a positive number".into()),
            _ => Err("set only one of per_second, per_minute, per_hour".into()),
        }
    }

    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(2).max(1)
    }
}

/// The pace a throttle enforces: one message per `interval`, at most `burst` back to back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub interval: Duration,
    pub burst: u32,
}

impl Pace {
    /// `rate` is checked by `config::numbers` (one a day to 10000 a second); an unchecked one cannot panic.
    pub fn per_second(rate: f64, burst: u32) -> Pace {
        Pace { interval: bounded_seconds(1.0 / rate), burst: burst.max(1) }
    }

    pub fn per_second_rate(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }
}
