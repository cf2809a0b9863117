//! The `mailshot` binary: parse flags, run, map the outcome to an exit code. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mailshot::cli::Cli::parse();
    mailshot::app::run(cli)
}
