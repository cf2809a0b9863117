//! How long the rest of a run will take, from the work left and whichever limit is slowest: the pace
//! measured so far, the configured `[rate]`, or the last retry's due time.
//!
//! A bar's own estimate (position over time) is wrong for mailshot: a resumed run starts with recipients
//! settled in earlier runs (the position jumps, the pace looks huge), a throttled run's first messages go
//! out in a burst, and a retry's wait is not work at any pace.

use std::time::Duration;

/// What the estimate is made from. `remaining` counts messages of this run not settled yet, those waiting
/// for a retry included; `attempts` counts transactions that ended in this run (settled, or deferred for a
/// retry), so that a run busy with retries does not look faster than it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtaInputs {
    pub remaining: u64,
    pub attempts: u64,
    pub elapsed: Duration,
    /// The configured rate in messages per second (`[rate]`, `--rate`).
    pub rate: Option<f64>,
    /// Until the last waiting retry is due.
    pub last_retry_in: Option<Duration>,
}

/// The estimate, or `None` while there is nothing to base one on (no transaction ended yet, no rate).
pub fn eta(work: EtaInputs) -> Option<Duration> {
    if work.remaining == 0 {
        return Some(Duration::ZERO);
    }
    let remaining = work.remaining as f64;
    let pace = (work.attempts > 0 && !work.elapsed.is_zero())
        .then(|| work.elapsed.as_secs_f64() * remaining / work.attempts as f64);
    let limit = work.rate.filter(|r| *r > 0.0).map(|rate| remaining / rate);
    let slowest = [pace, limit].into_iter().flatten().reduce(f64::max)?;
    let estimate = Duration::try_from_secs_f64(slowest).unwrap_or(Duration::MAX);
    Some(work.last_retry_in.map_or(estimate, |wait| estimate.max(wait)))
}

/// A duration as people read it on a status line: `45s`, `3m 05s`, `2h 07m`, `3d 04h`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(remaining: u64, attempts: u64, elapsed: u64) -> EtaInputs {
        EtaInputs { remaining, attempts, elapsed: Duration::from_secs(elapsed), rate: None, last_retry_in: None }
    }

    #[test]
    fn the_pace_so_far_gives_the_estimate() {
        // 10 transactions in 5 s: 2 a second, 30 left.
        assert_eq!(eta(work(30, 10, 5)), Some(Duration::from_secs(15)));
    }

    #[test]
    fn a_rate_limit_slower_than_the_pace_wins() {
        // The first messages went out in a burst (10 in 1 s), but [rate] allows one a second: 54 left.
        let limited = EtaInputs { rate: Some(1.0), ..work(54, 10, 1) };
        assert_eq!(eta(limited), Some(Duration::from_secs(54)));
        // A generous rate does not make a slow server faster.
        let generous = EtaInputs { rate: Some(100.0), ..work(54, 10, 10) };
        assert_eq!(eta(generous), Some(Duration::from_secs(54)));
    }

    #[test]
    fn a_rate_alone_is_enough_before_the_first_reply() {
        assert_eq!(eta(work(30, 0, 0)), None);
        assert_eq!(eta(EtaInputs { rate: Some(0.5), ..work(30, 0, 0) }), Some(Duration::from_secs(60)));
    }

    #[test]
    fn the_run_lasts_at_least_until_the_last_retry_is_due() {
        // Two left, both waiting 90 s for their retry: the pace (fast) says 1 s.
        let waiting = EtaInputs { last_retry_in: Some(Duration::from_secs(90)), ..work(2, 58, 29) };
        assert_eq!(eta(waiting), Some(Duration::from_secs(90)));
    }

    #[test]
    fn nothing_left_is_done() {
        assert_eq!(eta(work(0, 0, 0)), Some(Duration::ZERO));
    }

    #[test]
    fn durations_read_like_a_clock() {
        let cases = [(0, "0s"), (59, "59s"), (60, "1m 00s"), (185, "3m 05s"), (7620, "2h 07m"), (273_600, "3d 04h")];
        for (secs, shown) in cases {
            assert_eq!(human(Duration::from_secs(secs)), shown, "{secs}");
        }
    }
}
