//! End to end against the project's Postfix lab (tier 5): each port as a user would meet it, messages read
//! back from the Maildir, and the lab's fault addresses. Skipped with a reason when the lab is not running.

use std::time::Duration;

use mailshot::job::policy::{ConnectVerdict, connect_failure};
use mailshot::smtp::testing::timeouts;
use mailshot::smtp::{self, ClientConfig, ConnectError, Credentials, Delivery, Envelope, Mechanism, Security};
use mailshot::smtp::{AuthError, ConnectionError, SessionError, Stage};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::common::lab_env::{Lab, lab};
use crate::common::lab_mail::Maildir;
use crate::common::unique_tag;

const FROM: &str = "news@example.test";

pub fn config(lab: &Lab, port: u16, security: Security) -> ClientConfig {
    let mut config = ClientConfig::new("localhost", port);
    config.security = security;
    config.extra_roots = CertificateDer::pem_file_iter(&lab.ca_file).unwrap().map(Result::unwrap).collect();
    config.timeouts = timeouts(Duration::from_secs(15));
    if security != Security::None {
        config.credentials = Some(Credentials::new(&lab.user, &lab.password));
    }
    config
}

/// A message with a dot-leading line and a bare LF, both of which must arrive intact (un-stuffed, CRLF).
fn message(to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: News <{FROM}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\n\
         Message-ID: <{subject}@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello.\r\n.a line that starts with a dot\nbare LF above\r\n"
    )
    .into_bytes()
}

async fn send_one(config: &ClientConfig, lab: &Lab, tag: &str) -> (smtp::TcpSession, String) {
    let mut maildir = Maildir::mark(lab);
    let mut session = smtp::connect(config).await.unwrap();
    let to = format!("{}@example.test", unique_tag(tag));
    let delivery = session.send(&Envelope::new(FROM, [to.as_str()]).unwrap(), &message(&to, tag)).await.unwrap();
    let Delivery::Accepted { reply, .. } = delivery else { panic!("{delivery:?}") };
    assert!(reply.to_string().contains("queued as"), "{reply}");
    let text = maildir.first(&to);
    let parsed = mail_parser::MessageParser::default().parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some(tag));
    assert!(text.contains("\n.a line that starts with a dot\nbare LF above\n"), "{text}");
    (session, text)
}

#[tokio::test]
async fn implicit_tls_with_auth_plain_delivers_and_the_maildir_says_esmtpsa() {
    let Some(lab) = lab("implicit_tls_with_auth_plain_delivers_and_the_maildir_says_esmtpsa") else { return };
    let config = config(&lab, lab.tls_port, Security::ImplicitTls);
    let (session, text) = send_one(&config, &lab, "e2e-tls").await;
    assert_eq!(session.info().auth.as_ref().unwrap().mechanism, Mechanism::Plain);
    assert!(text.lines().any(|l| l.contains("with ESMTPSA")), "{text}");
    session.quit().await.unwrap();
}

#[tokio::test]
async fn starttls_with_auth_login_delivers() {
    let Some(lab) = lab("starttls_with_auth_login_delivers") else { return };
    let mut config = config(&lab, lab.starttls_port, Security::StartTls);
    config.mechanism = Some(Mechanism::Login);
    let (session, text) = send_one(&config, &lab, "e2e-starttls").await;
    assert_eq!(session.info().auth.as_ref().unwrap().mechanism, Mechanism::Login);
    assert!(session.info().tls.is_some() && text.contains("with ESMTPSA"), "{text}");
    session.quit().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_auth_error() {
    let Some(lab) = lab("a_wrong_password_is_a_clear_auth_error") else { return };
    let mut config = config(&lab, lab.tls_port, Security::ImplicitTls);
    config.credentials = Some(Credentials::new(&lab.user, "not-the-password"));
    let err = smtp::connect(&config).await.expect_err("the login must fail");
    assert!(matches!(&err, ConnectError::Auth(AuthError::Rejected { reply, .. }) if reply.code() == 535), "{err}");
    assert!(err.to_string().contains("username or password not accepted"), "{err}");
    assert_eq!(connect_failure(&err, true), ConnectVerdict::Abort, "a refused login is final: {err}");
}

#[tokio::test]
async fn the_plaintext_port_delivers_without_auth() {
    let Some(lab) = lab("the_plaintext_port_delivers_without_auth") else { return };
    let (session, text) = send_one(&config(&lab, lab.plain_port, Security::None), &lab, "e2e-plain").await;
    assert!(session.info().tls.is_none() && session.info().auth.is_none());
    assert!(text.contains("with ESMTP id") && !text.contains("ESMTPSA"), "{text}");
    session.quit().await.unwrap();
}

#[tokio::test]
async fn the_port_without_extensions_works_in_lock_step_without_size() {
    let Some(lab) = lab("the_port_without_extensions_works_in_lock_step_without_size") else { return };
    let mut config = config(&lab, lab.noext_port, Security::None);
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&lines);
    config.transcript = Some(std::sync::Arc::new(move |_, line| sink.lock().unwrap().push(line.to_owned())));
    let (session, _) = send_one(&config, &lab, "e2e-noext").await;
    assert_eq!(session.capabilities(), &smtp::Capabilities::default());
    session.quit().await.unwrap();
    let lines = lines.lock().unwrap();
    let mail = lines.iter().find(|l| l.starts_with("MAIL FROM")).unwrap();
    assert_eq!(mail, &format!("MAIL FROM:<{FROM}>"), "no SIZE, no BODY without the extensions");
}

