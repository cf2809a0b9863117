//! Shared test helpers: the lab's environment, hermetic binary runs, a fake SMTP server for `send`.

pub mod fake_smtp;
pub mod lab_env;
pub mod lab_mail;
pub mod send_job;
