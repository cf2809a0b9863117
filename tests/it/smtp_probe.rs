//! `mailshot probe` as a user runs it (tier 4): a fresh folder per test, an environment with nothing
//! inherited but PATH, and a scripted server standing in for the provider.

use std::path::{Path, PathBuf};
use std::process::Output;

use mailshot::smtp::testing::{ScriptServer, Step, ehlo_reply, expect, greet, send};

use crate::smtp_pki::pki;

/// Runs `mailshot ARGS` in `dir` with only PATH and `env` set.
pub async fn mailshot(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailshot"));
    cmd.args(args).current_dir(dir).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.envs(env.iter().copied());
    cmd.output().await.unwrap()
}

/// Writes `job.toml` with `smtp` as its `[smtp]` body (and the test CA as `ca.pem`) into a fresh folder.
pub fn job(smtp: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &pki().ca_pem).unwrap();
    let path = dir.path().join("job.toml");
    std::fs::write(&path, format!("[smtp]\n{smtp}\n[message]\nfrom = \"News <news@example.test>\"\n")).unwrap();
    (dir, path)
}

/// `EHLO` with the default name from our end 127.0.0.1, worked out independently of the code under test.
fn default_ehlo() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = if host.trim().contains('.') { host.trim().to_owned() } else { "[127.0.0.1]".to_owned() };
    format!("EHLO {name}")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn probe_with_rcpt_over_plaintext_tries_the_envelope_and_sends_nothing() {
    // No `ehlo_name`: the default is the machine's name if fully qualified, else our address literal.
    let mut script = vec![send("220 test.example ESMTP scripted\r\n"), expect(default_ehlo())];
    script.push(Step::Send(ehlo_reply(&["PIPELINING", "SIZE 1000"])));
    script.extend([
        expect("MAIL FROM:<news@example.test>"),
        send("250 2.1.0 Ok\r\n"),
        expect("RCPT TO:<ann@example.test>"),
        send("250 2.1.5 Ok\r\n"),
        expect("RSET"),
        send("250 2.0.0 Ok\r\n"),
        expect("QUIT"),
        send("221 2.0.0 Bye\r\n"),
    ]);
    let server = ScriptServer::start(script).await;
    let (dir, _) = job(&format!("server = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"", server.port()));
    let out = mailshot(dir.path(), &["probe", "job.toml", "--rcpt", "ann@example.test"], &[]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for want in
        ["Banner:       220 test.example", "TLS:          none", "SIZE 1000", "RCPT TO:      <ann@example.test> → 250"]
    {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}");
    }
    assert!(!server.finish().await.ok().received.contains("DATA"));
}

#[tokio::test]
async fn probe_over_implicit_tls_shows_the_certificate_and_a_redacted_transcript() {
    let mut script = greet(&["AUTH PLAIN LOGIN"]);
    script.extend([
        Step::ExpectPrefix("AUTH PLAIN ".into()),
        send("235 2.7.0 Authentication successful\r\n"),
        expect("QUIT"),
        send("221 2.0.0 Bye\r\n"),
    ]);
    let server = ScriptServer::start_tls(pki().localhost.server_config(), script).await;
    let smtp = format!(
        "server = \"localhost\"\nport = {}\nehlo_name = \"localhost\"\nusername = \"merge@example.test\"\npassword_env = \"PROBE_PW\"\nca_file = \"ca.pem\"",
        server.port()
    );
    let (dir, _) = job(&smtp);
    let out = mailshot(dir.path(), &["probe", "job.toml", "-v"], &[("PROBE_PW", "Tr0ub4dor")]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for want in
        ["Certificate:  CN=localhost", "AUTH:         PLAIN as merge@example.test: 235", " -> AUTH PLAIN <redacted>"]
    {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}");
    }
    // Neither the password nor the base64 of the PLAIN payload ("\0merge@example.test\0Tr0ub4dor") appears.
    assert!(!stdout.contains("Tr0ub4dor") && !stdout.contains("AG1lcmdl"), "{stdout}");
    server.finish().await.ok();
}

#[tokio::test]
async fn a_refused_login_says_so_and_exits_3() {
    let mut script = greet(&["AUTH PLAIN"]);
    script.extend([Step::ExpectPrefix("AUTH PLAIN ".into()), send("535 5.7.8 Error: authentication failed\r\n")]);
    script.push(Step::Drain);
    let server = ScriptServer::start_tls(pki().localhost.server_config(), script).await;
    let smtp = format!(
        "server = \"localhost\"\nport = {}\nehlo_name = \"localhost\"\nusername = \"u\"\npassword_command = \"echo wrong\"\nca_file = \"ca.pem\"",
        server.port()
    );
    let (dir, _) = job(&smtp);
    let out = mailshot(dir.path(), &["probe", "job.toml"], &[]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("username or password not accepted") && stderr.contains("535 5.7.8"), "{stderr}");
    // What the handshake learned before the refusal is still shown (issue 13).
    for want in ["Banner:       220 test.example ESMTP scripted", "TLS:          TLSv1.", "Certificate:  CN=localhost"]
    {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("Capabilities:") || l.trim() == "AUTH PLAIN"), "{stdout}");
    assert!(!stdout.contains("AUTH:  "), "no AUTH result line for a refused login:\n{stdout}");
    server.finish().await.ok();
}

/// STARTTLS required but not offered: the banner and the plaintext capabilities that lack it are shown.
#[tokio::test]
async fn starttls_not_offered_still_shows_the_banner_and_what_was_offered() {
    let mut script = greet(&["PIPELINING", "SIZE 1000"]);
    script.push(Step::Drain);
    let server = ScriptServer::start(script).await;
    let smtp =
        format!("server = \"localhost\"\nport = {}\nsecurity = \"starttls\"\nehlo_name = \"localhost\"", server.port());
    let (dir, _) = job(&smtp);
    let out = mailshot(dir.path(), &["probe", "job.toml"], &[]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("STARTTLS is required but the server does not offer it"), "{stderr}");
    // TLS was asked for and not had: not "none (plaintext)", as if the job had chosen it.
    for want in ["Banner:       220 test.example", "TLS:          not established", "SIZE 1000"] {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}");
    }
    assert!(!stdout.contains("plaintext"), "{stdout}");
    server.finish().await.ok();
}