#[tokio::test]
async fn utf8_addresses_and_8bit_bodies_pass_a_strict_postfix() {
    let Some(lab) = lab("utf8_addresses_and_8bit_bodies_pass_a_strict_postfix") else { return };
    let mut session = smtp::connect(&config(&lab, lab.tls_port, Security::ImplicitTls)).await.unwrap();
    let mut maildir = Maildir::mark(&lab);
    let to = format!("{}@example.test", unique_tag("jöran"));
    let body = format!("From: {FROM}\r\nTo: {to}\r\nSubject: utf8\r\n\r\nGrüße, Jöran\r\n");
    let delivery = session.send(&Envelope::new(FROM, [to.as_str()]).unwrap(), body.as_bytes()).await.unwrap();
    assert!(matches!(delivery, Delivery::Accepted { .. }), "{delivery:?}");
    assert!(maildir.first(&to).contains("Grüße, Jöran"));
}

/// The lab's fault addresses: each refusal is a value, RSET follows, and the session carries on.
#[tokio::test]
async fn refusals_at_every_stage_leave_the_session_usable() {
    let Some(lab) = lab("refusals_at_every_stage_leave_the_session_usable") else { return };
    let mut session = smtp::connect(&config(&lab, lab.plain_port, Security::None)).await.unwrap();
    let cases = [
        ("mail-tempfail", "ok", Stage::Mail, 451),
        ("mail-reject", "ok", Stage::Mail, 553),
        ("ok", "rcpt-tempfail", Stage::Rcpt, 450),
        ("ok", "rcpt-reject", Stage::Rcpt, 550),
        ("data-tempfail", "ok", Stage::Data, 451),
        ("data-reject", "ok", Stage::Data, 554),
        ("eod-tempfail", "ok", Stage::DataEnd, 451),
        ("eod-reject", "ok", Stage::DataEnd, 554),
    ];
    for (from, to, stage, code) in cases {
        let from = if from == "ok" { FROM.to_owned() } else { format!("{from}@example.test") };
        let to =
            if to == "ok" { format!("{}@example.test", unique_tag("fault")) } else { format!("{to}@example.test") };
        let got = session.send(&Envelope::new(from, [to.as_str()]).unwrap(), &message(&to, "fault")).await.unwrap();
        let ok = matches!(&got, Delivery::Rejected { stage: s, reply } if *s == stage && reply.code() == code);
        assert!(ok, "{stage} expected {code}, got {got:?}");
        assert!(session.is_open());
    }
    send_after_faults(&mut session, &lab).await;
}

async fn send_after_faults(session: &mut smtp::TcpSession, lab: &Lab) {
    let mut maildir = Maildir::mark(lab);
    let to = format!("{}@example.test", unique_tag("after-faults"));
    let got = session.send(&Envelope::new(FROM, [to.as_str()]).unwrap(), &message(&to, "after")).await.unwrap();
    assert!(matches!(got, Delivery::Accepted { .. }), "{got:?}");
    maildir.first(&to);
}

#[tokio::test]
async fn a_421_at_any_stage_ends_the_session_retryably() {
    let Some(lab) = lab("a_421_at_any_stage_ends_the_session_retryably") else { return };
    let config = config(&lab, lab.plain_port, Security::None);
    let cases = [("mail-421", "ok", Stage::Mail), ("ok", "rcpt-421", Stage::Rcpt), ("data-421", "ok", Stage::Data)];
    let cases = cases.into_iter().chain([("eod-421", "ok", Stage::DataEnd)]);
    for (from, to, stage) in cases {
        let mut session = smtp::connect(&config).await.unwrap();
        let from = if from == "ok" { FROM.to_owned() } else { format!("{from}@example.test") };
        let to =
            if to == "ok" { format!("{}@example.test", unique_tag("fault421")) } else { format!("{to}@example.test") };
        let err = session.send(&Envelope::new(from, [to.as_str()]).unwrap(), &message(&to, "x")).await.unwrap_err();
        let ok = matches!(&err, SessionError::ServiceClosing { stage: s, reply } if *s == stage && reply.code() == 421);
        assert!(ok && err.is_retryable() && !session.is_open(), "{stage}: {err}");
    }
}

