//! Shared test helpers: the lab's environment (Postfix and aiosmtpd), hermetic binary runs, a fake SMTP server
//! for `send`.

pub mod browser;
pub mod fake_smtp;
pub mod lab_aiosmtpd;
pub mod lab_env;
pub mod lab_mail;
pub mod lab_oauth;
pub mod send_job;
pub mod strace;
