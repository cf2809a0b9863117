//! Reading a secret from where `[smtp]` names it: an environment variable, a file, or a command run with a
//! deadline, its stderr discarded and its whole process group killed if it overstays.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{DEFAULT_COMMAND_TIMEOUT, MAX_SECRET, PasswordSource, SmtpConfigError};
use crate::smtp;

impl PasswordSource {
    /// Reads the secret: the variable's value, the file's or the command's output without its final newline;
    /// a command gets [`DEFAULT_COMMAND_TIMEOUT`].
    pub fn load(&self, base_dir: &Path) -> Result<smtp::Secret, SmtpConfigError> {
        self.load_within(base_dir, DEFAULT_COMMAND_TIMEOUT)
    }

    /// As [`PasswordSource::load`], a command stopped after `timeout`. An empty or white-space secret is an
    /// error from any source: sent as it is, it would fail at AUTH with a less helpful reply.
    pub fn load_within(&self, base_dir: &Path, timeout: Duration) -> Result<smtp::Secret, SmtpConfigError> {
        let (value, source_name) = match self {
            PasswordSource::Env(name) => {
                let value = std::env::var(name).map_err(|_| SmtpConfigError::EnvMissing { name: name.clone() })?;
                (value, format!("password_env {name}"))
            }
            PasswordSource::File(path) => {
                let path = base_dir.join(path);
                let text = crate::input::read_to_string(&path, SECRET_FILE_BYTES, "a password file")
                    .map_err(SmtpConfigError::FileRead)?;
                (text, format!("password_file {}", path.display()))
            }
            PasswordSource::Command(command) => {
                (run_password_command(command, base_dir, timeout)?, format!("password_command `{command}`"))
            }
        };
        let value = strip_newline(value);
        if value.trim().is_empty() {
            return Err(SmtpConfigError::EmptySecret { source_name });
        }
        Ok(smtp::Secret::new(value))
    }
}

/// `sh -c COMMAND` in the job folder, in a process group of its own; its stdout is the secret. Its stderr
/// goes nowhere: a failing password manager may print the secret there. After `timeout` (or more than
/// [`MAX_SECRET`] bytes of output) the whole group is killed, so that neither the command nor anything it
/// started is left behind, and `send` does not hang on it.
fn run_password_command(command: &str, base_dir: &Path, timeout: Duration) -> Result<String, SmtpConfigError> {
    let dir = if base_dir.as_os_str().is_empty() { Path::new(".") } else { base_dir };
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| SmtpConfigError::CommandSpawn { command: command.to_owned(), source })?;
    let ended = wait_for_output(&mut child, Instant::now() + timeout);
    if !matches!(ended, Ok((status, _)) if status.success()) {
        // The group's leader is `sh` (process_group(0)); a group already gone is fine.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::KILL,
        );
        let _ = child.wait();
    }
    let command = command.to_owned();
    match ended {
        Ok((status, out)) if status.success() => Ok(String::from_utf8_lossy(&out).into_owned()),
        Ok((status, _)) => Err(SmtpConfigError::CommandFailed { command, status }),
        Err(Ended::TimedOut) => Err(SmtpConfigError::CommandTimeout { command, seconds: timeout.as_secs_f64() }),
        Err(Ended::TooLong) => Err(SmtpConfigError::CommandOutputTooLong { command }),
        Err(Ended::Io(source)) => Err(SmtpConfigError::CommandIo { command, source }),
    }
}

/// Why a password command gave no usable output.
enum Ended {
    TimedOut,
    TooLong,
    Io(std::io::Error),
}

/// The command's stdout (read on a thread of its own, so the deadline holds) and its exit status.
fn wait_for_output(child: &mut Child, deadline: Instant) -> Result<(ExitStatus, Vec<u8>), Ended> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let read = stdout.take(MAX_SECRET as u64 + 1).read_to_end(&mut out);
        let _ = tx.send(read.map(|_| out));
    });
    let out = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(out)) if out.len() > MAX_SECRET => return Err(Ended::TooLong),
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(Ended::Io(e)),
        Err(_) => return Err(Ended::TimedOut),
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok((status, out)),
            Ok(None) if Instant::now() >= deadline => return Err(Ended::TimedOut),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(Ended::Io(e)),
        }
    }
}

fn strip_newline(mut value: String) -> String {
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    value
}

/// The largest `password_file` read (a password or an OAuth token is far shorter).
const SECRET_FILE_BYTES: u64 = 64 << 10;
