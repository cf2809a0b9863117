//! The exit codes mailshot documents (README, "Exit codes"); scripts and cron jobs rely on them.

/// Everything asked for was done: every recipient delivered, or a check/preview found nothing wrong.
pub const SUCCESS: u8 = 0;
/// The run finished, but some recipients failed, were deferred or are uncertain, or a delivered row's copies
/// (Cc/Bcc) were rejected, in this run or an earlier one.
pub const PARTIAL: u8 = 1;
/// Bad input or configuration, found before anything was sent.
pub const INPUT_ERROR: u8 = 2;
/// The job stopped: authentication, a refused sender, TLS, or the server was unreachable.
pub const ABORTED: u8 = 3;
/// An internal error, a bug in mailshot (EX_SOFTWARE): a worker or another task of the run panicked. The run
/// stopped as for a fatal error and still wrote its report and the journal's run-end record.
pub const SOFTWARE: u8 = 70;
/// A temporary condition (the daily sending budget is used up, another run holds the lock); run again later.
pub const TEMPFAIL: u8 = 75;
/// Interrupted by Ctrl-C (SIGINT): 128 + 2.
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (`timeout`, systemd, Kubernetes): 128 + 15.
pub const TERMINATED: u8 = 143;
/// Stopped by SIGHUP (the terminal closed): 128 + 1.
pub const HANGUP: u8 = 129;
