//! The batch: workers, the shared throttle, the retry policy, the recorder. Knows jobs, not wire bytes
//! (the `smtp` module below it does). One `send`, in the order things happen:
//!
//! ```text
//! run ─► run::start: check (the messages it builds kept in a spool), lock, journal::Replayed, fingerprint,
//!        the run's record
//!     ─► producer (its own thread: carry settled rows, take the rest from the spool or render them)
//!        ─► queue (bounded; retries by due time)
//!     ─► worker × N ─ worker::connect: pool (sessions, learned caps) + throttle (the one rate limiter)
//!                   ─ worker::transmit: pending (committing record) ─► smtp::Session open/commit
//!                   ─ worker::settle: policy (verdict: delivered, retry, failed, uncertain, abort)
//!     ─► journal (a writer thread: the workers' records, one fdatasync per group) ; recorder (one task:
//!        progress, report, tally) ◄─ events ─ producer, workers
//!     ─► run::finish: exit code, run-end record, journal synced; lessons, report path
//! ```
//!
//! Beside the run: `shard` (which recipients a `--shard I/N` run takes, its part of `[rate]`, the journals'
//! layout), `status` (reads the journal through the same [`journal::Replayed`], every shard's), `repair`,
//! `signals` (Ctrl-C and friends set [`worker::Stop`]), `evidence` (reports against the journal). The words
//! used for a recipient's fate (status, settlement, outcome, …) are listed in the crate docs.

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
pub mod queue_bytes;
pub mod recorder;
pub mod repair;
pub mod report;
pub mod run;
pub mod settlement;
pub mod shard;
pub mod signals;
pub mod spool;
pub mod status;
pub mod throttle;
pub mod undelivered;
pub mod work;
pub mod worker;
