//! Command-line flags (first stage of configuration): what the person typed, not yet checked against the job.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

#[derive(Debug, Parser)]
#[command(name = "mailshot", version, about = "Batch mail-merge: CSV + Tera templates, sent over reused SMTP sessions")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the whole job without touching the network and report every problem at once.
    Check(CheckArgs),
    /// Render every message into a review page (index.html) and messages.mbox; --eml adds one .eml each.
    Preview(PreviewArgs),
    /// Send the job's messages through the configured SMTP server.
    Send(SendArgs),
    /// Show what the journal knows about a job: counts by state, last run, budget left (a sharded
    /// campaign's journals merged, with a line per shard).
    Status(StatusArgs),
    /// Cut a damaged journal at its first damaged line, keep the rest beside it, and mark every recipient
    /// named there as uncertain (so that nobody is sent twice).
    Repair(RepairArgs),
    /// Read bounce reports (DSNs) from a Maildir, an mbox file or an IMAP folder, record them in the journal,
    /// and put hard bounces on a suppression list for `[recipients] exclude`.
    Bounces(BouncesArgs),
    /// Connect as the job would and show the server's banner, TLS, capabilities and the AUTH result.
    Probe(ProbeArgs),
    /// Create a new job folder from the bundled starter templates.
    Init(InitArgs),
    /// Print a completion script for a shell (e.g. `mailshot completions bash > ~/.local/share/bash-completion/completions/mailshot`).
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to stdout (`mailshot man | man -l -`), or write one page per command into a folder.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The job file (job.toml), or the folder that holds it.
    #[arg(value_parser = job_file)]
    pub job: PathBuf,
    /// Also print how many recipients each of N shards would send (`send --shard I/N`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::job::shard::MAX_SHARDS)))]
    pub shards: Option<u32>,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The job file (job.toml), or the folder that holds it.
    #[arg(value_parser = job_file)]
    pub job: PathBuf,
    /// Where to write index.html, messages.mbox and the rest (default: <job folder>/preview).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Render at most N messages.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Also write each message as its own .eml file (the exact bytes `send` would submit).
    #[arg(long, conflicts_with = "row")]
    pub eml: bool,
    /// Print only the message of this CSV row (its line number) to stdout.
    #[arg(long, conflicts_with = "open")]
    pub row: Option<u64>,
    /// Open index.html in the browser (where there is one; otherwise print its path).
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The job file (job.toml), or the folder that holds it.
    #[arg(value_parser = job_file)]
    pub job: PathBuf,
    /// Render everything as `preview` does, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send at most N messages.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Number of SMTP connections (overrides `[smtp] connections`).
    #[arg(long)]
    pub connections: Option<u32>,
    /// Messages per second (overrides `[rate]`).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Re-send recipients whose outcome is uncertain (maybe delivered) after a crash.
    #[arg(long)]
    pub resend_uncertain: bool,
    /// Resume even though the templates or job settings changed since the last run.
    #[arg(long)]
    pub accept_changes: bool,
    /// Start a new campaign with a new journal (the old one is kept, renamed).
    #[arg(long)]
    pub fresh: bool,
    /// Send only shard I of N: the recipients whose key hashes to I, with this shard's own journal, lock
    /// and reports (also MAILSHOT_SHARD=I/N).
    ///
    /// The shard of a recipient is the first 8 bytes of SHA-256 over its key (the `key` column, or the
    /// lower-case address), big-endian, modulo N: rows added later move nobody. Every shard still reads the
    /// whole CSV (duplicates are found across it). `[rate]` and `max_per_day` are the campaign's: shard I gets
    /// its share, equal by default or by `[rate] shard_share = [w0, w1, …]` (one relative weight per shard);
    /// the daily budget's parts are whole numbers that add up to it (each gets the floor of its share, and
    /// the remainder goes one each to the largest fractions, ties to the lower index: with equal shares,
    /// shard I gets one more when I < max_per_day mod N). `--rate` is this process's own rate, not split.
    /// Running the campaign with another N, or unsharded, is refused unless --fresh.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<String>,
    /// Send shard $JOB_COMPLETION_INDEX of N (the pod index of a Kubernetes Indexed Job).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job file (job.toml), or the folder that holds it.
    #[arg(value_parser = job_file)]
    pub job: PathBuf,
    /// Print the failed recipients as CSV.
    #[arg(long)]
    pub failed: bool,
    /// Print the uncertain recipients as CSV.
    #[arg(long)]
    pub uncertain: bool,
    /// Print the deferred recipients (refused for now; the next run retries them) as CSV.
    #[arg(long)]
    pub deferred: bool,
    /// Print the recipients that bounced (recorded by `mailshot bounces`) as CSV.
    #[arg(long, conflicts_with_all = ["failed", "uncertain", "deferred", "json"])]
    pub bounced: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BouncesArgs {
    /// The job file (job.toml), or the folder that holds it.
    #[arg(value_parser = job_file)]
    pub job: PathBuf,
    /// Where the bounces are: a Maildir folder (with cur/ and new/), an mbox file, or an IMAP folder
    /// (imaps://user@host[:port]/INBOX; TLS verified as for SMTP, with [smtp] ca_file).
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    /// For IMAP: the environment variable holding the password (default: [smtp]'s, for its username).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["password_file", "password_command"])]
    pub password_env: Option<String>,
    /// For IMAP: a file holding the password (relative to the job's folder).
    #[arg(long, value_name = "FILE", conflicts_with = "password_command")]
    pub password_file: Option<PathBuf>,
    /// For IMAP: a command that prints the password (run with sh -c in the job's folder).
    #[arg(long, value_name = "CMD")]
    pub password_command: Option<String>,
    /// The suppression list hard bounces are appended to (default: suppressed.csv beside the job).
    #[arg(long, value_name = "FILE")]
    pub suppress: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The job file (job.toml), or the folder that holds it.
    #[arg(value_parser = job_file)]
    pub job: PathBuf,
    /// Take back into the journal the statuses of recipients that the reports list and it lost.
    #[arg(long)]
    pub from_reports: bool,
    /// Repair shard I of N's journal (`job.shard-I-of-N.journal.jsonl`) and use its reports.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The job file (job.toml), or the folder that holds it.
    #[arg(value_parser = job_file)]
    pub job: PathBuf,
    /// Also try MAIL FROM + RCPT TO for this address, then RSET (nothing is sent).
    #[arg(long)]
    pub rcpt: Option<String>,
    /// The sender for --rcpt (default: the job's `[message] from`).
    #[arg(long, requires = "rcpt")]
    pub from: Option<String>,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create.
    pub dir: PathBuf,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct Verbosity {
    /// More output (-v: each recipient / the redacted transcript).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Print only the summary.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write mailshot.1 and a page per command (mailshot-send.1, …) into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A JOB argument: a folder stands for the `job.toml` inside it, so `mailshot send news/` works as
/// `mailshot send news/job.toml` does. Anything else is taken as given (the job loader names its problems).
fn job_file(arg: &str) -> Result<PathBuf, String> {
    let path = Path::new(arg);
    if !path.is_dir() {
        return Ok(path.to_owned());
    }
    let job = path.join("job.toml");
    match job.exists() {
        true => Ok(job),
        false => Err(format!("{arg}: a folder without a job.toml (pass the job file, or the folder that holds it)")),
    }
}
