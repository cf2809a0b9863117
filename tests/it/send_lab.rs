//! `mailshot send` against the Postfix lab (issue 5): a pool of reused TLS sessions delivering each message
//! once, the lab's fault addresses in one run, and the failures that stop a whole job.

use std::time::{Duration, Instant};

use crate::common::lab_env::{Lab, lab};
use crate::common::lab_mail::{MailLog, Maildir, max_concurrent};
use crate::common::send_job::{SendJob, Smtp, addresses, summary_count};
use crate::common::unique_tag;

#[test]
fn a_pool_of_four_tls_sessions_delivers_300_personalised_messages_once_each() {
    let Some(lab) = lab("a_pool_of_four_tls_sessions_delivers_300_personalised_messages_once_each") else { return };
    let tag = unique_tag("pool");
    let (log, mut maildir) = (MailLog::mark(&lab), Maildir::mark(&lab));
    let smtp = Smtp::lab_tls(&lab, &lab.password).with("connections = 4").with("max_messages_per_connection = 50");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 300), "");

    let run = job.send(&["--yes"]);
    run.expect(0);
    assert_eq!(summary_count(&run.stdout, "delivered"), 300, "{}", run.stdout);
    let report = job.last_report().by_email();

    let copies = maildir.settle(&job.recipients, 300);
    for (i, rcpt) in job.recipients.iter().enumerate() {
        assert_eq!(copies.get(rcpt), Some(&1), "copies of {rcpt}");
        let row = &report[rcpt];
        assert_eq!((row.row, row.status.as_str(), row.code, row.attempts), (i as u64 + 2, "delivered", Some(250), 1));
        assert!(row.reply.contains("queued as"), "{row:?}");
        let text = &maildir.messages(rcpt)[0];
        let parsed = mail_parser::MessageParser::default().parse(text.as_bytes()).unwrap();
        let (subject, lines) = job.personalised(i);
        assert_eq!(parsed.subject(), Some(subject.as_str()), "{text}");
        let body = parsed.body_text(0).unwrap();
        assert!(lines.iter().all(|l| body.contains(l.as_str())), "{lines:?} in {body:?}");
        assert_eq!(parsed.message_id(), Some(row.message_id.as_str()), "the report names the Message-ID sent");
    }

    let sessions = log.sessions_of(&job.from, 300);
    let mails: u32 = sessions.iter().map(|s| s.mail.expect("a finished session")).sum();
    assert_eq!(mails, 300, "one MAIL per message: {sessions:#?}");
    assert!(sessions.iter().all(|s| s.service == "lab/tls" && s.mail <= Some(50)), "{sessions:#?}");
    eprintln!("300 messages over {} sessions, at most {} at once", sessions.len(), max_concurrent(&sessions));
    assert!(max_concurrent(&sessions) <= 4, "more than 4 sessions at once: {sessions:#?}");
    // 300 messages at most 50 per session: at least 6 sessions; reused, so at most 4 × 6.
    assert!((6..=24).contains(&sessions.len()), "{} sessions for 300 messages: {sessions:#?}", sessions.len());
}

/// (address, status, code, enhanced code, attempts) for each lab fault address.
const FAULTS: [(&str, &str, u16, &str, u32); 4] = [
    ("rcpt-421@example.test", "deferred", 421, "4.7.0", 3),
    ("rcpt-tempfail@example.test", "deferred", 450, "4.2.0", 3),
    ("rcpt-reject@example.test", "failed", 550, "5.1.1", 1),
    ("rcpt-slow@example.test", "delivered", 250, "2.0.0", 1),
];

