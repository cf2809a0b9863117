//! `[smtp]`: where and how to connect. Secrets are named here (env var, file, command), never written here.
//!
//! [`SmtpSection::client_config`] turns the section into the `smtp` module's own [`ClientConfig`], loading
//! the secret and the extra CA file on the way, so the `smtp` module never sees a job file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use super::seconds::bounded_seconds;
use crate::smtp;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (port 465).
    #[default]
    Tls,
    /// Plaintext, then a required STARTTLS (port 587).
    Starttls,
    /// No TLS at all: only for a local relay.
    None,
}

impl Security {
    pub fn default_port(self) -> u16 {
        match self {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::None => 25,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMechanism {
    Plain,
    Login,
    Xoauth2,
    Oauthbearer,
    /// An OAuth2 bearer token: OAUTHBEARER where offered, else XOAUTH2.
    Oauth2,
}

impl AuthMechanism {
    pub fn is_oauth(self) -> bool {
        matches!(self, AuthMechanism::Xoauth2 | AuthMechanism::Oauthbearer | AuthMechanism::Oauth2)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// Host name; also the name the certificate must carry.
    pub server: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub username: Option<String>,
    /// Where the password (or XOAUTH2 token) comes from: exactly one of these, or none for no AUTH.
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    /// For OAuth2 (`auth = "oauth2"`, `"xoauth2"`, `"oauthbearer"`): a command that prints an access token,
    /// run again for a new session once the last token is `token_lifetime` old, or refused as expired.
    pub token_command: Option<String>,
    /// Seconds a token from `token_command` is used for new sessions before a fresh one is fetched.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime: f64,
    /// Seconds `password_command` (or `token_command`) may run before it is stopped, with every process it started (default 30).
    #[serde(default = "default_command_timeout")]
    pub password_command_timeout: f64,
    /// Force a mechanism; by default the best one the server offers (PLAIN, then LOGIN).
    pub auth: Option<AuthMechanism>,
    /// Extra trust anchors (PEM) for a private relay, added to webpki-roots.
    pub ca_file: Option<PathBuf>,
    /// The EHLO name; default the machine's fully qualified name, else our address literal (`[127.0.0.1]`).
    pub ehlo_name: Option<String>,
    /// How far to pipeline when the server offers PIPELINING.
    #[serde(default)]
    pub pipelining: PipeliningMode,
    /// AUTH over a connection without TLS is refused unless this is set (a local relay on loopback).
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    /// Messages in flight at once per session when the server offers CHUNKING (BDAT) and PIPELINING, with
    /// `pipelining = "auto"`: more hides round trips, and widens the crash bound by one uncertain
    /// recipient per connection for each message above 1 (README, "Crashes"). 1: DATA, one at a time.
    #[serde(default = "default_window")]
    pub window: u32,
    #[serde(default = "default_connections")]
    pub connections: u32,
    #[serde(default = "default_max_messages")]
    pub max_messages_per_connection: u32,
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// `[smtp] pipelining`: `auto` pipelines across the final dot until a server refuses that, then falls back
/// to `envelope` for the rest of the run; `envelope` never writes past a dot before its reply; `off` is
/// lock-step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PipeliningMode {
    #[default]
    Auto,
    Envelope,
    Off,
}

fn default_window() -> u32 {
    1
}

fn default_connections() -> u32 {
    1
}

fn default_max_messages() -> u32 {
    100
}

fn default_token_lifetime() -> f64 {
    2700.0
}

fn default_command_timeout() -> f64 {
    DEFAULT_COMMAND_TIMEOUT.as_secs_f64()
}

/// How long `password_command` may run unless `password_command_timeout` says otherwise.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl SmtpSection {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }

    /// Which of the password keys is set; more than one is a configuration error.
    pub fn password_source(&self) -> Result<Option<PasswordSource>, String> {
        let mut found = Vec::new();
        if let Some(v) = &self.password_env {
            found.push(PasswordSource::Env(v.clone()));
        }
        if let Some(v) = &self.password_file {
            found.push(PasswordSource::File(v.clone()));
        }
        if let Some(v) = &self.password_command {
            found.push(PasswordSource::Command(v.clone()));
        }
        if let Some(v) = &self.token_command {
            if !self.auth.is_some_and(AuthMechanism::is_oauth) {
                return Err("token_command needs `auth = \"oauth2\"` (or \"xoauth2\", \"oauthbearer\")".into());
            }
            found.push(PasswordSource::Command(v.clone()));
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err("set only one of password_env, password_file, password_command, token_command".into()),
        }
    }
}

/// `token_command`, to be run again during a run: a new session gets a fresh token once the last one is
/// `lifetime` old.
#[derive(Debug, Clone)]
pub struct TokenSource {
    source: PasswordSource,
    base_dir: PathBuf,
    timeout: Duration,
    pub lifetime: Duration,
}

impl TokenSource {
    /// Runs the command (timeout, no stderr shown, a blank token refused, as for `password_command`).
    pub fn fetch(&self) -> Result<smtp::Secret, SmtpConfigError> {
        self.source.load_within(&self.base_dir, self.timeout)
    }
}

/// Where a secret comes from. The secret itself is never stored in the job file or taken from argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Env(String),
    /// Relative to the job file's folder.
    File(PathBuf),
    /// Run with `sh -c`; its stdout, without the trailing newline, is the secret.
    Command(String),
}

impl SmtpSection {
    /// The `smtp` client's configuration; relative paths are taken from `base_dir` (the job file's folder).
    pub fn client_config(&self, base_dir: &Path) -> Result<smtp::ClientConfig, SmtpConfigError> {
        let mut config = self.connection_config(base_dir)?;
        config.credentials = self.credentials(base_dir)?;
        Ok(config)
    }

    /// Everything of the client configuration but the credentials (no command is run): what `check` can
    /// validate without side effects, with the same errors `send` would meet.
    pub fn connection_config(&self, base_dir: &Path) -> Result<smtp::ClientConfig, SmtpConfigError> {
        let mut config = smtp::ClientConfig::new(self.server.clone(), self.port());
        config.security = match self.security {
            Security::Tls => smtp::Security::ImplicitTls,
            Security::Starttls => smtp::Security::StartTls,
            Security::None => smtp::Security::None,
        };
        config.ehlo_name = self.ehlo_name.clone();
        config.pipelining = match self.pipelining {
            PipeliningMode::Auto => smtp::Pipelining::Full,
            PipeliningMode::Envelope => smtp::Pipelining::Envelope,
            PipeliningMode::Off => smtp::Pipelining::Off,
        };
        if let Some(path) = &self.ca_file {
            config.extra_roots = load_ca_file(&base_dir.join(path))?;
        }
        config.mechanism = self.auth.map(|m| match m {
            AuthMechanism::Plain => smtp::Mechanism::Plain,
            AuthMechanism::Login => smtp::Mechanism::Login,
            AuthMechanism::Xoauth2 => smtp::Mechanism::Xoauth2,
            AuthMechanism::Oauthbearer | AuthMechanism::Oauth2 => smtp::Mechanism::OAuthBearer,
        });
        config.allow_plaintext_auth = self.allow_plaintext_auth;
        config.window = self.window as usize;
        config.timeouts = self.timeouts.to_smtp();
        Ok(config)
    }

    fn credentials(&self, base_dir: &Path) -> Result<Option<smtp::Credentials>, SmtpConfigError> {
        let source = self.password_source().map_err(SmtpConfigError::PasswordKeys)?;
        match (&self.username, source) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(SmtpConfigError::NoUsername),
            (Some(_), None) => Err(SmtpConfigError::NoPassword),
            (Some(user), Some(source)) => {
                let secret = source.load_within(base_dir, self.command_timeout())?;
                Ok(Some(smtp::Credentials { username: user.clone(), secret }))
            }
        }
    }

    /// Where fresh OAuth2 tokens come from during a run, when `token_command` is set.
    pub fn token_source(&self, base_dir: &Path) -> Option<TokenSource> {
        let command = self.token_command.clone()?;
        Some(TokenSource {
            source: PasswordSource::Command(command),
            base_dir: base_dir.to_owned(),
            timeout: self.command_timeout(),
            lifetime: bounded_seconds(self.token_lifetime),
        })
    }

    pub fn command_timeout(&self) -> Duration {
        bounded_seconds(self.password_command_timeout)
    }

    /// What `check` can learn about the credentials without side effects: the same errors `send` would
    /// meet, the secret read and dropped unseen; `password_command` is not run (it may prompt, refresh a
    /// token, log an access): `Ok(Some(command))` says it was left alone.
    pub fn check_credentials(&self, base_dir: &Path) -> Result<Option<&str>, SmtpConfigError> {
        let source = self.password_source().map_err(SmtpConfigError::PasswordKeys)?;
        match (&self.username, source) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(SmtpConfigError::NoUsername),
            (Some(_), None) => Err(SmtpConfigError::NoPassword),
            (Some(_), Some(PasswordSource::Command(_))) => {
                Ok(self.password_command.as_deref().or(self.token_command.as_deref()))
            }
            // `password_file` is opened without blocking and only read if it is a regular file (`input`).
            (Some(_), Some(source)) => source.load(base_dir).map(|_| None),
        }
    }

    /// A warning when `password_file` can be read by the file's group or by others, as ssh gives for a
    /// private key (mailshot still uses it).
    pub fn password_file_warning(&self, base_dir: &Path) -> Option<String> {
        let path = base_dir.join(self.password_file.as_ref()?);
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        (mode & 0o044 != 0).then(|| {
            format!(
                "[smtp] password_file {}: readable by {} (permissions {:04o} are too open): chmod 600 it",
                path.display(),
                if mode & 0o004 != 0 { "others" } else { "its group" },
                mode & 0o7777
            )
        })
    }
}

/// The largest `ca_file` read (the whole Mozilla bundle is about 220 kB).
const CA_FILE_BYTES: u64 = 4 << 20;

fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, SmtpConfigError> {
    let error = |reason: String| SmtpConfigError::CaFile { path: path.to_owned(), reason };
    let pem = crate::input::read(path, CA_FILE_BYTES, "a CA file").map_err(SmtpConfigError::CaFileRead)?;
    let certs =
        CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(error("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

mod error;
mod secret;
mod timeouts;

pub use error::{MAX_SECRET, SmtpConfigError};
pub use timeouts::Timeouts;

#[cfg(test)]
#[path = "smtp_tests.rs"]
mod tests;
