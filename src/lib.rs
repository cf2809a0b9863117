//! mailshot: batch mail-merge jobs sent through a small pool of reused, authenticated SMTP sessions.
//!
//! Data flows one way (see `ARCHITECTURE` in the README): CSV row → rendered message → rate limiter →
//! a worker's SMTP session → reply → policy → recorder. The `smtp` module is our own client, written from
//! the socket up, and knows nothing about jobs.

pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod exit_codes;
pub mod init;
pub mod input;
pub mod job;
pub mod jobdef;
pub mod message;
pub mod output;
pub mod preview;
pub mod probe;
pub mod recipients;
pub mod render;
pub mod shell;
pub mod smtp;
