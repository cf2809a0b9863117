//! `mailshot probe JOB.toml`: connect exactly as the job would and show what happened, like a short swaks
//! session: banner, TLS version, cipher and certificate subject, capabilities, the AUTH result; with `--rcpt`
//! also MAIL FROM + RCPT TO, then RSET (nothing is sent); then QUIT. `-v` prints the redacted transcript.
//!
//! What the handshake learned (banner, TLS, certificate, capabilities) is collected as it is learned and
//! printed whether or not a later step fails: a refused login is easier to understand next to the banner
//! and the mechanisms the server offered.
//!
//! Exit codes: 0 when everything asked for worked, 2 for a bad job file or flags, 3 when the server could
//! not be reached, TLS or AUTH failed, or the server refused the sender or recipient.

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::cli::ProbeArgs;
use crate::config::smtp::SmtpConfigError;
use crate::config::{ConfigError, SmtpView};
use crate::exit_codes;
use crate::output::{err_line, out_line};
use crate::smtp::{self, ClientConfig, ConnectError, Direction, Envelope, EnvelopeError, ServerInfo, SessionError};
use crate::smtp::{Capabilities, Learned, Reply, Stage, TlsInfo, Trial};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Job(#[from] ConfigError),
    #[error("{path}: {source}", path = .path.display())]
    Smtp { path: std::path::PathBuf, source: SmtpConfigError },
    #[error("--rcpt needs a sender: pass --from, or set `from` in the job's [message] section")]
    NoSender,
    #[error("invalid address: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{host}:{port}: {source}")]
    Connect { host: String, port: u16, source: ConnectError },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("the server refused {stage}: {reply}")]
    Rejected { stage: Stage, reply: Reply },
}

impl ProbeError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ProbeError::Job(_) | ProbeError::Smtp { .. } | ProbeError::NoSender | ProbeError::Envelope(_) => {
                exit_codes::INPUT_ERROR
            }
            _ => exit_codes::ABORTED,
        }
    }
}

pub fn run(args: &ProbeArgs) -> ExitCode {
    match probe(args) {
        Ok(()) => ExitCode::from(exit_codes::SUCCESS),
        Err(err) => {
            err_line(&format!("mailshot probe: {err}"));
            ExitCode::from(err.exit_code())
        }
    }
}

fn probe(args: &ProbeArgs) -> Result<(), ProbeError> {
    let job = SmtpView::load(&args.job)?;
    let base = args.job.parent().unwrap_or(Path::new(""));
    let mut config =
        job.smtp.client_config(base).map_err(|source| ProbeError::Smtp { path: args.job.clone(), source })?;
    if let Some(warning) = job.smtp.password_file_warning(base) {
        err_line(&format!("warning: {}: {warning}", args.job.display()));
    }
    let envelope = match &args.rcpt {
        Some(rcpt) => Some(Envelope::new(sender(args, &job)?, [rcpt.as_str()])?),
        None => None,
    };
    if args.verbosity.verbose > 0 {
        config.transcript = Some(Arc::new(|direction, line| match direction {
            Direction::Client => out_line(&format!(" -> {line}")),
            Direction::Server => out_line(&format!("<-  {line}")),
        }));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ProbeError::Runtime)?;
    runtime.block_on(conversation(&config, envelope.as_ref()))
}

/// `--from`, else the address in the job's raw `[message] from` (`Name <addr>` or a bare address).
fn sender(args: &ProbeArgs, job: &SmtpView) -> Result<String, ProbeError> {
    if let Some(from) = &args.from {
        return Ok(from.clone());
    }
    let raw = job.message.as_ref().and_then(|m| m.from.as_deref()).ok_or(ProbeError::NoSender)?;
    // The job's own strict parser; an invalid `from` is reported by `check`, so fall back to the raw text.
    Ok(crate::recipients::Mailbox::parse(raw).map_or_else(|_| raw.trim().to_owned(), |m| m.envelope()))
}

async fn conversation(config: &ClientConfig, envelope: Option<&Envelope>) -> Result<(), ProbeError> {
    out_line(&format!("{:<14}{}:{} ({})", "Server:", config.host, config.port, security(config.security)));
    let facts = Arc::new(Mutex::new(Facts::default()));
    let mut config = config.clone();
    let sink = facts.clone();
    config.learned = Some(Arc::new(move |fact| sink.lock().unwrap_or_else(|p| p.into_inner()).record(fact)));
    let connected = smtp::connect(&config).await;
    for line in facts.lock().unwrap_or_else(|p| p.into_inner()).lines(config.security) {
        out_line(&line);
    }
    let mut session =
        connected.map_err(|source| ProbeError::Connect { host: config.host.clone(), port: config.port, source })?;
    out_line(&auth_line(session.info(), &config));
    out_line(&sending_line(&session, &config));
    let trial = match envelope {
        Some(envelope) => Some(session.try_envelope(envelope).await?),
        None => None,
    };
    if let (Some(trial), Some(envelope)) = (&trial, envelope) {
        for line in trial_lines(envelope, trial) {
            out_line(&line);
        }
    }
    match session.quit().await {
        Ok(reply) => out_line(&format!("{:<14}{reply}", "QUIT:")),
        Err(err) => out_line(&format!("{:<14}{err}", "QUIT:")),
    }
    match trial {
        Some(Trial::Rejected { stage, reply }) => Err(ProbeError::Rejected { stage, reply }),
        _ => Ok(()),
    }
}

