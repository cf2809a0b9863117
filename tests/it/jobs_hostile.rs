//! Hostile and careless input (issue 11): each case used to leak a file, hang, crash or exhaust memory.
//! Now `check` and `send` exit 2 within seconds, naming the file, line or key, and nothing is sent.

use std::path::Path;
use std::time::Duration;

use crate::jobs_support::{JobDir, MESSAGE, RECIPIENTS, Run, SMTP, run_within};

/// A FIFO at `path` (nobody ever writes to it: opening it the ordinary way blocks for ever).
fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// `mailshot ARGS` in the job folder; it must end within a few seconds (killed otherwise).
fn quick(job: &JobDir, args: &[&str]) -> Run {
    let (run, took) = run_within(job.path(), args, Duration::from_secs(10));
    assert!(took < Duration::from_secs(3), "{args:?} took {took:?}");
    run
}

#[test]
fn devices_fifos_and_directories_are_refused_at_once_with_the_file_named() {
    // (the CSV, the text template, what the error says); `fifo` is made a FIFO.
    let cases = [
        ("/dev/zero", "t/mail.txt", "/dev/zero: is a character device, not a regular file"),
        ("fifo", "t/mail.txt", "fifo: is a FIFO (named pipe), not a regular file"),
        ("t", "t/mail.txt", "t: is a directory, not a regular file"),
        ("r.csv", "fifo", "fifo: is a FIFO (named pipe), not a regular file"),
    ];
    for (csv, text, expected) in cases {
        let job = JobDir::new();
        mkfifo(&job.path().join("fifo"));
        let message = MESSAGE.replace("t/mail.txt", text);
        job.write("job.toml", format!("{SMTP}{message}[recipients]\ncsv = \"{csv}\"\nname = \"name\"\n"));
        quick(&job, &["check", "job.toml"]).expect(2).line_with(&["error: ", expected]);
        quick(&job, &["send", "job.toml", "--yes"]).expect(2).line_with(&[expected]);
        quick(&job, &["preview", "job.toml"]).expect(2).line_with(&[expected]);
    }
}

#[test]
fn a_fifo_as_password_file_or_ca_file_stops_send_at_once() {
    for key in ["password_file", "ca_file"] {
        let job = JobDir::new();
        mkfifo(&job.path().join("secret"));
        let smtp = format!("{SMTP}username = \"u\"\n{key} = \"secret\"\n");
        let smtp = if key == "ca_file" { format!("{smtp}password_env = \"NOPE\"\n") } else { smtp };
        job.write("job.toml", format!("{smtp}{MESSAGE}{RECIPIENTS}"));
        quick(&job, &["send", "job.toml", "--yes"]).expect(2).line_with(&[key, "secret: is a FIFO"]);
    }
}

#[test]
fn an_attachment_that_is_a_fifo_or_a_device_is_a_row_error() {
    let job = JobDir::new();
    let message = MESSAGE.replace("[message]\n", "[message]\nattachments = [\"{{ file }}\"]\n");
    job.write("job.toml", format!("{SMTP}{message}{RECIPIENTS}"));
    mkfifo(&job.path().join("files/pipe.pdf"));
    job.write("files/ok.pdf", "%PDF");
    job.write("r.csv", "email,name,file\na@example.com,A,files/pipe.pdf\nb@example.com,B,files/ok.pdf\n");
    quick(&job, &["check", "job.toml"]).expect(2).line_with(&["r.csv:2: ", "\"files/pipe.pdf\" is not a regular file"]);
}

