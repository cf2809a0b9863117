//! Seconds from the job file as a `Duration`, below the sections that hold them and the checks that bound
//! them ([`super::numbers`]), so that neither imports the other.

use std::time::Duration;

/// The longest duration (seconds) a timeout or delay may be: a day.
pub const MAX_SECONDS: f64 = 86_400.0;

/// Seconds as a `Duration`, clamped to `0..=MAX_SECONDS` (NaN is 0): for values that were checked already,
/// so that an unchecked path still cannot panic in `Duration::from_secs_f64`.
pub fn bounded_seconds(seconds: f64) -> Duration {
    if seconds.is_nan() { Duration::ZERO } else { Duration::from_secs_f64(seconds.clamp(0.0, MAX_SECONDS)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_seconds_never_panics() {
        for s in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1.0, 0.0, 1.5] {
            assert!(bounded_seconds(s) <= Duration::from_secs(86_400), "{s}");
        }
    }
}
