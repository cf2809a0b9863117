//! Wiring: turn parsed flags into work and the work's outcome into an exit code.

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::exit_codes;

pub fn run(cli: Cli) -> ExitCode {
    let name = match &cli.command {
        Command::Check(_) => "check",
        Command::Preview(_) => "preview",
        Command::Send(_) => "send",
        Command::Status(_) => "status",
        Command::Probe(args) => return crate::probe::run(args),
        Command::Init(_) => "init",
    };
    not_available(name)
}

/// A subcommand that is not built yet says so and fails; it never pretends to succeed.
fn not_available(name: &str) -> ExitCode {
    eprintln!("mailshot: `{name}` is not available yet in this version");
    ExitCode::from(exit_codes::NOT_AVAILABLE)
}
