//! The batch: workers, the shared throttle, the retry policy, the recorder. Knows jobs, not wire bytes.

pub mod throttle;
