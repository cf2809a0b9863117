//! The job file (`job.toml`), second stage of configuration: typed sections with defaults, unknown keys refused.
//!
//! Each section lives in its own file. Paths inside the job file are relative to the job file's folder;
//! resolving them is the caller's job (see `Job::resolve` in `job`), so this module only parses.

pub mod rate;
pub mod smtp;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use smtp::{AuthMechanism, PasswordSource, Security, SmtpSection, Timeouts};

/// The whole `job.toml`. `[message]`, `[recipients]` and `[rate]` are filled in by their own issues;
/// they are kept as raw tables here until then so that a job file written today still parses.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub smtp: SmtpSection,
    #[serde(default)]
    pub message: Option<toml::Table>,
    #[serde(default)]
    pub recipients: Option<toml::Table>,
    #[serde(default)]
    pub rate: Option<toml::Table>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the job file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// toml's message already names the line, column and key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl JobFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
    }
}
