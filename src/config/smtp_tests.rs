use std::path::Path;

use super::*;
use crate::config::JobFile;

fn section(extra: &str) -> SmtpSection {
    let text = format!("[smtp]\nserver = \"smtp.example.test\"\n{extra}");
    JobFile::parse(Path::new("job.toml"), &text).unwrap().smtp
}

#[test]
fn the_section_becomes_a_client_config() {
    let s = section("security = \"starttls\"\nehlo_name = \"news.example.test\"\n[smtp.timeouts]\ngreeting = 0.5\n");
    let c = s.client_config(Path::new("")).unwrap();
    assert_eq!((c.host.as_str(), c.port, c.security), ("smtp.example.test", 587, smtp::Security::StartTls));
    assert_eq!(c.ehlo_name.as_deref(), Some("news.example.test"));
    assert_eq!(c.timeouts.greeting, Duration::from_millis(500));
    assert_eq!(c.timeouts.data_end, Duration::from_secs(600));
    assert!(c.credentials.is_none());
}

#[test]
fn the_secret_comes_from_a_file_without_its_newline_and_never_shows_in_debug() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "hunter2-secret\r\n").unwrap();
    let s = section("username = \"merge\"\npassword_file = \"pw\"\nauth = \"login\"\n");
    let c = s.client_config(dir.path()).unwrap();
    let creds = c.credentials.as_ref().unwrap();
    assert_eq!((creds.username.as_str(), creds.secret.expose()), ("merge", "hunter2-secret"));
    assert_eq!(c.mechanism, Some(smtp::Mechanism::Login));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn the_secret_comes_from_an_env_var_or_a_command() {
    let path = std::env::var("PATH").unwrap();
    let env = PasswordSource::Env("PATH".into()).load(Path::new("")).unwrap();
    assert_eq!(env.expose(), path);
    let cmd = PasswordSource::Command("printf 'tok-en\\n'".into()).load(Path::new("")).unwrap();
    assert_eq!(cmd.expose(), "tok-en");
}

#[test]
fn a_missing_or_failing_source_is_a_clear_error() {
    let none = Path::new("");
    let missing = PasswordSource::Env("MAILSHOT_TEST_SURELY_UNSET_VAR".into()).load(none).unwrap_err();
    assert!(matches!(missing, SmtpConfigError::EnvMissing { .. }), "{missing}");
    let failing = PasswordSource::Command("echo nope >&2; exit 3".into()).load(none).unwrap_err();
    assert!(failing.to_string().contains("nope"), "{failing}");
    let empty = PasswordSource::Command("true".into()).load(none).unwrap_err();
    assert!(matches!(empty, SmtpConfigError::EmptySecret { .. }), "{empty}");
    let file = PasswordSource::File("/nonexistent/pw".into()).load(none).unwrap_err();
    assert!(matches!(file, SmtpConfigError::FileRead { .. }), "{file}");
}

#[test]
fn username_and_password_come_together() {
    let none = Path::new("");
    assert!(matches!(section("username = \"u\"\n").client_config(none), Err(SmtpConfigError::NoPassword)));
    assert!(matches!(section("password_env = \"PATH\"\n").client_config(none), Err(SmtpConfigError::NoUsername)));
    let two = section("username = \"u\"\npassword_env = \"PATH\"\npassword_command = \"true\"\n");
    assert!(matches!(two.client_config(none), Err(SmtpConfigError::PasswordKeys(_))));
}

#[test]
fn the_ca_file_adds_trust_anchors_and_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["ca.example.test".to_owned()]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    let c = section("ca_file = \"ca.pem\"\n").client_config(dir.path()).unwrap();
    assert_eq!(c.extra_roots.len(), 1);
    let err = section("ca_file = \"junk.pem\"\n").client_config(dir.path()).unwrap_err();
    assert!(matches!(err, SmtpConfigError::CaFile { .. }), "{err}");
}
