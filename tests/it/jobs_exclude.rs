//! `[recipients] exclude` (issue 19): suppressed rows are listed by `check` and `preview`, never sent, and
//! reported as `suppressed` with their list; a bad list names its file, line and column.

use crate::common::lab_env::lab;
use crate::common::lab_mail::Maildir;
use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::{JobDir, MESSAGE, SMTP};

const EXCLUDING: &str = "[recipients]\ncsv = \"r.csv\"\nname = \"name\"\nexclude = [\"lists/suppressed.csv\"]\n";

fn job_excluding(list: &str) -> JobDir {
    let job = JobDir::new();
    job.write("job.toml", format!("{SMTP}{MESSAGE}{EXCLUDING}"));
    job.write("lists/suppressed.csv", list);
    job
}

#[test]
fn check_lists_and_counts_suppressed_rows_and_exits_0() {
    let job = job_excluding("email,reason,date\nBOB@Example.COM,hard bounce 5.1.1,2026-11-02\n");
    job.run(&["check", "job.toml"])
        .expect(0)
        .line_with(&["note: r.csv:3: bob@example.com is suppressed by ", "lists/suppressed.csv; it is not sent"])
        .line_with(&["3 rows: 2 valid, 0 duplicates, 1 suppressed, 0 errors, 0 warnings"]);
}

#[test]
fn preview_writes_no_message_for_a_suppressed_row_and_says_why() {
    let job = job_excluding("email\ncy@example.com\n");
    let run = job.run(&["preview", "job.toml", "--out", "out", "--eml"]);
    run.expect(0).line_with(&["r.csv:4: cy@example.com is suppressed by"]).line_with(&["wrote 2 messages"]);
    let out = job.path().join("out");
    assert!(out.join("row-000002-ann@example.com.eml").exists());
    assert!(!out.join("row-000004-cy@example.com.eml").exists());
    let mbox = std::fs::read_to_string(out.join("messages.mbox")).unwrap();
    assert_eq!(mbox.matches("\nTo: ").count() + usize::from(mbox.starts_with("To: ")), 2, "{mbox}");
    assert!(!mbox.contains("cy@example.com"), "{mbox}");
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("r.csv:4: cy@example.com is suppressed by"), "{index}");
    job.run(&["preview", "job.toml", "--row", "4"]).expect(2).line_with(&["row 4", "suppressed by", "not sent"]);
}

#[test]
fn a_bad_list_is_an_error_naming_its_file_line_and_column() {
    let job = job_excluding("email,reason\nok@example.com,x\nnot-an-address,y\n");
    job.run(&["check", "job.toml"])
        .expect(2)
        .line_with(&["error: ", "lists/suppressed.csv:3: column `email`: invalid address \"not-an-address\""]);
    job.write("lists/suppressed.csv", "address\nann@example.com\n");
    job.run(&["check", "job.toml"]).expect(2).line_with(&["lists/suppressed.csv:1: no column named `email`"]);
    std::fs::remove_file(job.path().join("lists/suppressed.csv")).unwrap();
    job.run(&["check", "job.toml"]).expect(2).line_with(&["lists/suppressed.csv: cannot open: "]);
    // `send` checks first: a list it cannot read sends nothing.
    job.run(&["send", "job.toml", "--yes"]).expect(2).line_with(&["lists/suppressed.csv: cannot open: "]);
}

#[test]
fn a_second_campaign_with_exclude_sends_nothing_to_the_excluded_addresses() {
    let Some(lab) = lab("a_second_campaign_with_exclude_sends_nothing_to_the_excluded_addresses") else { return };
    let tag = unique_tag("exclude");
    let smtp = Smtp::lab_tls(&lab, &lab.password);
    let recipients = addresses(&tag, 6);
    let mut maildir = Maildir::mark(&lab);
    let first = SendJob::new(&tag, &smtp, recipients.clone(), "");
    first.send(&["--yes"]).expect(0);
    assert!(maildir.settle(&recipients, 6).values().all(|&n| n == 1));

    // Next month's campaign: the same list, two addresses now suppressed (one in another case).
    let next = SendJob::new(&format!("{tag}-2"), &smtp, recipients.clone(), "");
    let job = std::fs::read_to_string(next.path().join("job.toml")).unwrap();
    let job = job.replace("name = \"name\"\n", "name = \"name\"\nexclude = [\"suppressed.csv\"]\n");
    next.write("job.toml", job);
    let list = format!("email,reason\n{},bounced\n{},unsubscribed\n", recipients[1].to_uppercase(), recipients[4]);
    next.write("suppressed.csv", list);
    next.send(&["--yes"]).expect(0);

    let report = next.last_report().by_email();
    for (i, rcpt) in recipients.iter().enumerate() {
        let (status, reply) = (report[rcpt].status.as_str(), report[rcpt].reply.as_str());
        match i {
            1 | 4 => assert!(status == "suppressed" && reply.contains("suppressed.csv"), "{rcpt}: {status} {reply}"),
            _ => assert_eq!(status, "delivered", "{rcpt}"),
        }
    }
    let copies = maildir.settle(&recipients, 6 + 4);
    for (i, rcpt) in recipients.iter().enumerate() {
        let expected = if i == 1 || i == 4 { 1 } else { 2 };
        assert_eq!(copies.get(rcpt), Some(&expected), "copies of {rcpt} over both campaigns");
    }
}
