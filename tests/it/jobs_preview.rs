//! `mailshot preview` and `mailshot init`, run as a binary in a fresh temp dir.

use mail_parser::MessageParser;
use mail_parser::mailbox::mbox::MessageIterator;

use mailshot::smtp::testing::assert_wire_clean;

use crate::jobs_support::{JobDir, run_in, run_in_with, sample_job};

fn files(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The messages of a preview's `messages.mbox`, as a reader gives them back (quoting undone), with CRLF.
pub(crate) fn mbox_messages(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(dir.join("messages.mbox")).unwrap();
    let crlf = |m: Vec<u8>| String::from_utf8(m).unwrap().trim_end().replace('\n', "\r\n").into_bytes();
    MessageIterator::new(&bytes[..]).map(|m| crlf(m.unwrap().unwrap_contents())).collect()
}

/// The bytes without the Date header, which is the one thing that differs between two runs.
fn without_date(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).split("\r\n").filter(|l| !l.starts_with("Date: ")).collect::<Vec<_>>().join("\r\n")
}

/// One file for the page and one for all messages, whatever the number of rows (issue 14's 2× of `check`).
#[test]
fn writes_an_index_and_one_mbox_of_every_message() {
    let job = JobDir::new();
    job.write("r.csv", "email,name\nann@example.com,<i>Ann</i>\nbad,Bad\nann@example.com,Ann\nbob@example.com,Bob\n");
    let run = job.run(&["preview", "job.toml", "--out", "out"]);
    run.expect(2).line_with(&["r.csv:3: column `email`"]).line_with(&["wrote 2 messages"]);
    let out = job.path().join("out");
    assert_eq!(files(&out, ""), ["index.html", "messages.mbox"]);
    let messages = mbox_messages(&out);
    assert_eq!(messages.len(), 2);
    for (message, row) in messages.iter().zip(["2", "5"]) {
        assert_wire_clean(message);
        let alone = job.run(&["preview", "job.toml", "--row", row]).expect(0).raw_stdout.clone();
        assert_eq!(without_date(message), without_date(alone.trim_ascii_end()), "row {row}");
    }
    let mbox = std::fs::read_to_string(out.join("messages.mbox")).unwrap();
    assert!(mbox.starts_with("From "), "{mbox}");
}

