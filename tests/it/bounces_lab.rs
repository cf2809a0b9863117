//! `mailshot bounces` on real DSNs (issue 19): the lab's Postfix accepts mail for `bounce.example.test`,
//! fails it at delivery and returns an RFC 3464 report to the sender's Maildir. The reports are copied into
//! a Maildir of the test's own (the lab's is shared), read, and the next campaign excludes the addresses.

use crate::bounces::{maildir, mailshot};
use crate::common::lab_env::{lab, port, required};
use crate::common::lab_mail::{MailLog, Maildir};
use crate::common::send_job::{PASSWORD_ENV, SendJob, Smtp, addresses};
use crate::common::unique_tag;

#[test]
fn postfix_bounces_are_recorded_and_the_next_campaign_sends_nothing_to_them() {
    let Some(lab) = lab("postfix_bounces_are_recorded_and_the_next_campaign_sends_nothing_to_them") else { return };
    let tag = unique_tag("dsn");
    let mut lab_maildir = Maildir::mark(&lab);
    let dead: Vec<String> = (0..2).map(|i| format!("gone{i}-{tag}@bounce.example.test")).collect();
    let mut recipients = addresses(&tag, 3);
    recipients.splice(1..1, dead.clone());
    let smtp = Smtp::lab_tls(&lab, &lab.password);
    let job = SendJob::new(&tag, &smtp, recipients.clone(), "");
    // Accepted at the time (250 for all): the bounce comes later, as it does from a real recipient's server.
    job.send(&["--yes"]).expect(0);

    let reports = lab_maildir.settle(std::slice::from_ref(&job.from), 2);
    assert_eq!(reports.get(&job.from.to_ascii_lowercase()), Some(&2), "two DSNs to the sender");
    let box_dir = maildir(&job.path().join("bounce-box"), &lab_maildir.messages(&job.from));
    // The list is written before the journal: when it cannot be, nothing is recorded, so the next run
    // records every bounce (none is "already recorded" without being on the list).
    mailshot(&job, "bounces", &["--from", box_dir.to_str().unwrap(), "--suppress", "lists/dead.csv"])
        .expect(2)
        .line_with(&["lists/dead.csv"]);
    std::fs::create_dir_all(job.path().join("lists")).unwrap();
    mailshot(&job, "bounces", &["--from", box_dir.to_str().unwrap(), "--suppress", "lists/dead.csv"])
        .expect(0)
        .line_with(&["read 2 messages", "2 bounce reports, 0 auto-replies and 0 other messages skipped"])
        .line_with(&["recorded 2 hard and 0 soft bounces"])
        .line_with(&["added 2 addresses to lists/dead.csv"]);
    let csv = mailshot(&job, "status", &["--bounced"]).expect(0).stdout.clone();
    for (i, address) in dead.iter().enumerate() {
        let line = format!("{},{address},hard,5.1.1,X-Postfix; Mailbox does not exist (lab bounce),", i + 3);
        assert!(csv.contains(&line), "{line} in:\n{csv}");
    }

    // Next month: the same list, excluding what bounced.
    let log = MailLog::mark(&lab);
    let next = SendJob::new(&format!("{tag}-next"), &smtp, recipients.clone(), "");
    let toml = std::fs::read_to_string(next.path().join("job.toml")).unwrap();
    let list = job.path().join("lists/dead.csv");
    let exclude = format!("name = \"name\"\nexclude = [\"{}\"]\n", list.display());
    next.write("job.toml", toml.replace("name = \"name\"\n", &exclude));
    next.send(&["--yes"]).expect(0);
    let report = next.last_report().by_email();
    for rcpt in &recipients {
        let expected = if dead.contains(rcpt) { "suppressed" } else { "delivered" };
        assert_eq!(report[rcpt].status, expected, "{rcpt}: {:?}", report[rcpt]);
    }
    let sessions = log.sessions_of(&next.from, 3);
    let mails: u32 = sessions.iter().map(|s| s.mail.expect("a finished session")).sum();
    assert_eq!(mails, 3, "MAIL FROM only for the three live addresses: {sessions:#?}");
}

/// `mailshot bounces` with the job's password variable set (as `send` has it), nothing else.
fn bounces_with_password(job: &SendJob, password: &str, args: &[&str]) -> crate::jobs_support::Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mailshot"));
    command.arg("bounces").arg("job.toml").args(args).current_dir(job.path()).env_clear();
    command.env(PASSWORD_ENV, password).stdin(std::process::Stdio::null());
    crate::jobs_support::Run::from(command.output().unwrap())
}

