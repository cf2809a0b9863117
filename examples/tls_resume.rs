//! Bench tooling: what a shared TLS client configuration saves per reconnect. Opens COUNT sessions (TCP,
//! TLS, EHLO, AUTH, QUIT) to the lab's Postfix, each with a fresh `Connector` (a full handshake every
//! time, as before one connector per run) and then all from one `Connector` (resumed where the server
//! allows), and prints the median setup time of each and how many sessions resumed.
//!
//! `eval "$(scripts/smtp-lab env)"; cargo run --release --example tls_resume -- PORT tls|starttls COUNT`

use std::time::{Duration, Instant};

use mailshot::smtp::{ClientConfig, Connector, Credentials, Security};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, security, count] = args.as_slice() else {
        eprintln!("usage: tls_resume PORT tls|starttls COUNT   (with the lab's MAILSHOT_LAB_* variables set)");
        std::process::exit(2);
    };
    let security = if security == "tls" { Security::ImplicitTls } else { Security::StartTls };
    let mut config = ClientConfig::new("localhost", port.parse()?);
    config.security = security;
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    config.extra_roots = CertificateDer::pem_file_iter(env("MAILSHOT_LAB_CA")?)?.collect::<Result<_, _>>()?;
    config.credentials = Some(Credentials::new(env("MAILSHOT_LAB_USER")?, env("MAILSHOT_LAB_PASSWORD")?));
    let count: usize = count.parse()?;

    let mut fresh = Vec::new();
    for _ in 0..count {
        fresh.push(session(&Connector::new(config.clone())?).await?);
    }
    let shared = Connector::new(config)?;
    let mut reused = Vec::new();
    for _ in 0..count {
        reused.push(session(&shared).await?);
    }
    report("a new connector per session", &fresh);
    report("one connector for the run", &reused);
    Ok(())
}

/// One session's setup time (connect to AUTH done) and whether TLS was resumed.
async fn session(connector: &Connector) -> Result<(Duration, bool), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let session = connector.connect().await?;
    let took = start.elapsed();
    let resumed = session.info().tls.as_ref().is_some_and(|t| t.resumed);
    session.quit().await?;
    Ok((took, resumed))
}

fn report(what: &str, runs: &[(Duration, bool)]) {
    let mut times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    times.sort();
    let resumed = runs.iter().filter(|r| r.1).count();
    let (median, resumed_median) = (times[times.len() / 2], median_of(runs, true));
    println!(
        "{what:<30} median setup {:>7.2} ms; {resumed}/{} resumed (median of resumed {:.2} ms, of full {:.2} ms)",
        ms(median),
        runs.len(),
        resumed_median.map_or(f64::NAN, ms),
        median_of(runs, false).map_or(f64::NAN, ms),
    );
}

fn median_of(runs: &[(Duration, bool)], resumed: bool) -> Option<Duration> {
    let mut times: Vec<Duration> = runs.iter().filter(|r| r.1 == resumed).map(|r| r.0).collect();
    times.sort();
    times.get(times.len() / 2).copied()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
