//! A pseudo-terminal for the binary's stdout and stderr, and the screen a terminal of that size would show
//! (the vt100 crate), so that what `send` draws on a terminal can be checked as a person would see it.

use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

/// What a command wrote to its terminal, in the pieces the terminal received them.
pub struct TerminalRun {
    pub code: i32,
    pub chunks: Vec<Vec<u8>>,
    pub rows: u16,
    pub cols: u16,
}

/// Runs `command` with stdout and stderr on a new `cols` × `rows` terminal (stdin as the command has it).
pub fn run_on_terminal(mut command: Command, rows: u16, cols: u16) -> TerminalRun {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    tcsetwinsize(&master, Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap().into_string().unwrap();
    let terminal = std::fs::OpenOptions::new().read(true).write(true).open(name).unwrap();
    command.stdout(Stdio::from(terminal.try_clone().unwrap())).stderr(Stdio::from(terminal));
    let mut child = command.spawn().unwrap();
    // The parent's copies of the terminal's end go with the command: reading ends when the child's do.
    drop(command);
    let mut master = File::from(master);
    let mut chunks = Vec::new();
    let mut buffer = vec![0; 1 << 16];
    // Linux answers EIO once no process holds the terminal's end any more.
    while let Ok(n @ 1..) = master.read(&mut buffer) {
        chunks.push(buffer[..n].to_vec());
    }
    let code = child.wait().unwrap().code().expect("an exit code");
    TerminalRun { code, chunks, rows, cols }
}

impl TerminalRun {
    /// The screen after each piece of output, as text rows (trailing blanks trimmed).
    pub fn screens(&self) -> Vec<Vec<String>> {
        let size = |n| std::num::NonZero::new(n).expect("a terminal of some size");
        let mut parser = vt100::Parser::new(size(self.rows), size(self.cols), 0);
        self.chunks
            .iter()
            .map(|chunk| {
                parser.process(chunk);
                parser.screen().rows(0, self.cols).map(|row| row.trim_end().to_owned()).collect()
            })
            .collect()
    }

    /// Everything written, as text with the terminal's control sequences in it.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.chunks.concat()).into_owned()
    }
}