#[test]
fn bounces_are_read_over_imap_from_the_labs_dovecot_without_changing_the_mailbox() {
    let test = "bounces_are_read_over_imap_from_the_labs_dovecot_without_changing_the_mailbox";
    let Some(lab) = lab(test) else { return };
    let Some(port) = required(test, port("MAILSHOT_LAB_IMAPS_PORT")) else { return };
    let tag = unique_tag("imap");
    let mut lab_maildir = Maildir::mark(&lab);
    let dead = format!("gone-{tag}@bounce.example.test");
    let recipients = vec![format!("live-{tag}@example.test"), dead.clone()];
    let job = SendJob::new(&tag, &Smtp::lab_tls(&lab, &lab.password), recipients, "");
    job.send(&["--yes"]).expect(0);
    lab_maildir.settle(std::slice::from_ref(&job.from), 1);

    let count = |sub: &str| std::fs::read_dir(lab.maildir.join(sub)).unwrap().count();
    let (new_before, cur_before) = (count("new"), count("cur"));
    let user = lab.user.replace('@', "%40");
    let url = format!("imaps://{user}@localhost:{port}/INBOX");
    // The job's [smtp] user is the mailbox's: its password is used; TLS is verified with [smtp] ca_file.
    let run = bounces_with_password(&job, &lab.password, &["--from", &url]);
    run.expect(0)
        .line_with(&["read ", &format!("messages from imaps://{}@localhost:{port}/INBOX", lab.user)])
        .line_with(&["recorded 1 hard and 0 soft bounces"])
        .line_with(&["added 1 addresses to", "suppressed.csv"]);
    assert!(
        !run.stdout.contains(&lab.password) && !run.stderr.contains(&lab.password),
        "the password is never printed"
    );
    let list = std::fs::read_to_string(job.path().join("suppressed.csv")).unwrap();
    assert_eq!(list.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect::<Vec<_>>(), [dead.as_str()]);
    // Read-only: Dovecot moved nothing out of new/ (where the other tests look).
    // (Other tests may deliver meanwhile, so new/ can only grow; cur/ is Dovecot's alone.)
    assert!(count("new") >= new_before);
    assert_eq!(count("cur"), cur_before, "nothing moved to cur/");

    // Again: nothing twice. A wrong password is refused without being printed.
    bounces_with_password(&job, &lab.password, &["--from", &url]).expect(0).line_with(&["recorded 0 hard"]);
    let wrong = bounces_with_password(&job, "not-the-password", &["--from", &url]);
    wrong.expect(2).line_with(&["LOGIN"]);
    assert!(!wrong.stderr.contains("not-the-password"), "{}", wrong.stderr);
}

#[test]
fn with_verp_postfix_returns_each_bounce_to_its_recipients_own_envelope_sender() {
    let Some(lab) = lab("with_verp_postfix_returns_each_bounce_to_its_recipients_own_envelope_sender") else { return };
    let tag = unique_tag("verp-lab");
    let mut lab_maildir = Maildir::mark(&lab);
    let dead = format!("gone-{tag}@bounce.example.test");
    let recipients = vec![format!("live-{tag}@example.test"), dead.clone()];
    let job = SendJob::new(&tag, &Smtp::lab_tls(&lab, &lab.password), recipients, "");
    let toml = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    let verp = format!("return_path = \"{tag}+{{{{ mailshot.recipient_token }}}}@example.test\"\n[recipients]");
    job.write("job.toml", toml.replacen("[recipients]", &verp, 1));
    job.send(&["--yes"]).expect(0);
    let id = job.last_report().by_email()[&dead].message_id.clone();
    let token = id.trim_start_matches('<').split('@').next().unwrap();

    // The bounce came back to the dead recipient's own envelope sender, so MAIL FROM was that address.
    let verp_address = format!("{tag}+{token}@example.test");
    let report = lab_maildir.first(&verp_address);
    assert!(report.contains("Content-Type: message/delivery-status") && report.contains(&dead), "{report}");
    let live_copy = lab_maildir.first(&format!("live-{tag}@example.test"));
    assert!(live_copy.starts_with(&format!("Return-Path: <{tag}+")), "{live_copy}");
    let box_dir = maildir(&job.path().join("bounce-box"), &[report]);
    mailshot(&job, "bounces", &["--from", box_dir.to_str().unwrap()]).expect(0).line_with(&["recorded 1 hard"]);
}

/// A real soft bounce: the lab's Postfix defers `delayed.example.test` at every attempt and, at the retry
/// after `delay_warning_time` (1 s in the lab), sends the sender an `Action: delayed` report (4.4.1).
#[test]
fn a_postfix_delay_warning_is_recorded_as_a_soft_bounce_and_not_suppressed() {
    let Some(lab) = lab("a_postfix_delay_warning_is_recorded_as_a_soft_bounce_and_not_suppressed") else { return };
    let tag = unique_tag("delay");
    let mut lab_maildir = Maildir::mark(&lab);
    let slow = format!("slow-{tag}@delayed.example.test");
    let recipients = vec![format!("live-{tag}@example.test"), slow.clone()];
    let job = SendJob::new(&tag, &Smtp::lab_tls(&lab, &lab.password), recipients, "");
    job.send(&["--yes"]).expect(0);
    // The first report for the sender is the delay warning (the final one comes after the 30 s lifetime).
    lab_maildir.settle(std::slice::from_ref(&job.from), 1);
    let reports = lab_maildir.messages(&job.from);
    let warning = reports.iter().find(|r| r.contains("Action: delayed")).unwrap_or_else(|| panic!("{reports:#?}"));
    assert!(warning.contains("Status: 4.4.1") && warning.contains(&slow), "{warning}");

    let box_dir = maildir(&job.path().join("bounce-box"), std::slice::from_ref(warning));
    mailshot(&job, "bounces", &["--from", box_dir.to_str().unwrap()])
        .expect(0)
        .line_with(&["recorded 0 hard and 1 soft bounces"]);
    let csv = mailshot(&job, "status", &["--bounced"]).expect(0).stdout.clone();
    assert!(csv.lines().any(|l| l.contains(&slow) && l.contains(",soft,4.4.1,")), "{csv}");
    let list = std::fs::read_to_string(job.path().join("suppressed.csv")).unwrap_or_default();
    assert!(!list.contains(&slow), "a soft bounce is not suppressed: {list}");
}
