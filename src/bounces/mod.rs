//! `mailshot bounces`: delivery status notifications read back into what the job knows.
pub mod dsn;