#[test]
fn fault_addresses_settle_as_the_policy_says_and_spare_everyone_else() {
    let Some(lab) = lab("fault_addresses_settle_as_the_policy_says_and_spare_everyone_else") else { return };
    let tag = unique_tag("faults");
    let (log, mut maildir) = (MailLog::mark(&lab), Maildir::mark(&lab));
    // One connection: every message after the 421 can only be delivered on a replacement session.
    let mut recipients = addresses(&tag, 24);
    for (i, (address, ..)) in FAULTS.iter().enumerate() {
        recipients.insert(2 + i * 6, (*address).to_owned());
    }
    let smtp = Smtp::lab_tls(&lab, &lab.password).with("connections = 1");
    let job = SendJob::new(&tag, &smtp, recipients, "");

    let run = job.send(&["--yes"]);
    run.expect(1);
    let report = job.last_report().by_email();
    for (address, status, code, enhanced, attempts) in FAULTS {
        let row = &report[address];
        let got = (row.status.as_str(), row.code, row.enhanced.as_str(), row.attempts);
        assert_eq!(got, (status, Some(code), enhanced, attempts), "{row:?}");
    }
    let normal: Vec<String> = job.recipients.iter().filter(|r| r.contains(&tag)).cloned().collect();
    assert!(normal.iter().all(|r| report[r].status == "delivered" && report[r].attempts == 1), "{report:#?}");

    let copies = maildir.settle(&normal, normal.len());
    assert!(normal.iter().all(|r| copies.get(r) == Some(&1)), "{copies:?}");
    let slow_row = job.recipients.iter().position(|r| r.starts_with("rcpt-slow@")).unwrap();
    let slow_code = job.personalised(slow_row).1[1].clone();
    let slow = maildir.messages("rcpt-slow@example.test").into_iter().filter(|m| m.contains(&slow_code)).count();
    assert_eq!(slow, 1, "the slow recipient's message, delivered once");

    // The 421 closed the session (three times); a new one took over and carried the rest. (A session that
    // carried nothing of ours before its 421 cannot be told apart in the log: only two are certain.)
    let sessions = log.sessions_of(&job.from, normal.len() + 1);
    assert!(sessions.len() >= 2, "{sessions:#?}");
    assert!(max_concurrent(&sessions) <= 1, "{sessions:#?}");
}

/// Runs a job that must stop at its first contact with the server: exit 3, nothing delivered, every row
/// reported not sent, quickly (no retry loop).
fn assert_stops_at_once(lab: &Lab, job: &SendJob, why: &str) {
    let mut maildir = Maildir::mark(lab);
    let started = Instant::now();
    let run = job.send(&["--yes"]);
    run.expect(3).line_with(&["the job stopped", why]);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let report = job.last_report();
    assert_eq!(report.count("not sent"), job.recipients.len(), "{report:#?}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(maildir.count(&job.recipients.iter().cloned().collect()).is_empty(), "something was delivered");
}

#[test]
fn a_wrong_password_stops_the_job_with_exit_3_and_no_retry_loop() {
    let Some(lab) = lab("a_wrong_password_stops_the_job_with_exit_3_and_no_retry_loop") else { return };
    let tag = unique_tag("badpw");
    let log = MailLog::mark(&lab);
    let smtp = Smtp::lab_tls(&lab, "not-the-password").with("connections = 4");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 40), "");
    assert_stops_at_once(&lab, &job, "login failed");
    std::thread::sleep(Duration::from_millis(300));
    // One try per connection at most (other tests may fail a login meanwhile: some slack, not a loop).
    let failures = log.auth_failures(&lab.user);
    assert!((1..=8).contains(&failures), "{failures} failed logins");
}

/// Postfix refusing the login (535): the run's first words after the check are the cause, then the summary
/// counts every recipient "not sent", as `status` does afterwards.
#[test]
fn a_wrong_password_is_said_first_and_every_recipient_counted_not_sent() {
    let Some(lab) = lab("a_wrong_password_is_said_first_and_every_recipient_counted_not_sent") else { return };
    let tag = unique_tag("badpw-said");
    let smtp = Smtp::lab_tls(&lab, "not-the-password").with("connections = 2");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 30), "");
    let (code, out) = job.send_interleaved(&["--yes"]);
    assert_eq!(code, 3, "{out}");
    let lines: Vec<&str> = out.lines().map(crate::common::untimed).collect();
    assert!(lines[0].starts_with("30 rows: 30 valid"), "the check's line first:\n{out}");
    let said = lines.iter().position(|l| l.starts_with("mailshot:"));
    let stopped = lines.iter().position(|l| l.starts_with("mailshot: the job stopped: ") && l.contains("535"));
    let summary = lines.iter().position(|l| *l == "summary");
    assert!(said.is_some() && said == stopped && stopped < summary, "then the cause, before the summary:\n{out}");
    assert_eq!((summary_count(&out, "not sent"), summary_count(&out, "delivered")), (30, 0), "{out}");
    crate::send_status::status(&job, &[]).expect(0).line_with(&["not sent   30"]);
}

#[test]
fn a_sender_refused_at_mail_stops_the_job_with_exit_3() {
    let Some(lab) = lab("a_sender_refused_at_mail_stops_the_job_with_exit_3") else { return };
    let tag = unique_tag("mailrej");
    let smtp = Smtp::lab_tls(&lab, &lab.password).with("connections = 2");
    let job = SendJob::with_from(&tag, "mail-reject@example.test", &smtp, addresses(&tag, 40), "");
    assert_stops_at_once(&lab, &job, "553");
    let report = job.last_report();
    assert!(report.rows.iter().any(|r| r.code == Some(553) && r.enhanced == "5.7.1"), "{report:#?}");
}