#[test]
fn eml_writes_one_file_per_recipient_and_an_index() {
    let job = JobDir::new();
    job.write("r.csv", "email,name\nann@example.com,<i>Ann</i>\nbad,Bad\nann@example.com,Ann\nbob@example.com,Bob\n");
    let run = job.run(&["preview", "job.toml", "--out", "out", "--eml"]);
    run.expect(2).line_with(&["r.csv:3: column `email`"]).line_with(&["wrote 2 messages"]);
    let out = job.path().join("out");
    assert_eq!(files(&out, ".eml"), ["row-000002-ann@example.com.eml", "row-000005-bob@example.com.eml"]);
    let from_mbox = mbox_messages(&out);
    for (eml, message) in files(&out, ".eml").iter().zip(&from_mbox) {
        let bytes = std::fs::read(out.join(eml)).unwrap();
        assert_eq!(bytes.trim_ascii_end(), &message[..], "{eml}: the same bytes in both files");
    }
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains(r#""Hello \u003ci\u003eAnn\u003c/i\u003e""#) && !index.contains("<i>Ann"), "{index}");
    assert!(index.contains(r#"<iframe id="html-frame" sandbox="" "#), "{index}");
    assert!(index.contains("r.csv:3: column `email`"), "the summary names the rows left out:\n{index}");
    for eml in files(&out, ".eml") {
        let bytes = std::fs::read(out.join(&eml)).unwrap();
        assert_wire_clean(&bytes);
        assert!(MessageParser::new().parse(&bytes).unwrap().subject().unwrap().starts_with("Hello "));
    }
}

#[test]
fn row_prints_the_same_bytes_as_the_eml() {
    let job = JobDir::new();
    job.run(&["preview", "job.toml", "--eml"]).expect(0);
    let eml = std::fs::read(job.path().join("preview/row-000003-bob@example.com.eml")).unwrap();
    let run = job.run(&["preview", "job.toml", "--row", "3"]);
    run.expect(0);
    assert_eq!(without_date(&run.raw_stdout), without_date(&eml));
    job.run(&["preview", "job.toml", "--row", "9"]).expect(2).line_with(&["row 9: there is no recipient"]);
}

#[test]
fn limit_and_rerun_leave_only_the_current_files() {
    let job = JobDir::new();
    job.run(&["preview", "job.toml", "--eml"]).expect(0);
    job.write("preview/notes.txt", "mine");
    job.run(&["preview", "job.toml", "--limit", "1", "--eml"]).expect(0).line_with(&["wrote 1 messages"]);
    assert_eq!(files(&job.path().join("preview"), ".eml"), ["row-000002-ann@example.com.eml"]);
    assert_eq!(mbox_messages(&job.path().join("preview")).len(), 1);
    job.run(&["preview", "job.toml", "--limit", "1"]).expect(0);
    assert_eq!(files(&job.path().join("preview"), ".eml"), Vec::<String>::new(), "without --eml, none is left");
    assert!(job.path().join("preview/notes.txt").exists(), "files preview did not write are left alone");
}

/// A folder of only our files is replaced whole (renamed aside, deleted after): nothing of it is left, not
/// even the renamed folder; one with a file of the user's is cleared file by file (the test above).
#[test]
fn a_rerun_replaces_a_folder_of_only_preview_files_and_leaves_nothing_aside() {
    use std::os::unix::fs::MetadataExt;
    let job = JobDir::new();
    let preview = job.path().join("preview");
    job.run(&["preview", "job.toml", "--eml"]).expect(0);
    let before = std::fs::metadata(&preview).unwrap().ino();
    job.run(&["preview", "job.toml", "--limit", "1", "--eml"]).expect(0).line_with(&["wrote 1 messages"]);
    assert_eq!(files(&preview, ""), ["index.html", "messages.mbox", "row-000002-ann@example.com.eml"]);
    assert_ne!(std::fs::metadata(&preview).unwrap().ino(), before, "a new folder, not the old one emptied");
    let mut names = files(job.path(), "");
    names.retain(|n| n.starts_with('.'));
    assert_eq!(names, Vec::<String>::new(), "the earlier preview is deleted, not left beside the job");
}

#[test]
fn a_rerun_through_a_symlinked_folder_keeps_the_link() {
    let job = JobDir::new();
    std::fs::create_dir(job.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("elsewhere", job.path().join("preview")).unwrap();
    job.run(&["preview", "job.toml", "--eml"]).expect(0);
    job.run(&["preview", "job.toml", "--limit", "1", "--eml"]).expect(0);
    assert!(std::fs::symlink_metadata(job.path().join("preview")).unwrap().file_type().is_symlink());
    let written = files(&job.path().join("elsewhere"), "");
    assert_eq!(written, ["index.html", "messages.mbox", "row-000002-ann@example.com.eml"]);
}

#[test]
fn a_broken_job_is_refused_with_its_problems() {
    let job = JobDir::new();
    job.write("t/mail.txt", "{{ name");
    job.run(&["preview", "job.toml"]).expect(2).line_with(&["t/mail.txt:1: syntax error"]);
    assert!(!job.path().join("preview").exists());
}

pub(crate) fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "preview" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_sample_previews_into_its_ignored_folder() {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(sample_job().parent().unwrap(), copy.path());
    run_in(copy.path(), &["preview", "job.toml"]).expect(0).line_with(&["wrote 12 messages", "preview/index.html"]);
    let preview = copy.path().join("preview");
    assert_eq!(mbox_messages(&preview).len(), 12);
    assert_eq!(files(&preview, ".eml").len(), 0, "one file per message only with --eml");
    let tickets = files(&preview, ".pdf");
    assert_eq!(tickets.len(), 12, "each message's attachment is written next to it");
    assert_eq!(tickets[0], "row-000002-ann.lee@example.com.att1-ticket-1001.pdf");
    let original = std::fs::read(copy.path().join("files/ticket-1001.pdf")).unwrap();
    assert_eq!(std::fs::read(preview.join(&tickets[0])).unwrap(), original);
    let ignored = std::process::Command::new("git")
        .args(["check-ignore", "-q", "samples/announcement/preview/index.html"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    if let Ok(status) = ignored {
        assert!(status.success(), "samples/*/preview/ must be ignored by git");
    }
}

#[test]
fn open_without_a_browser_prints_the_path() {
    let job = JobDir::new();
    let run = job.run(&["preview", "job.toml", "--open"]);
    run.expect(0).line_with(&["wrote 3 messages"]);
    run.line_with(&["no browser here (no DISPLAY, WAYLAND_DISPLAY or BROWSER); open preview/index.html"]);
    assert!(job.path().join("preview/index.html").exists());
}

#[test]
fn init_scaffolds_a_job_that_checks_and_previews() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["init", "news"]).expect(0).line_with(&["created news/job.toml"]);
    let job = dir.path().join("news");
    run_in(&job, &["check", "job.toml"]).expect(2).line_with(&["MAILSHOT_PASSWORD is not set"]);
    let password = [("MAILSHOT_PASSWORD", "x")];
    run_in_with(&job, &["check", "job.toml"], &password).expect(0).line_with(&["2 rows: 2 valid", "0 errors"]);
    run_in(&job, &["preview", "job.toml"]).expect(0).line_with(&["wrote 2 messages"]);
    run_in(dir.path(), &["init", "news"]).expect(2).line_with(&["news: already exists and is not empty"]);
}

/// `BROWSER` is given the page's absolute path as its one argument: never a relative path that a job folder
/// named `-…` would turn into one of the browser's options.
#[test]
fn open_gives_the_browser_the_absolute_path_of_the_page() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["init", "--", "-x"]).expect(0);
    let (browser, args) = (dir.path().join("browser.sh"), dir.path().join("browser.args"));
    std::fs::write(&browser, format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}.tmp\nmv {0}.tmp {0}\n", args.display()))
        .unwrap();
    std::fs::set_permissions(&browser, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = [("BROWSER", browser.to_str().unwrap()), ("MAILSHOT_PASSWORD", "x")];
    run_in_with(dir.path(), &["preview", "--open", "--", "-x"], &env).expect(0).line_with(&["wrote 2 messages"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !args.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let given = std::fs::read_to_string(&args).expect("the browser was started");
    let page = dir.path().join("-x/preview/index.html");
    assert_eq!(given, format!("{}\n", page.display()), "one argument, the absolute path");
}

/// `mailshot ARGS` in `dir` with files capped at 32 KiB (RLIMIT_FSIZE, SIGXFSZ ignored): a write past it
/// fails with EFBIG, as a full disk fails one.
fn run_with_small_files(dir: &std::path::Path, args: &[&str]) -> crate::jobs_support::Run {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ && ulimit -f 64 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_mailshot"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .unwrap();
    crate::jobs_support::Run::from(output)
}

/// A preview that can't be written whole (the disk fills up mid-run) exits 2 naming the file, and leaves the
/// earlier preview as it was: not deleted, not replaced by a cut page. Where the folder also holds a file
/// of the user's (cleared file by file, so nothing to bring back), the half-written files are removed.
#[test]
fn a_preview_that_cannot_be_written_whole_leaves_the_earlier_one_in_place() {
    let job = JobDir::new();
    let preview = job.path().join("preview");
    job.run(&["preview", "job.toml", "--eml"]).expect(0);
    let contents = || -> Vec<(String, String)> {
        let read = |n: &String| String::from_utf8_lossy(&std::fs::read(preview.join(n)).unwrap()).into_owned();
        files(&preview, "").into_iter().map(|n| (read(&n), n)).map(|(text, name)| (name, text)).collect()
    };
    let earlier = contents();
    let rows: String = (0..2000).map(|i| format!("u{i}@example.com,User {i}\n")).collect();
    job.write("r.csv", format!("email,name\n{rows}"));

    let run = run_with_small_files(job.path(), &["preview", "job.toml"]);
    run.expect(2).line_with(&["mailshot: ", "preview/", "File too large"]);
    let now = contents();
    let names = |files: &[(String, String)]| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&now), names(&earlier), "the earlier preview's files");
    assert!(now == earlier, "the earlier preview, byte for byte");
    let mut names = files(job.path(), "");
    names.retain(|n| n.starts_with('.'));
    assert_eq!(names, Vec::<String>::new(), "nothing left aside");

    job.write("preview/notes.txt", "mine");
    run_with_small_files(job.path(), &["preview", "job.toml"]).expect(2).line_with(&["File too large"]);
    assert_eq!(files(&preview, ""), ["notes.txt"], "no half-written page or mbox");
}

/// Ctrl-C in the middle of a big preview stops it with 130, removes the half-written page and mbox, and puts
/// the earlier preview back; before, the default action killed it, leaving a cut `index.html` and the earlier
/// preview renamed aside (`.preview.old-PID`) for good.
#[test]
fn ctrl_c_during_a_preview_leaves_the_earlier_one_in_place() {
    use std::time::{Duration, Instant};
    let job = JobDir::new();
    let preview = job.path().join("preview");
    job.run(&["preview", "job.toml"]).expect(0);
    let earlier = std::fs::read(preview.join("index.html")).unwrap();
    let rows: String = (0..300_000).map(|i| format!("u{i}@example.com,User {i}\n")).collect();
    job.write("r.csv", format!("email,name\n{rows}"));

    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mailshot"))
        .args(["preview", "job.toml"])
        .current_dir(job.path())
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The earlier preview is renamed aside once the handlers are in place, just before rendering starts.
    let aside = || files(job.path(), "").iter().any(|n| n.starts_with(".preview.old-"));
    let started = Instant::now();
    while !aside() {
        assert!(started.elapsed() < Duration::from_secs(20), "the preview never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let output = rx.recv_timeout(Duration::from_secs(30)).expect("the preview ends after Ctrl-C").unwrap();

    let run = crate::jobs_support::Run::from(output);
    run.expect(130).line_with(&["mailshot: interrupted: stopped before the preview was whole"]);
    assert_eq!(files(&preview, ""), ["index.html", "messages.mbox"]);
    assert!(std::fs::read(preview.join("index.html")).unwrap() == earlier, "the earlier page, byte for byte");
    assert!(!aside(), "nothing left aside");
}

/// A preview killed outright (SIGKILL, a power cut: no handler runs) leaves the earlier one renamed aside as
/// `.preview.old-PID`; the next preview deletes such a folder once its process is gone, when it holds only
/// preview files. One of a live process, or with a file of the user's in it, is left alone.
#[test]
fn a_preview_deletes_what_a_killed_one_left_aside() {
    let job = JobDir::new();
    let dead = job.path().join(".preview.old-999999999");
    let alive = job.path().join(format!(".preview.old-{}", std::process::id()));
    let mine = job.path().join(".preview.old-999999998");
    for dir in [&dead, &alive, &mine] {
        std::fs::create_dir(dir).unwrap();
        std::fs::write(dir.join("index.html"), "earlier").unwrap();
        std::fs::write(dir.join("messages.mbox"), "earlier").unwrap();
    }
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    job.run(&["preview", "job.toml"]).expect(0);
    assert!(!dead.exists(), "left aside by a process that is gone");
    assert!(alive.exists() && mine.join("notes.txt").exists(), "a live run's, or with a file of the user's");
}
