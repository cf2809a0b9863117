//! Every generated message parses back with a real MIME parser (mail-parser) to the same subject, addresses,
//! bodies and attachments, non-ASCII included; CRLF only; lines ≤ 998 octets; deterministic; escaped HTML.

use std::collections::HashSet;
use std::path::Path;

use chrono::{TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use mailshot::jobdef::Job;
use mailshot::message::OutgoingMessage;
use mailshot::recipients::{Entry, Recipient};
use mailshot::smtp::testing::assert_wire_clean;

use crate::jobs_support::{JobDir, sample_job};

fn recipients(job: &Job) -> Vec<Recipient> {
    job.recipients()
        .unwrap()
        .map(|item| match item.unwrap() {
            Entry::Recipient(r) => r,
            Entry::Duplicate { row, .. } => panic!("unexpected duplicate at row {row}"),
            Entry::Suppressed { row, .. } => panic!("unexpected suppression at row {row}"),
        })
        .collect()
}

fn field<'a>(r: &'a Recipient, name: &str) -> &'a str {
    let i = r.columns.names.iter().position(|n| n == name).unwrap();
    &r.fields[i]
}

fn render_all(job: &Job) -> Vec<(Recipient, OutgoingMessage)> {
    let date = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    recipients(job).into_iter().map(|r| (job.render(&r, date).unwrap(), r)).map(|(m, r)| (r, m)).collect()
}

#[test]
fn every_sample_message_parses_back_to_what_was_asked() {
    let job = Job::load(&sample_job()).unwrap();
    let folder = sample_job().parent().unwrap().to_owned();
    let messages = render_all(&job);
    assert_eq!(messages.len(), 12);
    for (r, m) in &messages {
        assert_wire_clean(&m.bytes);
        let parsed = MessageParser::new().parse(&m.bytes).unwrap();
        let (name, city, id) = (r.mailbox.name.clone().unwrap(), field(r, "city"), field(r, "id"));
        assert_eq!(parsed.subject(), Some(format!("{name}, your ticket for the {city} launch").as_str()));
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!((to.name(), to.address()), (Some(name.as_str()), Some(r.mailbox.header_address().as_str())));
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!((from.name(), from.address()), (Some("Example Announcements"), Some("announcements@example.com")));
        assert_eq!(parsed.reply_to().unwrap().first().unwrap().address(), Some("support@example.com"));
        assert_eq!(parsed.message_id(), Some(m.message_id.as_str()));
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains(&format!("Dear {name},")) && text.contains(city), "{text}");
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains(&format!("<strong>{city}</strong>")), "{html}");
        let attachment = parsed.attachments().next().unwrap();
        assert_eq!(attachment.attachment_name(), Some(format!("ticket-{id}.pdf").as_str()));
        assert_eq!(attachment.content_type().unwrap().subtype(), Some("pdf"));
        assert_eq!(attachment.contents(), std::fs::read(folder.join(format!("files/ticket-{id}.pdf"))).unwrap());
        assert!(parsed.header("Bcc").is_none());
        assert!(parsed.header_raw("List-Unsubscribe").unwrap().contains(field(r, "token")));
        assert_eq!(m.envelope.to, [r.mailbox.envelope()]);
        assert!(!m.envelope.smtputf8 && !m.envelope.eight_bit && m.bytes.is_ascii());
    }
}

#[test]
fn the_idn_recipient_gets_an_a_label_envelope() {
    let job = Job::load(&sample_job()).unwrap();
    let messages = render_all(&job);
    let (_, m) = messages.iter().find(|(r, _)| field(r, "id") == "1004").unwrap();
    assert_eq!(m.envelope.to, ["jurgen@xn--bcher-kva.example"]);
    assert_eq!(m.envelope.from, "announcements@example.com");
}

#[test]
fn rendering_is_deterministic_and_message_ids_are_unique() {
    let job = Job::load(&sample_job()).unwrap();
    let (first, second) = (render_all(&job), render_all(&job));
    let bytes = |v: &[(Recipient, OutgoingMessage)]| v.iter().map(|(_, m)| m.bytes.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&first), bytes(&second), "same job, same Date: same bytes");
    let ids: HashSet<_> = first.iter().map(|(_, m)| m.message_id.clone()).collect();
    assert_eq!(ids.len(), first.len());
    assert!(first.iter().all(|(_, m)| m.message_id.ends_with("@example.com")));
    let keys: Vec<_> = first.iter().map(|(_, m)| m.key.as_str()).collect();
    assert_eq!(keys[..3], ["1001", "1002", "1003"]);
}