/// A job whose attachment path is a CSV cell, with a password file, a journal, a kept journal and a report.
fn job_attaching_cells(extra: &str, cells: &[&str]) -> JobDir {
    let job = JobDir::new();
    let smtp = format!("{SMTP}username = \"u\"\npassword_file = \"smtp.pw\"\n");
    let message = MESSAGE.replace("[message]\n", &format!("[message]\nattachments = [\"{{{{ invoice }}}}\"]\n{extra}"));
    job.write("job.toml", format!("{smtp}{message}{RECIPIENTS}"));
    job.write("smtp.pw", "hunter2\n");
    job.write("files/ok.pdf", "%PDF");
    job.write("job.journal.jsonl", "");
    job.write("job.journal.20260101T000000Z.jsonl", "");
    job.write("reports/2026-11-02T10-00-00Z.csv", "row,email\n2,ann@example.com\n");
    let rows: String = cells.iter().enumerate().map(|(i, c)| format!("r{i}@example.com,R{i},{c}\n")).collect();
    job.write("r.csv", format!("email,name,invoice\n{rows}"));
    job
}

#[test]
fn a_csv_cell_cannot_attach_the_jobs_own_files() {
    let cells = [
        "smtp.pw",
        "job.toml",
        "r.csv",
        "t/mail.html",
        "job.journal.jsonl",
        "job.journal.20260101T000000Z.jsonl",
        "reports/2026-11-02T10-00-00Z.csv",
        "files/ok.pdf",
    ];
    for extra in ["", "attachments_dir = \".\"\n"] {
        let job = job_attaching_cells(extra, &cells);
        let run = quick(&job, &["check", "job.toml"]);
        run.expect(2);
        for (line, role) in [
            (2, "the job's password_file"),
            (3, "the job file"),
            (4, "the job's recipients CSV"),
            (5, "the job's template ([message] html)"),
            (6, "a journal of the job"),
            (7, "a journal of the job"),
            (8, "a report of the job"),
        ] {
            run.line_with(&[&format!("r.csv:{line}: "), role, "never attached"]);
        }
        run.line_with(&["8 rows: 1 valid", "7 errors"]);
        quick(&job, &["preview", "job.toml"]).expect(2).line_with(&["wrote 1 messages"]);
        let previews: Vec<String> = std::fs::read_dir(job.path().join("preview"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        assert!(previews.iter().all(|p| !p.contains("aHVudGVyMg")), "the password went into a preview (base64)");
    }
}

#[test]
fn outside_attachments_dir_is_refused_and_a_missing_one_is_a_job_error() {
    let job = job_attaching_cells("", &["files/ok.pdf", "t/mail.txt", "../x.pdf"]);
    job.write("notes.pdf", "%PDF");
    job.write("r.csv", "email,name,invoice\na@example.com,A,files/ok.pdf\nb@example.com,B,notes.pdf\n");
    quick(&job, &["check", "job.toml"])
        .expect(2)
        .line_with(&["r.csv:3: ", "\"notes.pdf\" is outside attachments_dir (files)"]);
    let job = job_attaching_cells("attachments_dir = \"docs\"\n", &["files/ok.pdf"]);
    quick(&job, &["check", "job.toml"]).expect(2).line_with(&["job.toml:", "[message] attachments_dir: ", "docs"]);
}

#[test]
fn a_template_cannot_read_the_environment_the_clock_or_randomness() {
    let job = JobDir::new();
    job.write("t/mail.txt", "Hi {{ name }}\n{{ get_env(name=\"MAILSHOT_PASSWORD\") }}\n");
    job.write("t/mail.html", "<p>{{ now() }} {{ get_random(end=9) }}</p>");
    let run = quick(&job, &["check", "job.toml"]);
    run.expect(2).line_with(&["t/mail.txt:2: `get_env()` reads the environment"]);
    run.line_with(&["t/mail.html:1: `now()` reads the clock"]).line_with(&["t/mail.html:1: `get_random()`"]);
    run.line_with(&["messages not built"]);
}

#[test]
fn a_column_named_mailshot_is_refused_it_holds_mailshots_own_values() {
    let job = JobDir::new();
    job.write("r.csv", "email,name,mailshot\na@example.com,A,x\n");
    quick(&job, &["check", "job.toml"]).expect(2).line_with(&["r.csv:1: column `mailshot` is reserved"]);
}
