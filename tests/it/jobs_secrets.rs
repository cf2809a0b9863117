//! The password sources (issue 11, observation 6): `check` validates `password_env` and `password_file`
//! without printing them and does not run `password_command`; `send` refuses a blank password from any
//! source, stops a hung command (and all it started) after `password_command_timeout`, never shows the
//! command's error output, and warns when `password_file` can be read by others.

use std::process::Command;
use std::time::{Duration, Instant};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::{JobDir, MESSAGE, RECIPIENTS, Run};

const SECRET: &str = "hunter2-do-not-print";

/// A job whose `[smtp]` authenticates with `auth` (one `password_*` key), checked with `env` set.
fn check(auth: &str, env: &[(&str, &str)], setup: impl Fn(&JobDir)) -> Run {
    let job = JobDir::new();
    let smtp = format!("[smtp]\nserver = \"smtp.example.com\"\nusername = \"news@example.com\"\n{auth}\n");
    job.write("job.toml", format!("{smtp}{MESSAGE}{RECIPIENTS}"));
    setup(&job);
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailshot"));
    command.args(["check", "job.toml"]).current_dir(job.path()).env_clear().envs(env.iter().copied());
    let run = Run::from(command.output().unwrap());
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET), "the secret was printed");
    run
}

fn write_private(job: &JobDir, name: &str, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    job.write(name, contents);
    std::fs::set_permissions(job.path().join(name), std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn check_validates_password_env_without_printing_it() {
    let auth = "password_env = \"MAILSHOT_PW\"";
    check(auth, &[], |_| ())
        .expect(2)
        .line_with(&["error: job.toml:4: [smtp] password_env: the environment variable MAILSHOT_PW is not set"]);
    check(auth, &[("MAILSHOT_PW", " \t ")], |_| ()).expect(2).line_with(&[
        "error: job.toml:4: [smtp] the password from password_env MAILSHOT_PW is empty or only white space",
    ]);
    check(auth, &[("MAILSHOT_PW", SECRET)], |_| ()).expect(0);
}

#[test]
fn check_validates_password_file_and_warns_when_others_can_read_it() {
    let auth = "password_file = \"smtp.pw\"";
    check(auth, &[], |_| ()).expect(2).line_with(&["error: job.toml:4: [smtp] password_file", "smtp.pw"]);
    check(auth, &[], |j| write_private(j, "smtp.pw", "\n", 0o600))
        .expect(2)
        .line_with(&["job.toml:4:", "is empty or only white space"]);
    check(auth, &[], |j| write_private(j, "smtp.pw", SECRET, 0o600)).expect(0).line_with(&["0 errors, 0 warnings"]);
    check(auth, &[], |j| write_private(j, "smtp.pw", SECRET, 0o644))
        .expect(0)
        .line_with(&["warning: job.toml:4: [smtp] password_file", "readable by others (permissions 0644"])
        .line_with(&["chmod 600"]);
    // A FIFO (or a directory) is refused at once: reading it would block `check` for ever.
    let run = check(auth, &[], |j| {
        let fifo = j.path().join("smtp.pw");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    });
    run.expect(2).line_with(&["job.toml:4: [smtp] password_file", "not a regular file"]);
}

#[test]
fn check_does_not_run_password_command_and_says_so() {
    let run = check("password_command = \"touch ran && echo pw\"", &[], |_| ());
    run.expect(0).line_with(&["note: job.toml:4: [smtp] password_command", "was not run (it may have side effects)"]);
    let job_ran = run.stdout.contains("ran &&");
    assert!(job_ran, "the note names the command:\n{}", run.stdout);
}

/// A `send` job authenticating with `auth`, sent to the scripted server; returns the run, how long it took, and
/// how many connections the server saw.
fn send(auth: &str, env: &[(&str, &str)], setup: impl Fn(&SendJob)) -> (Run, Duration, u32) {
    let server = MailServer::start();
    let tag = unique_tag("secret");
    let smtp = Smtp::scripted(&server).with(&format!("username = \"u\"\nallow_plaintext_auth = true\n{auth}"));
    let mut job = SendJob::new(&tag, &smtp, addresses(&tag, 2), "");
    for (name, value) in env {
        job.set_env(name, value);
    }
    setup(&job);
    let start = Instant::now();
    let run = job.send(&["--yes"]);
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET), "the secret was printed:\n{}", run.stderr);
    (run, start.elapsed(), server.connections().0)
}

#[test]
fn send_stops_a_hung_password_command_with_everything_it_started() {
    let auth = "password_command = \"sleep 60 & echo $! > bg.pid; sleep 60\"\npassword_command_timeout = 0.5";
    let (run, took, connections) = send(auth, &[], |_| ());
    run.expect(2).line_with(&["password_command", "did not finish within 0.5 s (password_command_timeout)"]);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(connections, 0, "nothing may be sent");
}

#[test]
fn send_never_shows_the_password_commands_error_output() {
    // The command prints SECRET on stderr (in two halves in the job, so that only its output holds it whole);
    // `send` asserts that SECRET appears nowhere in what mailshot printed.
    let (head, tail) = SECRET.split_at(7);
    let auth = format!("password_command = \"printf '%s%s' '{head}' '{tail}' >&2; exit 7\"");
    let (run, _, connections) = send(&auth, &[], |_| ());
    run.expect(2).line_with(&["password_command", "failed (exit status: 7)", "run the command by hand"]);
    assert_eq!(connections, 0, "nothing may be sent");
}

#[test]
fn send_refuses_a_blank_password_from_any_source() {
    let blank_file = |job: &SendJob| job.write("smtp.pw", "  \n");
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a dyn Fn(&SendJob));
    let cases: [Case; 3] = [
        ("password_env = \"MAILSHOT_PW\"", &[("MAILSHOT_PW", "   ")], &|_| ()),
        ("password_file = \"smtp.pw\"", &[], &blank_file),
        ("password_command = \"echo\"", &[], &|_| ()),
    ];
    for (auth, env, setup) in cases {
        let (run, _, connections) = send(auth, env, setup);
        run.expect(2).line_with(&["[smtp] the password from", "is empty or only white space"]);
        assert_eq!(connections, 0, "{auth}: nothing may be sent");
    }
}

#[test]
fn send_warns_when_others_can_read_the_password_file() {
    let (run, _, _) = send("password_file = \"smtp.pw\"", &[], |job| {
        use std::os::unix::fs::PermissionsExt;
        job.write("smtp.pw", SECRET);
        std::fs::set_permissions(job.path().join("smtp.pw"), std::fs::Permissions::from_mode(0o604)).unwrap();
    });
    run.line_with(&["warning: job.toml: [smtp] password_file", "readable by others (permissions 0604"]);
}
