//! Running `mailshot` under strace, to watch its syscalls (fsync of a folder) or to fail one of them
//! (ENOSPC, EBUSY) where no real fault can be had on demand. CI installs strace.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Whether strace is there; without it a test is skipped, except under `MAILSHOT_REQUIRE_LAB=1` (CI).
pub fn available(test: &str) -> bool {
    if Command::new("strace").arg("-V").output().is_ok() {
        return true;
    }
    assert_ne!(std::env::var("MAILSHOT_REQUIRE_LAB").as_deref(), Ok("1"), "{test}: strace is needed (CI installs it)");
    eprintln!("SKIPPED {test}: strace is not installed");
    false
}

/// `command` (program, arguments, folder and environment kept) under `strace -f` with `options`.
pub fn run<I, S>(command: &Command, options: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut strace = Command::new("strace");
    strace.arg("-f").args(options).arg(command.get_program()).args(command.get_args()).env_clear();
    if let Some(dir) = command.get_current_dir() {
        strace.current_dir(dir);
    }
    strace.envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))));
    strace.output().unwrap()
}