/// Pipelined, Postfix writes its replies only when it has read all of a group, so the `250` to MAIL waits
/// for the slow RCPT and the deadline fires while waiting for it: the stage says which reply was due.
#[tokio::test]
async fn a_slow_rcpt_reply_hits_the_command_deadline() {
    let Some(lab) = lab("a_slow_rcpt_reply_hits_the_command_deadline") else { return };
    for port in [lab.plain_port, lab.noext_port] {
        let mut config = config(&lab, port, Security::None);
        config.timeouts.command = Duration::from_secs(1);
        let mut session = smtp::connect(&config).await.unwrap();
        let pipelining = session.capabilities().pipelining;
        let to = "rcpt-slow@example.test";
        let err = session.send(&Envelope::new(FROM, [to]).unwrap(), &message(to, "slow")).await.unwrap_err();
        let due = if pipelining { Stage::Mail } else { Stage::Rcpt };
        let timed_out = matches!(&err, SessionError::Connection { stage, source: ConnectionError::Timeout { .. } }
            if *stage == due);
        assert!(timed_out && err.is_retryable(), "pipelining {pipelining}: {err}");
    }
}

/// `mailshot probe` against every lab port, as a user would try it; and with a wrong password.
#[tokio::test]
async fn probe_works_against_each_lab_port() {
    use crate::smtp_probe::{job, mailshot, text};
    let Some(lab) = lab("probe_works_against_each_lab_port") else { return };
    let ca = lab.ca_file.display();
    let auth = format!("username = \"{}\"\npassword_env = \"LAB_PW\"\nca_file = \"{ca}\"", lab.user);
    let ports = [
        (lab.tls_port, "tls", auth.as_str(), "TLS:          TLSv1."),
        (lab.starttls_port, "starttls", auth.as_str(), "AUTH:         PLAIN as merge@example.test: 235"),
        (lab.plain_port, "none", "", "TLS:          none"),
        (lab.noext_port, "none", "", "Capabilities: none"),
    ];
    for (port, security, extra, want) in ports {
        let (dir, _) = job(&format!("server = \"localhost\"\nport = {port}\nsecurity = \"{security}\"\n{extra}"));
        let args = ["probe", "job.toml", "--rcpt", "someone@example.test"];
        let out = mailshot(dir.path(), &args, &[("LAB_PW", lab.password.as_str())]).await;
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "port {port}: {stdout}{}", text(&out.stderr));
        assert!(stdout.contains(want) && stdout.contains("RCPT TO:      <someone@example.test> → 250"), "{stdout}");
    }
    let (dir, _) = job(&format!("server = \"localhost\"\nport = {}\n{auth}", lab.tls_port));
    let out = mailshot(dir.path(), &["probe", "job.toml"], &[("LAB_PW", "wrong")]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("username or password not accepted"), "{}", text(&out.stderr));
    // A refused login still shows what the handshake learned (issue 13): Postfix's banner, TLS, the offer.
    let stdout = text(&out.stdout);
    for want in ["Banner:       220 ", "TLS:          TLSv1.", "Certificate:  CN=localhost", "AUTH PLAIN LOGIN"] {
        assert!(stdout.contains(want), "{want:?} in\n{stdout}");
    }
}

/// One connector per run shares its TLS client configuration, so a reconnect (after
/// `max_messages_per_connection`) resumes TLS instead of a full handshake; a one-off `connect` does not.
#[tokio::test]
async fn sessions_from_one_connector_resume_tls_both_implicit_and_after_starttls() {
    let Some(lab) = lab("sessions_from_one_connector_resume_tls_both_implicit_and_after_starttls") else { return };
    for (port, security) in [(lab.tls_port, Security::ImplicitTls), (lab.starttls_port, Security::StartTls)] {
        let connector = smtp::Connector::new(config(&lab, port, security)).unwrap();
        let mut resumed = Vec::new();
        for _ in 0..6 {
            let session = connector.connect().await.unwrap();
            resumed.push(session.info().tls.as_ref().expect("TLS").resumed);
            session.quit().await.unwrap();
        }
        // Postfix (OpenSSL) issues no new ticket after a resumed TLS 1.3 handshake, so with it every other
        // reconnect resumes; what matters is that reconnects do, and the first session cannot.
        assert!(!resumed[0] && resumed[1], "{security:?}: {resumed:?}");
        assert!(resumed.iter().filter(|r| **r).count() >= 3, "{security:?}: {resumed:?}");
        let one_off = smtp::connect(&config(&lab, port, security)).await.unwrap();
        assert!(!one_off.info().tls.as_ref().unwrap().resumed, "a fresh connector has nothing to resume");
        one_off.quit().await.unwrap();
    }
}
