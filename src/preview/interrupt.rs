//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during a preview: without a handler the default action killed the
//! process mid-write, leaving a cut `index.html` that opens as an empty preview and the earlier preview
//! renamed aside (`.preview.old-PID`) for good. With one, rendering stops at the next row, the half-written
//! preview goes, the earlier one comes back (as after a failed write), and the exit code is 128 + the
//! signal's number, as for `send`. A second signal quits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::stop_signals::StopSignals;

/// The first signal's exit code (130, 143, 129), 0 until one came.
pub struct Interrupt(Arc<AtomicU8>);

impl Interrupt {
    /// Installs the handlers before returning (so no signal meets the default action after), and a thread
    /// that waits for them. tokio's signal support is what `send` uses; a one-thread runtime is all it needs.
    pub fn watch() -> std::io::Result<Interrupt> {
        let received = Arc::new(AtomicU8::new(0));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        let mut signals = {
            let _inside = runtime.enter();
            StopSignals::install()?
        };
        let first = received.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                let (code, _) = signals.next().await;
                first.store(code, Ordering::SeqCst);
                signals.next().await;
                std::process::exit(i32::from(code));
            })
        });
        Ok(Interrupt(received))
    }

    /// The exit code the first signal asks for, if one came.
    pub fn received(&self) -> Option<u8> {
        Some(self.0.load(Ordering::SeqCst)).filter(|&code| code != 0)
    }
}
