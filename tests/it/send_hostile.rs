//! Hostile and careless input seen by `send` (issue 11): templates are pure functions of the row, so a
//! message retried in a later run is the same bytes, dated as first rendered.

use crate::common::fake_smtp::FakeSmtp;
use crate::common::send_job::{SendJob, Smtp, addresses, unique_tag};

#[test]
fn mailshot_date_is_the_messages_date_in_every_run() {
    let server = FakeSmtp::start();
    let tag = unique_tag("date");
    let mut job = SendJob::new(&tag, &Smtp::fake(&server), addresses(&tag, 2), "[retry]\nattempts = 1\n");
    job.write("templates/body.txt", "Hello {{ name }}, sent {{ mailshot.date }}.\n");
    let deferred = job.recipients[1].clone();
    server.refuse(&deferred, "450 4.2.0 Busy", u32::MAX);
    job.set_env("MAILSHOT_NOW", "2026-11-02T09:00:00Z");
    job.send(&["--yes"]).expect(1);
    server.refuse(&deferred, "450 4.2.0 Busy", 0);
    job.set_env("MAILSHOT_NOW", "2026-11-05T12:00:00Z");
    job.send(&["--yes"]).expect(0);

    for rcpt in &job.recipients {
        let body = String::from_utf8(server.bodies(rcpt).pop().unwrap()).unwrap();
        assert!(body.contains("sent 2026-11-02T09:00:"), "{rcpt}: {body}");
        assert!(body.contains("Date: Mon, 2 Nov 2026 09:00:"), "{rcpt}: {body}");
    }
}