/// What the handshake learned so far; after STARTTLS the capabilities offered over TLS replace the others.
#[derive(Debug, Default)]
struct Facts {
    greeting: Option<Reply>,
    tls: Option<TlsInfo>,
    capabilities: Option<Capabilities>,
}

impl Facts {
    fn record(&mut self, fact: Learned<'_>) {
        match fact {
            Learned::Greeting(reply) => self.greeting = Some(reply.clone()),
            Learned::Tls(tls) => self.tls = Some(tls.clone()),
            Learned::Capabilities(capabilities) => self.capabilities = Some(capabilities.clone()),
        }
    }

    /// The facts as labelled lines; nothing when not even a greeting came. Without TLS facts, a job that
    /// asks for TLS failed to get it: that is not a plaintext connection by choice.
    fn lines(&self, security: smtp::Security) -> Vec<String> {
        let Some(greeting) = &self.greeting else { return Vec::new() };
        let mut lines = vec![row("Banner:", greeting)];
        match &self.tls {
            Some(tls) => {
                lines.push(row("TLS:", &format!("{}, {}", tls.version, tls.cipher)));
                lines.push(row("Certificate:", &tls.subject.as_deref().unwrap_or("(no subject)")));
            }
            None if security == smtp::Security::None => lines.push(row("TLS:", &"none (plaintext)")),
            None => lines.push(row("TLS:", &"not established (the handshake did not finish; see below)")),
        }
        if let Some(capabilities) = &self.capabilities {
            let caps = &capabilities.lines;
            lines.push(row("Capabilities:", &caps.first().map_or("none", String::as_str)));
            lines.extend(caps.iter().skip(1).map(|cap| row("", cap)));
        }
        lines
    }
}

fn row(label: &str, value: &dyn std::fmt::Display) -> String {
    format!("{label:<14}{value}")
}

fn security(security: smtp::Security) -> &'static str {
    match security {
        smtp::Security::ImplicitTls => "implicit TLS",
        smtp::Security::StartTls => "STARTTLS",
        smtp::Security::None => "no TLS",
    }
}

/// The AUTH result of a session that was opened.
fn auth_line(info: &ServerInfo, config: &ClientConfig) -> String {
    let auth = match (&info.auth, &config.credentials) {
        (Some(outcome), Some(creds)) => {
            format!("{} as {}: {}", outcome.mechanism.name(), creds.username, outcome.reply)
        }
        _ => "not attempted (no username in [smtp])".to_owned(),
    };
    row("AUTH:", &auth)
}

/// How `send` would write messages on this session: what decides its pace over a slow link.
fn sending_line<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    session: &smtp::Session<S>,
    config: &ClientConfig,
) -> String {
    let caps = session.capabilities();
    let how = match session.window() {
        n if n > 1 => format!("BDAT, up to {n} messages in flight per session (CHUNKING and PIPELINING offered)"),
        _ if caps.chunking && session.pipelining() == smtp::Pipelining::Full => format!(
            "DATA, one message per round trip (window = {}; the server offers CHUNKING: `window = 8` in [smtp] \
             keeps 8 in flight)",
            config.window
        ),
        _ if session.is_pipelining() => "DATA, one message per round trip (PIPELINING)".to_owned(),
        _ => "DATA, lock-step: a round trip per command (no PIPELINING, or pipelining = \"off\")".to_owned(),
    };
    row("Sending:", &how)
}

fn trial_lines(envelope: &Envelope, trial: &Trial) -> Vec<String> {
    let row = |label: &str, address: &str, reply: &Reply| format!("{label:<14}<{address}> → {reply}");
    match trial {
        Trial::Accepted { mail, rcpt } => {
            let mut lines = vec![row("MAIL FROM:", envelope.from(), mail)];
            lines.extend(envelope.to().iter().zip(rcpt).map(|(to, reply)| row("RCPT TO:", to, reply)));
            lines.push(format!("{:<14}nothing was sent", "RSET:"));
            lines
        }
        Trial::Rejected { stage: Stage::Mail, reply } => vec![row("MAIL FROM:", envelope.from(), reply)],
        Trial::Rejected { stage, reply } => vec![format!("{:<14}{reply}", format!("{stage}:"))],
    }
}
