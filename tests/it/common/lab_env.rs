//! The Postfix lab's environment, as `scripts/smtp-lab env` prints it.
//!
//! Under a plain `cargo test` without the lab, a test that needs it is skipped with a printed reason.
//! `scripts/test` sets `MAILSHOT_REQUIRE_LAB=1`, under which a missing lab is a failure, so CI always runs them.

use std::path::PathBuf;

/// Not every test uses every port.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct Lab {
    pub host: String,
    /// Implicit TLS, AUTH required (like smtp.gmail.com:465).
    pub tls_port: u16,
    /// STARTTLS required, then AUTH (submission).
    pub starttls_port: u16,
    /// Plaintext, no AUTH (a local relay).
    pub plain_port: u16,
    /// Plaintext, no ESMTP extensions at all.
    pub noext_port: u16,
    /// Plaintext, with Postfix's per-client message rate limit: `rate_messages` MAIL FROMs per `rate_unit`
    /// seconds, then `450 4.7.1 Error: too much mail from ...` (anvil).
    pub rate_port: u16,
    pub rate_messages: u32,
    pub rate_unit: u32,
    /// Postfix's smtp-sink (discards everything), plaintext.
    pub sink_port: u16,
    /// stunnel (implicit TLS) in front of the sink.
    pub sink_tls_port: u16,
    pub ca_file: PathBuf,
    pub user: String,
    pub password: String,
    /// The catch-all Maildir (`new/` holds delivered messages).
    pub maildir: PathBuf,
    pub maillog: PathBuf,
}

pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn port(name: &str) -> Option<u16> {
    var(name)?.parse().ok()
}

impl Lab {
    fn from_env() -> Option<Lab> {
        Some(Lab {
            host: var("MAILSHOT_LAB_HOST")?,
            tls_port: port("MAILSHOT_LAB_TLS_PORT")?,
            starttls_port: port("MAILSHOT_LAB_STARTTLS_PORT")?,
            plain_port: port("MAILSHOT_LAB_PLAIN_PORT")?,
            noext_port: port("MAILSHOT_LAB_NOEXT_PORT")?,
            rate_port: port("MAILSHOT_LAB_RATE_PORT")?,
            rate_messages: var("MAILSHOT_LAB_RATE_MESSAGES")?.parse().ok()?,
            rate_unit: var("MAILSHOT_LAB_RATE_UNIT")?.parse().ok()?,
            sink_port: port("MAILSHOT_LAB_SINK_PORT")?,
            sink_tls_port: port("MAILSHOT_LAB_SINK_TLS_PORT")?,
            ca_file: var("MAILSHOT_LAB_CA")?.into(),
            user: var("MAILSHOT_LAB_USER")?,
            password: var("MAILSHOT_LAB_PASSWORD")?,
            maildir: var("MAILSHOT_LAB_MAILDIR")?.into(),
            maillog: var("MAILSHOT_LAB_LOG")?.into(),
        })
    }
}

/// The lab, or `None` after printing why the calling test is skipped.
/// Panics instead when `MAILSHOT_REQUIRE_LAB=1`.
pub fn lab(test: &str) -> Option<Lab> {
    required(test, Lab::from_env())
}

/// `found`, or `None` after printing why `test` is skipped; a panic under `MAILSHOT_REQUIRE_LAB=1`.
pub fn required<T>(test: &str, found: Option<T>) -> Option<T> {
    if found.is_none() {
        let reason = "the SMTP lab is not running (start it with `scripts/smtp-lab start` and \
                      `eval \"$(scripts/smtp-lab env)\"`, or run `scripts/test`)";
        if var("MAILSHOT_REQUIRE_LAB").as_deref() == Some("1") {
            panic!("{test}: MAILSHOT_REQUIRE_LAB=1 but {reason}");
        }
        eprintln!("SKIPPED {test}: {reason}");
    }
    found
}
