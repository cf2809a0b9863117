//! One definition of a row's line number (issue 11): the physical line on which its record starts, the same
//! for LF and CRLF files, blank lines and quoted cells spanning lines; in check, preview names, `--row`,
//! the send report and `status --failed`.

use std::process::{Command, Stdio};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::JobDir;

/// Line 2 Ann, line 3 a bad address, line 4 blank, lines 5–6 Bob (a quoted note with a line break), line 7 Cy.
fn rows(eol: &str) -> String {
    format!(
        "email,name,note{eol}ann@example.com,Ann,{eol}not-an-address,Bad,{eol}{eol}bob@example.com,Bob,\"two{eol}lines\"{eol}cy@example.com,Cy,{eol}"
    )
}

#[test]
fn check_preview_and_row_name_the_same_lines_for_lf_and_crlf() {
    for eol in ["\n", "\r\n"] {
        let job = JobDir::new();
        job.write("r.csv", rows(eol));
        job.run(&["check", "job.toml"]).expect(2).line_with(&["r.csv:3: column `email`", "not-an-address"]);
        job.run(&["preview", "job.toml", "--eml"]).expect(2).line_with(&["r.csv:3: column `email`"]);
        let mut names: Vec<String> = std::fs::read_dir(job.path().join("preview"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".eml"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["row-000002-ann@example.com.eml", "row-000005-bob@example.com.eml", "row-000007-cy@example.com.eml"],
            "{eol:?}"
        );
        let row = job.run(&["preview", "job.toml", "--row", "7"]);
        assert!(row.expect(0).stdout.contains("To: \"Cy\" <cy@example.com>"), "{eol:?}: {}", row.stdout);
    }
}

#[test]
fn the_report_and_status_failed_name_the_same_lines_for_crlf() {
    let server = MailServer::start();
    let tag = unique_tag("lines");
    let recipients = addresses(&tag, 3);
    let job = SendJob::new(&tag, &Smtp::scripted(&server), recipients.clone(), "");
    let [a, b, c] = [&recipients[0], &recipients[1], &recipients[2]];
    job.write(
        "recipients.csv",
        format!("email,name,code,note\r\n{a},A,1,\r\n\r\n{b},B,2,\"two\r\nlines\"\r\n{c},C,3,\r\n"),
    );
    server.reject(c, "550 5.1.1 No such user", u32::MAX);
    job.send(&["--yes"]).expect(1);
    let report = job.last_report().by_email();
    assert_eq!([report[a].row, report[b].row, report[c].row], [2, 4, 6], "{report:?}");

    let mut command = Command::new(env!("CARGO_BIN_EXE_mailshot"));
    command.args(["status", "job.toml", "--failed"]).current_dir(job.path()).env_clear().stdin(Stdio::null());
    let failed = String::from_utf8(command.output().unwrap().stdout).unwrap();
    let line = failed.lines().nth(1).unwrap_or_default();
    assert!(line.starts_with(&format!("6,{c},550,")), "{failed}");
}

#[test]
fn bare_cr_line_ends_give_lines_or_are_refused_never_line_1_for_every_row() {
    // The csv crate ends a record at a bare CR (classic Mac, some exports); LineCounter counted only LF, so
    // every row was "line 1": check named the bad address at r.csv:1, preview wrote row-000001-ann….eml,
    // row-000001-bob….eml, …, and `--row 1` picked one of them. A CR that no LF follows now ends a line too.
    let job = JobDir::new();
    job.write("r.csv", rows("\r"));
    let check = job.run(&["check", "job.toml"]);
    check.expect(2);
    assert!(!check.stdout.contains("r.csv:1: column `email`"), "a row at line 1:\n{}", check.stdout);
    job.run(&["preview", "job.toml", "--eml"]);
    let names: Vec<String> = std::fs::read_dir(job.path().join("preview"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    assert!(names.iter().all(|n| !n.starts_with("row-000001-")), "{names:?}");
}
