//! The batch: workers, the shared throttle, the retry policy, the recorder. Knows jobs, not wire bytes.

pub mod outcome;
pub mod progress;
pub mod report;
pub mod throttle;
