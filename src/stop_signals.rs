//! The signals that ask mailshot to stop — Ctrl-C (SIGINT), SIGTERM (`timeout`, systemd, Kubernetes) and
//! SIGHUP (a closed terminal) — and the exit code each asks for (128 + its number: 130, 143, 129). One set
//! for `send` (`job::signals`: finish what is in flight) and `preview` (`preview::interrupt`: put the
//! earlier preview back), so both hear the same signals and say the same names.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::exit_codes;

/// The handlers; from `install` on, none of these signals meets its default action (ending the process).
pub struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl StopSignals {
    /// Must be called inside a tokio runtime (one with I/O enabled).
    pub fn install() -> std::io::Result<StopSignals> {
        let int = signal(SignalKind::interrupt())?;
        Ok(StopSignals { int, term: signal(SignalKind::terminate())?, hup: signal(SignalKind::hangup())? })
    }

    /// The exit code and name of the next signal to come.
    pub async fn next(&mut self) -> (u8, &'static str) {
        let code = tokio::select! {
            _ = self.int.recv() => exit_codes::INTERRUPTED,
            _ = self.term.recv() => exit_codes::TERMINATED,
            _ = self.hup.recv() => exit_codes::HANGUP,
        };
        (code, name(code))
    }
}

/// How the messages name the signal behind an exit code ("interrupted" for Ctrl-C).
pub fn name(code: u8) -> &'static str {
    match code {
        exit_codes::TERMINATED => "SIGTERM",
        exit_codes::HANGUP => "SIGHUP",
        _ => "interrupted",
    }
}
