//! `[smtp] window` against real servers: the lab's Postfix (CHUNKING since 3.4; TLS + AUTH, its fault
//! addresses in the middle of windows) and aiosmtpd's chunking listener (a second BDAT implementation, with
//! a provider's limit of 7 messages per session), and a server without CHUNKING, which gets DATA.

use crate::common::lab_aiosmtpd::{Mode, aiosmtpd};
use crate::common::lab_env::lab;
use crate::common::lab_mail::{MailLog, Maildir};
use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

/// A body whose lines start with dots, which BDAT sends as they are and DATA would stuff.
const DOTTED_BODY: &str = "Hello {{ name }},\n.a line that starts with a dot\n..and two\nyour code is {{ code }}.\n";

#[test]
fn windows_of_8_over_4_tls_sessions_deliver_200_messages_once_each_by_bdat() {
    let Some(lab) = lab("windows_of_8_over_4_tls_sessions_deliver_200_messages_once_each_by_bdat") else { return };
    let tag = unique_tag("window-pool");
    let (log, mut maildir) = (MailLog::mark(&lab), Maildir::mark(&lab));
    let smtp = Smtp::lab_tls(&lab, &lab.password)
        .with("connections = 4")
        .with("window = 8")
        .with("max_messages_per_connection = 60");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 200), "");
    job.write("templates/body.txt", DOTTED_BODY);

    job.send(&["--yes"]).expect(0);
    let report = job.last_report().by_email();
    let copies = maildir.settle(&job.recipients, 200);
    for (i, rcpt) in job.recipients.iter().enumerate() {
        assert_eq!(copies.get(rcpt), Some(&1), "copies of {rcpt}");
        assert_eq!((report[rcpt].status.as_str(), report[rcpt].attempts), ("delivered", 1), "{:?}", report[rcpt]);
        let text = &maildir.messages(rcpt)[0];
        let (subject, lines) = job.personalised(i);
        assert!(text.contains(&subject) && lines.iter().all(|l| text.contains(l.as_str())), "{rcpt}: {text}");
        assert!(text.contains("\n.a line that starts with a dot\n..and two\n"), "{rcpt}: dots changed: {text}");
    }
    let sessions = log.sessions_of(&job.from, 200);
    let (mails, bdats): (u32, u32) =
        sessions.iter().fold((0, 0), |(m, b), s| (m + s.mail.unwrap_or(0), b + s.bdat.unwrap_or(0)));
    assert_eq!((mails, bdats), (200, 200), "one MAIL and one BDAT per message: {sessions:#?}");
    assert!(sessions.iter().all(|s| s.service == "lab/tls" && s.mail <= Some(60)), "{sessions:#?}");
}

/// (address, status, code, attempts): the lab's fault addresses, each in the middle of a window of 8 on one
/// connection. The `421` ends its session with messages in flight behind it: those go again on the next
/// session without an attempt counted, so every ordinary recipient is delivered once at its first attempt.
const FAULTS: [(&str, &str, u16, u32); 4] = [
    ("rcpt-421@example.test", "deferred", 421, 3),
    ("rcpt-tempfail@example.test", "deferred", 450, 3),
    ("rcpt-reject@example.test", "failed", 550, 1),
    ("rcpt-slow@example.test", "delivered", 250, 1),
];

#[test]
fn fault_addresses_in_the_middle_of_windows_settle_as_with_data() {
    let Some(lab) = lab("fault_addresses_in_the_middle_of_windows_settle_as_with_data") else { return };
    let tag = unique_tag("window-faults");
    let mut maildir = Maildir::mark(&lab);
    let mut recipients = addresses(&tag, 40);
    for (i, (address, ..)) in FAULTS.iter().enumerate() {
        recipients.insert(3 + i * 9, (*address).to_owned());
    }
    let smtp = Smtp::plain(lab.plain_port).with("connections = 1").with("window = 8");
    let job = SendJob::new(&tag, &smtp, recipients, "");

    job.send(&["--yes"]).expect(1);
    let report = job.last_report().by_email();
    for (address, status, code, attempts) in FAULTS {
        let row = &report[address];
        assert_eq!((row.status.as_str(), row.code, row.attempts), (status, Some(code), attempts), "{row:?}");
    }
    let normal: Vec<String> = job.recipients.iter().filter(|r| r.contains(&tag)).cloned().collect();
    let late: Vec<_> =
        normal.iter().filter(|r| (report[*r].status.as_str(), report[*r].attempts) != ("delivered", 1)).collect();
    assert!(late.is_empty(), "not delivered at the first attempt: {late:?}");
    let copies = maildir.settle(&normal, normal.len());
    assert!(normal.iter().all(|r| copies.get(r) == Some(&1)), "{copies:?}");
}

/// aiosmtpd's chunking listener: its own BDAT reader, and `421 4.7.0` at the 8th MAIL of a session, which
/// a window of 8 always reaches with messages in flight behind it.
#[test]
fn a_second_bdat_server_with_a_limit_per_session_gets_every_message_once() {
    let Some(aio) = aiosmtpd("a_second_bdat_server_with_a_limit_per_session_gets_every_message_once") else { return };
    let _serial = Mode::Chunking.serial();
    let tag = unique_tag("window-aio");
    let store = aio.store(Mode::Chunking);
    let smtp = aio.smtp(Mode::Chunking).with("connections = 2").with("window = 8");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 60), "[retry]\n");
    job.write("templates/body.txt", DOTTED_BODY);

    let run = job.send(&["--yes"]);
    run.expect(0);
    let report = job.last_report();
    let late: Vec<_> = report.rows.iter().filter(|r| (r.status.as_str(), r.attempts) != ("delivered", 1)).collect();
    assert!(late.is_empty(), "not delivered at the first attempt: {late:#?}");
    let mut copies = store.by_rcpt(&job.recipients);
    for (i, rcpt) in job.recipients.iter().enumerate() {
        let stored = copies.remove(rcpt).unwrap_or_default();
        assert_eq!(stored.len(), 1, "{rcpt} stored {} times", stored.len());
        let text = String::from_utf8_lossy(&stored[0].bytes);
        let (subject, _) = job.personalised(i);
        assert!(text.contains(&subject), "{rcpt}: {text}");
        assert!(text.contains("\r\n.a line that starts with a dot\r\n..and two\r\n"), "{rcpt}: {text}");
        assert!(stored[0].message_in_session <= 7, "the listener's cap held");
    }
    let seven = |l: &str| l.split(|c: char| !c.is_ascii_digit()).any(|n| n == "7");
    let learned = run.stdout.lines().find(|l| l.contains("max_messages_per_connection") && seven(l));
    assert!(learned.is_some(), "the limit of 7 was not learned:\n{}", run.stdout);
}

#[test]
fn a_server_without_chunking_gets_data_whatever_the_window() {
    let Some(aio) = aiosmtpd("a_server_without_chunking_gets_data_whatever_the_window") else { return };
    let tag = unique_tag("window-nochunk");
    let store = aio.store(Mode::StrictDot);
    let smtp = aio.smtp(Mode::StrictDot).with("connections = 2").with("window = 8");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 20), "");

    job.send(&["--yes"]).expect(0);
    let copies = store.by_rcpt(&job.recipients);
    assert!(job.recipients.iter().all(|r| copies.get(r).map_or(0, Vec::len) == 1), "{copies:?}");
    let report = job.last_report();
    assert!(report.rows.iter().all(|r| (r.status.as_str(), r.attempts) == ("delivered", 1)), "{report:#?}");
}
