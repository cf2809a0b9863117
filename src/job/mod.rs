//! The batch: workers, the shared throttle, the retry policy, the recorder. Knows jobs, not wire bytes.

pub mod clock;
pub mod evidence;
pub mod fingerprint;
pub mod journal;
pub mod lock;
pub mod pending;
pub mod policy;
pub mod pool;
pub mod producer;
pub mod progress;
pub mod queue;
pub mod recorder;
pub mod repair;
pub mod report;
pub mod run;
pub mod settlement;
pub mod signals;
pub mod status;
pub mod throttle;
pub mod undelivered;
pub mod work;
pub mod worker;
