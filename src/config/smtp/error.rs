//! What can be wrong with `[smtp]`, found before any connection: each variant names the setting or file.

use std::path::PathBuf;
use std::process::ExitStatus;

/// The most a password (or token) may be, from a command: anything longer is not a password.
pub const MAX_SECRET: usize = 64 * 1024;

/// Problems found while turning `[smtp]` into a client configuration (bad input, before any connection).
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("[smtp] {0}")]
    PasswordKeys(String),
    #[error("[smtp] a password source is set but no `username`")]
    NoUsername,
    #[error("[smtp] `username` is set but none of password_env, password_file, password_command")]
    NoPassword,
    #[error("[smtp] password_env: the environment variable {name} is not set")]
    EnvMissing { name: String },
    #[error("[smtp] password_file: {0}")]
    FileRead(crate::input::InputError),
    #[error("[smtp] password_command `{command}` could not be run: {source}")]
    CommandSpawn { command: String, source: std::io::Error },
    /// Its error output is never shown: a failing password manager may print the secret, or part of it.
    #[error(
        "[smtp] password_command `{command}` failed ({status}); its error output is not shown (it may hold \
         the secret): run the command by hand to see why"
    )]
    CommandFailed { command: String, status: ExitStatus },
    #[error(
        "[smtp] password_command `{command}` did not finish within {seconds} s (password_command_timeout); it \
         was stopped, with every process it started"
    )]
    CommandTimeout { command: String, seconds: f64 },
    #[error("[smtp] password_command `{command}` printed more than {MAX_SECRET} bytes: that is not a password")]
    CommandOutputTooLong { command: String },
    #[error("[smtp] password_command `{command}`: {source}")]
    CommandIo { command: String, source: std::io::Error },
    #[error("[smtp] the password from {source_name} is empty or only white space")]
    EmptySecret { source_name: String },
    #[error("[smtp] ca_file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("[smtp] ca_file: {0}")]
    CaFileRead(crate::input::InputError),
}
