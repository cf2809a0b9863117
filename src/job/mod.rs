//! The batch: workers, the shared throttle, the retry policy, the recorder. Knows jobs, not wire bytes.

pub mod journal;
pub mod lock;
pub mod outcome;
pub mod policy;
pub mod progress;
pub mod queue;
pub mod report;
pub mod throttle;
