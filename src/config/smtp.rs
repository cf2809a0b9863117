//! `[smtp]`: where and how to connect. Secrets are named here (env var, file, command), never written here.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
    /// Force a mechanism; by default the best one the server offers (PLAIN, then LOGIN).
    pub auth: Option<AuthMechanism>,
    /// Extra trust anchors (PEM) for a private relay, added to webpki-roots.
    pub ca_file: Option<PathBuf>,
    /// The EHLO name; default `localhost`.
    pub ehlo_name: Option<String>,
    /// AUTH over a connection without TLS is refused unless this is set (a local relay on loopback).
    #[serde(default)]
    pub allow_plaintext_auth: bool,
    #[serde(default = "default_connections")]
    pub connections: u32,
    #[serde(default = "default_max_messages")]
    pub max_messages_per_connection: u32,
    #[serde(default)]
    pub timeouts: Timeouts,
}

fn default_connections() -> u32 {
    1
}

fn default_max_messages() -> u32 {
    100
}

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
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err("set only one of password_env, password_file, password_command".into()),
        }
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

/// Per-phase timeouts in seconds, RFC 5321 §4.5.3.2 defaults (connect and TLS are ours).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub connect: f64,
    pub tls: f64,
    pub greeting: f64,
    pub command: f64,
    pub data: f64,
    pub data_block: f64,
    pub data_end: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: 30.0,
            tls: 60.0,
            greeting: 300.0,
            command: 300.0,
            data: 120.0,
            data_block: 180.0,
            data_end: 600.0,
        }
    }
}

impl Timeouts {
    pub fn seconds(value: f64) -> Duration {
        Duration::from_secs_f64(value.max(0.0))
    }
}