#[tokio::test]
async fn an_unreachable_server_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (dir, _) = job(&format!("server = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\""));
    let out = mailshot(dir.path(), &["probe", "job.toml"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot connect"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn bad_input_exits_2_before_connecting() {
    let cases = [
        ("port = 1", "missing field `server`"),
        ("server = \"localhost\"\nusername = \"u\"\npassword_env = \"UNSET_PROBE_PW\"", "UNSET_PROBE_PW is not set"),
        ("server = \"localhost\"\nca_file = \"missing.pem\"", "missing.pem"),
    ];
    for (smtp, words) in cases {
        let (dir, _) = job(smtp);
        let out = mailshot(dir.path(), &["probe", "job.toml"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{smtp}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(words), "{words:?} in {}", text(&out.stderr));
    }
    let (dir, _) = job("server = \"localhost\"");
    let out = mailshot(dir.path(), &["probe", "job.toml", "--rcpt", "bad address@x"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `probe` says how `send` would write messages to this server: BDAT windows where CHUNKING and PIPELINING
/// are offered and `window` is above 1, a hint where CHUNKING is offered and `window` is 1, else DATA.
#[tokio::test]
async fn probe_says_whether_messages_go_in_bdat_windows_or_by_data() {
    let cases = [
        (vec!["PIPELINING", "CHUNKING"], "window = 8", "Sending:      BDAT, up to 8 messages in flight per session"),
        (vec!["PIPELINING", "CHUNKING"], "", "the server offers CHUNKING: `window = 8` in [smtp] keeps 8 in flight"),
        (vec!["PIPELINING"], "window = 8", "Sending:      DATA, one message per round trip (PIPELINING)"),
        (vec!["CHUNKING"], "window = 8", "Sending:      DATA, lock-step"),
        (vec!["PIPELINING", "CHUNKING"], "window = 8\npipelining = \"envelope\"", "Sending:      DATA, one message"),
    ];
    for (caps, extra, want) in cases {
        let mut script = greet(&caps);
        script.extend([expect("QUIT"), send("221 2.0.0 Bye\r\n")]);
        let server = ScriptServer::start(script).await;
        let smtp = format!(
            "server = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nehlo_name = \"localhost\"\n{extra}",
            server.port()
        );
        let (dir, _) = job(&smtp);
        let out = mailshot(dir.path(), &["probe", "job.toml"], &[]).await;
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains(want), "{caps:?} {extra:?}: want {want:?} in\n{stdout}");
        server.finish().await.ok();
    }
}