#[test]
fn script_in_a_cell_is_escaped_in_html_and_verbatim_in_text() {
    let dir = JobDir::new();
    dir.write("r.csv", "email,name\nann@example.com,<script>alert(1)</script>\n");
    let job = Job::load(&dir.path().join("job.toml")).unwrap();
    let (_, m) = render_all(&job).pop().unwrap();
    let parsed = MessageParser::new().parse(&m.bytes).unwrap();
    assert_eq!(parsed.body_text(0).unwrap().trim_end(), "Hi <script>alert(1)</script>");
    assert_eq!(parsed.body_html(0).unwrap().trim_end(), "<p>Hi &lt;script&gt;alert(1)&lt;&#x2F;script&gt;</p>");
}

#[test]
fn escaping_does_not_depend_on_the_template_file_name() {
    let dir = JobDir::new();
    dir.write("t/mail.html.tera", "<p>{{ name }}</p>");
    let toml = std::fs::read_to_string(dir.path().join("job.toml")).unwrap().replace("t/mail.html", "t/mail.html.tera");
    dir.write("job.toml", toml);
    dir.write("r.csv", "email,name\nann@example.com,<b>&</b>\n");
    let job = Job::load(&dir.path().join("job.toml")).unwrap();
    let (_, m) = render_all(&job).pop().unwrap();
    let parsed = MessageParser::new().parse(&m.bytes).unwrap();
    assert_eq!(parsed.body_html(0).unwrap(), "<p>&lt;b&gt;&amp;&lt;&#x2F;b&gt;</p>");
}

#[test]
fn long_lines_and_non_ascii_local_parts_stay_valid() {
    let dir = JobDir::new();
    let long = "word ".repeat(400) + &"x".repeat(2000);
    dir.write("r.csv", format!("email,name\nзоя@пример.рф,Зоя\nann@example.com,\"{long}\"\n"));
    let job = Job::load(&dir.path().join("job.toml")).unwrap();
    let messages = render_all(&job);
    for (r, m) in &messages {
        assert_wire_clean(&m.bytes);
        let parsed = MessageParser::new().parse(&m.bytes).unwrap();
        assert_eq!(parsed.subject(), Some(format!("Hello {}", r.mailbox.name.as_deref().unwrap()).as_str()));
    }
    let utf8 = &messages[0].1;
    assert!(utf8.envelope.smtputf8 && utf8.envelope.eight_bit);
    assert_eq!(utf8.envelope.to, ["зоя@xn--e1afmkfd.xn--p1ai"]);
    let parsed = MessageParser::new().parse(&utf8.bytes).unwrap();
    assert_eq!(parsed.to().unwrap().first().unwrap().address(), Some("зоя@пример.рф"));
}

#[test]
fn job_is_shareable_between_worker_threads() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let job = Job::load(Path::new(&sample_job())).unwrap();
    assert_send_sync(&job);
    let date = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    let all = recipients(&job);
    let (a, b) = all.split_at(6);
    let sizes = std::thread::scope(|s| {
        let ha = s.spawn(|| a.iter().map(|r| job.render(r, date).unwrap().bytes.len()).sum::<usize>());
        let hb = s.spawn(|| b.iter().map(|r| job.render(r, date).unwrap().bytes.len()).sum::<usize>());
        ha.join().unwrap() + hb.join().unwrap()
    });
    assert_eq!(sizes, render_all(&job).iter().map(|(_, m)| m.bytes.len()).sum::<usize>());
}

/// `send` keeps the messages its check built (`job::spool`) and the producer makes each one from those bytes
/// (`Job::from_built`) instead of rendering it again: it must be the very message rendering makes, envelope
/// (a rendered VERP return path, an IDN, copies) included.
#[test]
fn a_message_made_from_the_checks_bytes_is_the_one_rendering_makes() {
    let date = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    let sample = Job::load(&sample_job()).unwrap();
    let dir = JobDir::new();
    let toml = std::fs::read_to_string(dir.path().join("job.toml")).unwrap();
    let verp = "[message]\nreturn_path = \"bounces+{{ mailshot.recipient_token }}@example.com\"\n";
    dir.write("job.toml", toml.replacen("[message]\n", verp, 1));
    dir.write("r.csv", "email,name\nann@example.com,Ann\nзоя@пример.рф,Зоя\n");
    let verp_job = Job::load(&dir.path().join("job.toml")).unwrap();
    let mut made = 0;
    for job in [&sample, &verp_job] {
        for r in recipients(job) {
            let (rendered_message, rendered) = job.render_parts(&r, date).unwrap();
            let from_bytes = job.from_built(&r, rendered_message.bytes.clone(), rendered.return_path.as_deref());
            assert_eq!(from_bytes.unwrap(), rendered_message, "row {}", r.row);
            made += 1;
        }
    }
    assert_eq!(made, 14);
    let (_, verp_message) = render_all(&verp_job).pop().unwrap();
    assert!(verp_message.envelope.from.starts_with("bounces+"), "{:?}", verp_message.envelope.from);
}
