//! TLS and STARTTLS against the scripted server and the test PKI: what must work, and what must abort.

use mailshot::job::policy::{ConnectVerdict, connect_failure};
use mailshot::smtp::testing::{ScriptServer, Step, ehlo_reply, expect, greet, send};
use mailshot::smtp::{self, ConnectError, Credentials, Security};

use crate::smtp_pki::{client_config, pki};

#[tokio::test]
async fn implicit_tls_verifies_the_certificate_and_reports_what_was_negotiated() {
    let mut script = greet(&["AUTH PLAIN LOGIN", "SIZE 1000"]);
    script.extend([
        expect("AUTH PLAIN AHVzZXIAcGFzcw=="),
        send("235 2.7.0 Authentication successful\r\n"),
        expect("QUIT"),
        send("221 2.0.0 Bye\r\n"),
    ]);
    let server = ScriptServer::start_tls(pki().localhost.server_config(), script).await;
    let mut config = client_config(&server, Security::ImplicitTls);
    config.credentials = Some(Credentials::new("user", "pass"));
    let session = smtp::connect(&config).await.unwrap();
    let tls = session.info().tls.clone().expect("TLS info");
    assert!(tls.version.starts_with("TLSv1."), "{tls:?}");
    assert_eq!(tls.subject.as_deref(), Some("CN=localhost"));
    assert_eq!(session.info().auth.as_ref().unwrap().reply.code(), 235);
    assert_eq!(session.capabilities().size_limit(), Some(1000));
    session.quit().await.unwrap();
    server.finish().await.ok();
}

/// RFC 3207 §4.2: after STARTTLS the client forgets the plaintext capabilities and asks again.
#[tokio::test]
async fn starttls_upgrades_and_forgets_the_plaintext_capabilities() {
    let mut script = greet(&["STARTTLS", "SIZE 999", "X-PLAINTEXT-ONLY"]);
    script.extend([
        expect("STARTTLS"),
        send("220 2.0.0 Ready to start TLS\r\n"),
        Step::StartTls(pki().localhost.server_config()),
        expect("EHLO localhost"),
        Step::Send(ehlo_reply(&["AUTH LOGIN", "8BITMIME"])),
        expect("AUTH LOGIN"),
        send("334 VXNlcm5hbWU6\r\n"),
        expect("dXNlcg=="),
        send("334 UGFzc3dvcmQ6\r\n"),
        expect("cGFzcw=="),
        send("235 2.7.0 Authentication successful\r\n"),
        Step::Drain,
    ]);
    let server = ScriptServer::start(script).await;
    let mut config = client_config(&server, Security::StartTls);
    config.credentials = Some(Credentials::new("user", "pass"));
    let session = smtp::connect(&config).await.unwrap();
    let caps = session.capabilities();
    assert!(caps.eight_bit_mime && caps.size.is_none() && !caps.starttls, "{caps:?}");
    assert_eq!(caps.lines, ["AUTH LOGIN", "8BITMIME"]);
    assert!(session.info().tls.is_some());
    drop(session);
    server.finish().await.ok();
}

async fn starttls_failure(after_ehlo: Vec<Step>, capabilities: &[&str]) -> (ConnectError, String) {
    let mut script = greet(capabilities);
    script.extend(after_ehlo);
    let server = ScriptServer::start(script).await;
    let mut config = client_config(&server, Security::StartTls);
    config.credentials = Some(Credentials::new("user", "pass"));
    let err = smtp::connect(&config).await.expect_err("the handshake must abort");
    (err, server.finish().await.received)
}

#[tokio::test]
async fn starttls_not_offered_aborts_before_any_credential_is_sent() {
    let (err, received) = starttls_failure(vec![Step::Drain], &["AUTH PLAIN", "PIPELINING"]).await;
    assert!(matches!(err, ConnectError::StartTlsNotOffered), "{err}");
    assert_eq!(connect_failure(&err, true), ConnectVerdict::Abort, "{err}");
    assert_eq!(received, "EHLO localhost\r\n");
}

#[tokio::test]
async fn starttls_refused_aborts() {
    let refused = vec![expect("STARTTLS"), send("454 4.7.0 TLS not available due to local problem\r\n"), Step::Drain];
    let (err, received) = starttls_failure(refused, &["STARTTLS"]).await;
    assert!(matches!(&err, ConnectError::StartTlsRejected { reply } if reply.code() == 454), "{err}");
    assert!(err.to_string().contains("TLS not available"), "{err}");
    assert!(!received.contains("AUTH"), "{received:?}");
}

/// CVE-2011-0411: a reply injected right behind the 220 would otherwise be read as the first reply over TLS.
#[tokio::test]
async fn bytes_injected_after_the_starttls_220_abort() {
    let injected = vec![
        expect("STARTTLS"),
        send("220 2.0.0 Ready to start TLS\r\n250-evil.example\r\n250 AUTH PLAIN\r\n"),
        Step::Drain,
    ];
    let (err, received) = starttls_failure(injected, &["STARTTLS"]).await;
    assert!(matches!(err, ConnectError::StartTlsInjection { bytes } if bytes > 0), "{err}");
    assert_eq!(received, "EHLO localhost\r\nSTARTTLS\r\n", "nothing may follow STARTTLS in plaintext");
}

async fn certificate_refused(identity: &crate::smtp_pki::Identity) -> String {
    let server = ScriptServer::start_tls(identity.server_config(), vec![]).await;
    let config = client_config(&server, Security::ImplicitTls);
    let err = smtp::connect(&config).await.expect_err("the certificate must be refused");
    let record = server.finish().await;
    assert!(record.error.is_some_and(|e| e.starts_with("TLS")), "the server saw a handshake failure");
    assert!(matches!(err, ConnectError::Tls(_)), "{err}");
    assert_eq!(connect_failure(&err, true), ConnectVerdict::Abort, "{err}");
    err.to_string()
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let message = certificate_refused(&pki().other_name).await;
    assert!(message.contains("not valid for this host name"), "{message}");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let message = certificate_refused(&pki().unknown_ca).await;
    assert!(message.contains("unknown certificate authority"), "{message}");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let message = certificate_refused(&pki().expired).await;
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn auth_without_tls_is_refused_unless_allowed() {
    let server = ScriptServer::start(vec![]).await;
    let mut config = client_config(&server, Security::None);
    config.credentials = Some(Credentials::new("user", "pass"));
    assert!(matches!(smtp::connect(&config).await, Err(ConnectError::PlaintextAuth)));

    config.allow_plaintext_auth = true;
    let mut script = greet(&["AUTH PLAIN"]);
    script.extend([expect("AUTH PLAIN AHVzZXIAcGFzcw=="), send("235 2.7.0 Ok\r\n"), Step::Drain]);
    // The first server saw no connection: preflight refused before connecting. Start the one that accepts.
    drop(server);
    let server = ScriptServer::start(script).await;
    config.port = server.port();
    assert!(smtp::connect(&config).await.unwrap().info().auth.is_some());
    server.finish().await.ok();
}
