//! Shell integration and closed pipes (issue 13): `mailshot completions SHELL`, `mailshot man [--dir]`, and
//! commands whose reader goes away before they print (`mailshot preview … | true`) end with their normal
//! exit code instead of a panic.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::jobs_support::{JobDir, Run, run_in};

const COMMANDS: [&str; 10] =
    ["check", "preview", "send", "status", "bounces", "repair", "probe", "init", "completions", "man"];

#[test]
fn bash_completion_offers_every_command_and_other_shells_get_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["completions", "bash"]);
    run.expect(0);
    assert!(run.stdout.contains("complete -F _mailshot"), "{}", run.stdout);
    // bash offers the commands as one word list for `mailshot <TAB>`.
    let offered = run.stdout.lines().find(|l| l.contains("opts=\"") && l.contains("check")).expect("the command list");
    for command in COMMANDS {
        assert!(offered.split(['"', ' ']).any(|w| w == command), "{command} not offered in {offered}");
    }
    for (shell, marker) in [("zsh", "#compdef mailshot"), ("fish", "complete -c mailshot")] {
        let run = run_in(dir.path(), &["completions", shell]);
        run.expect(0);
        assert!(run.stdout.contains(marker), "{shell}: {}", run.stdout);
    }
    run_in(dir.path(), &["completions", "tcsh"]).expect(2).line_with(&["invalid value 'tcsh'"]);
}

#[test]
fn the_man_page_is_roff_naming_every_command_and_man_renders_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["man"]);
    run.expect(0);
    let page = &run.stdout;
    assert!(page.lines().any(|l| l.starts_with(".TH mailshot 1 ")), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for command in COMMANDS {
        assert!(page.contains(&format!("mailshot\\-{command}(1)")), "{command} in\n{page}");
    }
    let Ok(man) = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIPPED rendering with man: man is not installed");
        return;
    };
    let mut man = man;
    std::io::Write::write_all(&mut man.stdin.take().unwrap(), page.as_bytes()).unwrap();
    let shown = Run::from(man.wait_with_output().unwrap());
    shown.expect(0);
    // Not a terminal: man prints plain text, without overstrike bold.
    let text = &shown.stdout;
    for heading in ["NAME", "SYNOPSIS", "SUBCOMMANDS"] {
        assert!(text.lines().any(|l| l.trim() == heading), "{heading} in\n{text}");
    }
    assert!(text.contains("mailshot-send(1)"), "{text}");
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["man", "--dir", "pages"]);
    run.expect(0);
    let mut want: Vec<String> = COMMANDS.iter().map(|c| format!("pages/mailshot-{c}.1")).collect();
    want.push("pages/mailshot.1".to_owned());
    want.sort();
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), want);
    let send = std::fs::read_to_string(dir.path().join("pages/mailshot-send.1")).unwrap();
    assert!(send.contains(".TH mailshot-send 1") && send.contains("\\-\\-dry\\-run"), "{send}");
}

#[test]
fn man_dir_naming_a_file_says_it_is_not_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pages"), "mine").unwrap();
    run_in(dir.path(), &["man", "--dir", "pages"])
        .expect(2)
        .line_with(&["pages: not a folder; --dir names the folder"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("pages")).unwrap(), "mine");
}

/// Starts `mailshot ARGS` in `dir` with stdout a pipe whose reading end is closed at once, so that every
/// write the command makes meets a closed pipe.
fn with_stdout_closed(dir: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailshot"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn a_closed_stdout_ends_preview_init_completions_and_man_normally() {
    let job = JobDir::new();
    with_stdout_closed(job.path(), &["preview", "job.toml", "--eml"]).expect(0);
    assert_eq!(std::fs::read_dir(job.path().join("preview")).unwrap().count(), 5, "3 .eml, the mbox and the page");
    with_stdout_closed(job.path(), &["preview", "job.toml", "--row", "2"]).expect(0);
    with_stdout_closed(job.path(), &["send", "job.toml", "--dry-run"]).expect(0);
    with_stdout_closed(job.path(), &["init", "news"]).expect(0);
    assert!(job.path().join("news/job.toml").exists());
    with_stdout_closed(job.path(), &["completions", "bash"]).expect(0);
    with_stdout_closed(job.path(), &["man"]).expect(0);
    job.write("job.journal.jsonl", "");
    with_stdout_closed(job.path(), &["repair", "job.toml"]).expect(0);
    with_stdout_closed(job.path(), &["status", "job.toml"]).expect(0);
    // A broken job's problems go to stderr, which stays open: still exit 2 with them named.
    job.write("t/mail.txt", "{{ name");
    with_stdout_closed(job.path(), &["preview", "job.toml"]).expect(2).line_with(&["t/mail.txt:1: syntax error"]);
}
