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
    let failing = PasswordSource::Command("printf 'hunter%s' 2 >&2; exit 3".into()).load(none).unwrap_err();
    let text = failing.to_string();
    assert!(matches!(failing, SmtpConfigError::CommandFailed { .. }), "{text}");
    assert!(text.contains("exit status: 3") && text.contains("run the command by hand"), "{text}");
    assert!(!text.contains("hunter2"), "its stderr may hold the secret: {text}");
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

#[test]
fn an_empty_or_blank_secret_is_refused_from_any_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blank"), " \t\n").unwrap();
    std::fs::write(dir.path().join("newline"), "\n").unwrap();
    let sources = [
        PasswordSource::File("blank".into()),
        PasswordSource::File("newline".into()),
        PasswordSource::Command("printf '\\n\\n'".into()),
        PasswordSource::Command("printf '   '".into()),
        PasswordSource::Env("MAILSHOT_TEST_SURELY_UNSET_VAR".into()),
    ];
    for source in &sources[..4] {
        let err = source.load(dir.path()).unwrap_err();
        assert!(matches!(err, SmtpConfigError::EmptySecret { .. }), "{source:?}: {err}");
    }
    assert!(matches!(sources[4].load(dir.path()), Err(SmtpConfigError::EnvMissing { .. })));
    let spaced = PasswordSource::Command("printf ' pass word '".into()).load(dir.path()).unwrap();
    assert_eq!(spaced.expose(), " pass word ", "only a blank secret is refused; spaces inside one are kept");
}

/// A command that hangs is stopped after its timeout, with everything it started: its process group is
/// killed, so neither `sh` nor the `sleep` it left in the background survives.
#[test]
fn a_hung_password_command_is_killed_with_its_process_group_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let command = PasswordSource::Command("sleep 30 & echo $! > bg.pid; sleep 30; echo late".into());
    let start = std::time::Instant::now();
    let err = command.load_within(dir.path(), Duration::from_secs(1)).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, SmtpConfigError::CommandTimeout { .. }), "{err}");
    assert!(err.to_string().contains("password_command_timeout"), "{err}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    let pid = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap();
    // Gone, or a zombie waiting for whoever inherited it to reap it: killed either way.
    let alive = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().is_empty() && !rest.trim_start().starts_with('Z'))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "the background sleep {} was left running", pid.trim());
}

#[test]
fn check_reads_env_and_file_secrets_but_never_runs_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let touched = dir.path().join("ran");
    let command = format!("password_command = \"touch {} && echo pw\"\n", touched.display());
    let s = section(&format!("username = \"u\"\n{command}"));
    assert_eq!(s.check_credentials(dir.path()).unwrap(), s.password_command.as_deref());
    assert!(!touched.exists(), "check ran the command");

    let s = section("username = \"u\"\npassword_env = \"MAILSHOT_TEST_SURELY_UNSET_VAR\"\n");
    assert!(matches!(s.check_credentials(dir.path()), Err(SmtpConfigError::EnvMissing { .. })));
    let s = section("username = \"u\"\npassword_file = \".\"\n");
    assert!(matches!(s.check_credentials(dir.path()), Err(SmtpConfigError::FileRead(_))));
    std::fs::write(dir.path().join("pw"), "hunter2\n").unwrap();
    let s = section("username = \"u\"\npassword_file = \"pw\"\n");
    assert_eq!(s.check_credentials(dir.path()).unwrap(), None);
}

#[test]
fn a_password_file_others_can_read_gets_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    std::fs::write(&path, "hunter2\n").unwrap();
    let s = section("username = \"u\"\npassword_file = \"pw\"\n");
    for (mode, warned) in [(0o600, None), (0o400, None), (0o640, Some("its group")), (0o644, Some("others"))] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let warning = s.password_file_warning(dir.path());
        match warned {
            None => assert_eq!(warning, None, "{mode:o}"),
            Some(who) => {
                let warning = warning.unwrap_or_else(|| panic!("no warning for {mode:o}"));
                assert!(warning.contains(who) && warning.contains(&format!("{mode:04o}")), "{warning}");
                assert!(!warning.contains("hunter2"));
            }
        }
    }
}
