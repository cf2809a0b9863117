//! `mailshot bounces` (issue 19) on crafted reports (the odd cases: a DSN without the original message, a
//! headers-only delay, an auto-reply, a forged report, a person's reply), read from a Maildir and an mbox:
//! what is recorded, what is suppressed, what is counted and skipped, and that reading again adds nothing.
//! Real reports from the lab's Postfix are in `bounces_lab`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::Run;

/// `mailshot CMD job.toml ARGS` in the job's folder, with an empty environment.
pub fn mailshot(job: &SendJob, cmd: &str, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailshot"));
    command.arg(cmd).arg("job.toml").args(args).current_dir(job.path()).env_clear().stdin(Stdio::null());
    Run::from(command.output().unwrap())
}

/// What a report returns of the message that bounced.
pub enum Original<'a> {
    Nothing,
    Headers(&'a str),
    Message(&'a str),
}

/// A multipart/report DSN (RFC 3464) to `to`, about `recipient`.
pub fn dsn(id: Option<&str>, to: &str, recipient: &str, action: &str, status: &str, original: Original<'_>) -> String {
    let id = id.map(|id| format!("Message-ID: <{id}>\n")).unwrap_or_default();
    let original = match original {
        Original::Nothing => String::new(),
        Original::Headers(mid) => {
            format!("--B\nContent-Type: text/rfc822-headers\n\nFrom: {to}\nTo: {recipient}\nMessage-ID: <{mid}>\n\n")
        }
        Original::Message(mid) => format!(
            "--B\nContent-Type: message/rfc822\n\nFrom: {to}\nTo: {recipient}\nSubject: Hi\nMessage-ID: <{mid}>\n\nHello\n\n"
        ),
    };
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nTo: {to}\nSubject: Undelivered Mail\n{id}\
         Auto-Submitted: auto-replied\nMIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
         --B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n\
         --B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n\
         Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n\
         Diagnostic-Code: smtp; {status} from the test\n\n{original}--B--\n"
    )
}

/// A Maildir at `dir` holding `messages` in `new/`.
pub fn maildir(dir: &Path, messages: &[String]) -> PathBuf {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(dir.join("new").join(format!("1790000000.M{i}P1.test")), m).unwrap();
    }
    dir.to_owned()
}

fn mbox(path: &Path, messages: &[String]) {
    let text: String = messages.iter().map(|m| format!("From MAILER-DAEMON Wed Dec  2 09:00:00 2026\n{m}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn reports_are_matched_recorded_and_suppressed_once_and_the_rest_is_counted_and_skipped() {
    let server = MailServer::start();
    let tag = unique_tag("bounces");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 5), "");
    let r = &job.recipients;
    job.send(&["--yes"]).expect(0);
    let ids = job.last_report().by_email();
    let mid = |i: usize| ids[&r[i]].message_id.trim_matches(['<', '>']).to_owned();
    let from = &job.from;

    let messages = [
        // Forwarded on to an address mailshot never saw: found by the Message-ID it returns.
        dsn(Some("d0@mx"), from, "fwd-elsewhere@example.net", "failed", "5.1.1", Original::Message(&mid(0))),
        // No original returned and no Message-ID of its own: found by address (in another case).
        dsn(None, from, &r[1].to_uppercase(), "failed", "5.2.1", Original::Nothing),
        dsn(Some("d2@mx"), from, &r[2], "delayed", "4.4.7", Original::Headers(&mid(2))),
        format!("From: {}\nTo: {from}\nSubject: Out of office\nAuto-Submitted: auto-replied\n\nAway.\n", r[3]),
        // Forged, or another job's: an address this job never sent to.
        dsn(Some("d4@mx"), from, &format!("stranger-{tag}@example.test"), "failed", "5.1.1", Original::Nothing),
        format!("From: {}\nTo: {from}\nSubject: Re: Hi\n\nThanks! (Action: failed, Status: 5.1.1)\n", r[4]),
    ];
    let inbox = maildir(&job.path().join("bounce-box"), &messages);
    let journal_lines = || std::fs::read_to_string(job.path().join("job.journal.jsonl")).unwrap().lines().count();
    let before = journal_lines();

    let run = mailshot(&job, "bounces", &["--from", inbox.to_str().unwrap()]);
    run.expect(0)
        .line_with(&["read 6 messages from", "4 bounce reports, 1 auto-replies and 1 other messages skipped"])
        .line_with(&["recorded 2 hard and 1 soft bounces in", "job.journal.jsonl"])
        .line_with(&["1 about addresses this job did not send to (ignored)"])
        .line_with(&["added 2 addresses to ", "suppressed.csv"]);
    assert_eq!(journal_lines(), before + 3);
    let list = std::fs::read_to_string(job.path().join("suppressed.csv")).unwrap();
    let listed: Vec<&str> = list.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(listed, [r[0].as_str(), r[1].as_str()], "{list}");
    assert!(list.starts_with("email,reason,status,date,report\n") && list.contains(",5.2.1,"), "{list}");

    mailshot(&job, "status", &[]).expect(0).line_with(&["bounced    3 (hard 2, soft 1)"]).line_with(&["delivered  5"]);
    let csv = mailshot(&job, "status", &["--bounced"]).expect(0).stdout.clone();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["row", "email", "bounce", "status", "diagnostic", "report"]);
    let rows: Vec<Vec<String>> =
        reader.records().map(|r| r.unwrap().iter().take(4).map(str::to_owned).collect()).collect();
    let row = |i: usize, kind: &str, status: &str| vec![(i + 2).to_string(), r[i].clone(), kind.into(), status.into()];
    assert_eq!(rows, [row(0, "hard", "5.1.1"), row(1, "hard", "5.2.1"), row(2, "soft", "4.4.7")], "{csv}");

    // Again, from the same Maildir and then from an mbox of the same reports: nothing is added twice.
    for from in [inbox.clone(), job.path().join("bounces.mbox")] {
        mbox(&job.path().join("bounces.mbox"), &messages);
        mailshot(&job, "bounces", &["--from", from.to_str().unwrap()])
            .expect(0)
            .line_with(&["read 6 messages"])
            .line_with(&["recorded 0 hard and 0 soft bounces"])
            .line_with(&["3 already recorded (not added again)"])
            .line_with(&["added 0 addresses"]);
    }
    assert_eq!(journal_lines(), before + 3);
    assert_eq!(std::fs::read_to_string(job.path().join("suppressed.csv")).unwrap(), list);
}

