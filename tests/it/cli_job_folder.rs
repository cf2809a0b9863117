//! A folder given where a command takes its JOB means the `job.toml` inside it (issue 13): every command
//! prints and does the same with `DIR` as with `DIR/job.toml`, and a folder without a job.toml is refused,
//! naming the folder.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::send_job::{SendJob, Smtp, addresses, summary_count};
use crate::common::unique_tag;
use crate::jobs_support::Run;
use mailshot::smtp::testing::MailServer;

/// `mailshot ARGS` from `cwd` with nothing inherited but PATH, stdin closed.
fn mailshot(cwd: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailshot"));
    command.args(args).current_dir(cwd).env_clear().stdin(Stdio::null());
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    Run::from(command.output().unwrap())
}

/// Runs `CMD <folder> REST` and `CMD <folder>/job.toml REST` and asserts the two say the same.
fn same_as_job_file(job: &SendJob, command: &str, rest: &[&str]) -> Run {
    let folder = job.path().to_str().unwrap().to_owned();
    let file = job.path().join("job.toml").to_str().unwrap().to_owned();
    let by_file = mailshot(job.path(), &[&[command, file.as_str()], rest].concat());
    let by_folder = mailshot(job.path(), &[&[command, folder.as_str()], rest].concat());
    assert_eq!(by_folder.code, by_file.code, "{command}: {}\n{}", by_folder.stderr, by_file.stderr);
    assert_eq!(by_folder.stdout, by_file.stdout, "{command}");
    assert_eq!(by_folder.stderr, by_file.stderr, "{command}");
    by_folder
}

#[test]
fn every_command_takes_the_jobs_folder_for_its_job_toml() {
    let server = MailServer::start();
    let tag = unique_tag("folder");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 3), "");
    let folder = job.path().to_str().unwrap().to_owned();

    same_as_job_file(&job, "check", &[]).expect(0).line_with(&["3 rows: 3 valid", "0 errors"]);
    same_as_job_file(&job, "preview", &[]).expect(0).line_with(&["wrote 3 messages"]);
    same_as_job_file(&job, "send", &["--dry-run"]).expect(0).line_with(&["wrote 3 messages"]);
    assert_eq!(server.accepted_total(), 0, "a dry run sends nothing");

    let sent = mailshot(Path::new("/"), &["send", &format!("{folder}/"), "--yes"]);
    sent.expect(0);
    assert_eq!(summary_count(&sent.stdout, "delivered"), 3, "{}", sent.stdout);
    assert_eq!(server.accepted_total(), 3);

    same_as_job_file(&job, "status", &[]).expect(0).line_with(&["delivered", "3"]);
    same_as_job_file(&job, "repair", &[]).expect(0);
    assert!(!job.path().join("job.lock").exists(), "send and repair remove the lock they took");
    let probe = mailshot(Path::new("/"), &["probe", &folder]);
    probe.expect(0).line_with(&["Banner:", "220"]);
}

#[test]
fn a_folder_without_a_job_toml_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("news")).unwrap();
    for command in ["check", "preview", "send", "status", "repair", "probe"] {
        let run = mailshot(dir.path(), &[command, "news"]);
        run.expect(2).line_with(&["news: a folder without a job.toml"]);
        assert!(!run.stderr.contains("Is a directory"), "{command}: {}", run.stderr);
    }
}
