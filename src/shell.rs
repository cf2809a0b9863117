//! Shell integration: completion scripts (`mailshot completions bash`) and the manual page (`mailshot man`),
//! both generated from the same flag definitions as `--help`, so they cannot drift from the binary.
//!
//! Each is rendered into memory first and written with one call: clap's generators panic when their writer
//! fails, and a closed pipe (`mailshot man | head`) must not turn into a panic.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mailshot", &mut script);
    script
}

/// The top-level manual page, `mailshot(1)`, as roff; its SUBCOMMANDS section lists every command.
pub fn man_page() -> io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    Ok(page)
}

/// Writes `mailshot.1` and one page per command (`mailshot-send.1`, …) into `dir`, creating it; returns
/// the files in it that end in `.1`, sorted.
pub fn write_man_pages(dir: &Path) -> io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("mailshot") && name.ends_with(".1"))
        .collect();
    names.sort();
    Ok(names)
}

/// `bytes` on stdout; whether they all got there (a closed pipe is not a panic).
pub fn print(bytes: &[u8]) -> bool {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).is_ok()
}