#[test]
fn a_bounce_is_a_run_end_of_run_0_and_status_still_reads_the_runs() {
    // That an older mailshot's replay reads this line as a run end of no run is the unit test
    // `a_bounce_record_reads_as_a_run_end_of_no_run_to_a_mailshot_from_before_bounces`, against a copy of the
    // record type before bounces.
    let server = MailServer::start();
    let tag = unique_tag("bounces-old");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 2), "");
    job.send(&["--yes"]).expect(0);
    let report = dsn(Some("o1@mx"), &job.from, &job.recipients[0], "failed", "5.1.1", Original::Nothing);
    let inbox = maildir(&job.path().join("box"), &[report]);
    mailshot(&job, "bounces", &["--from", inbox.to_str().unwrap()]).expect(0).line_with(&["recorded 1 hard"]);
    let journal = std::fs::read_to_string(job.path().join("job.journal.jsonl")).unwrap();
    assert!(journal.lines().last().unwrap().starts_with(r#"{"t":"run_end","run":0,"#), "{journal}");
    mailshot(&job, "status", &[]).expect(0).line_with(&["last run   #1", "exit 0"]);
}

#[test]
fn a_job_never_sent_or_a_mailbox_that_is_not_one_is_an_input_error() {
    let server = MailServer::start();
    let tag = unique_tag("bounces-errors");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 1), "");
    let inbox = maildir(&job.path().join("box"), &[]);
    mailshot(&job, "bounces", &["--from", inbox.to_str().unwrap()]).expect(2).line_with(&["no journal yet"]);
    job.send(&["--yes"]).expect(0);
    mailshot(&job, "bounces", &["--from", "missing"]).expect(2).line_with(&["missing: cannot read: "]);
    std::fs::create_dir(job.path().join("plain")).unwrap();
    mailshot(&job, "bounces", &["--from", "plain"]).expect(2).line_with(&["plain: a folder without cur/ and new/"]);
    mailshot(&job, "bounces", &["--from", "imap://u@localhost/INBOX"]).expect(2).line_with(&["use `imaps://`"]);
    // An IMAP user other than [smtp]'s (here none) needs a password source of its own.
    mailshot(&job, "bounces", &["--from", "imaps://u@localhost:1/INBOX"]).expect(2).line_with(&["--password-env"]);
    // An empty mailbox: nothing to do, and the default list is created for `exclude` to name.
    mailshot(&job, "bounces", &["--from", inbox.to_str().unwrap()]).expect(0).line_with(&["read 0 messages"]);
    assert_eq!(
        std::fs::read_to_string(job.path().join("suppressed.csv")).unwrap(),
        "email,reason,status,date,report\n"
    );
}

#[test]
fn with_verp_a_report_that_names_nothing_else_is_matched_by_the_address_it_came_back_to() {
    let server = MailServer::start();
    let tag = unique_tag("verp");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 3), "");
    let toml = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    let verp = "return_path = \"bounces+{{ mailshot.recipient_token }}@example.test\"\n[recipients]";
    job.write("job.toml", toml.replacen("[recipients]", verp, 1));
    job.send(&["--yes"]).expect(0);
    let ids = job.last_report().by_email();
    let token =
        |i: usize| ids[&job.recipients[i]].message_id.trim_start_matches('<').split('@').next().unwrap().to_owned();
    // (The envelope sender itself is checked against the lab's Postfix, in `bounces_lab`.)

    // Forwarded, the original not returned: only the envelope address the report came back to names row 3.
    let verp_address = format!("bounces+{}@example.test", token(1));
    let report = dsn(Some("v1@mx"), &verp_address, "someone@forwarded.example", "failed", "5.1.1", Original::Nothing);
    let inbox = maildir(&job.path().join("box"), &[report]);
    mailshot(&job, "bounces", &["--from", inbox.to_str().unwrap()])
        .expect(0)
        .line_with(&["recorded 1 hard and 0 soft"]);
    let csv = mailshot(&job, "status", &["--bounced"]).expect(0).stdout.clone();
    assert!(csv.contains(&format!("\n3,{},hard,5.1.1,", job.recipients[1])), "{csv}");
}
