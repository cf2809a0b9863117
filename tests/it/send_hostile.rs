//! Hostile and careless input seen by `send` (issue 11): templates are pure functions of the row, so a
//! message retried in a later run is the same bytes, dated as first rendered.

use std::time::{Duration, Instant};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

#[test]
fn mailshot_date_is_the_messages_date_in_every_run() {
    let server = MailServer::start();
    let tag = unique_tag("date");
    let mut job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 2), "[retry]\nattempts = 1\n");
    job.write("templates/body.txt", "Hello {{ name }}, sent {{ mailshot.date }}.\n");
    let deferred = job.recipients[1].clone();
    server.reject(&deferred, "450 4.2.0 Busy", u32::MAX);
    job.set_env("MAILSHOT_NOW", "2026-11-02T09:00:00Z");
    job.send(&["--yes"]).expect(1);
    server.reject(&deferred, "450 4.2.0 Busy", 0);
    job.set_env("MAILSHOT_NOW", "2026-11-05T12:00:00Z");
    job.send(&["--yes"]).expect(0);

    for rcpt in &job.recipients {
        let body = String::from_utf8(server.bodies(rcpt).pop().unwrap()).unwrap();
        assert!(body.contains("sent 2026-11-02T09:00:"), "{rcpt}: {body}");
        assert!(body.contains("Date: Mon, 2 Nov 2026 09:00:"), "{rcpt}: {body}");
    }
}

/// The run's resident memory in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn queue_bytes_and_queue_messages_bound_what_a_run_holds() {
    // 1.4 MB a message (a 1 MiB attachment, base64), 16 of them. While the server stalls, a run without
    // effective limits renders and holds all 16 (the default queue holds 20); with `queue_bytes = 3 MiB`
    // two, with `queue_messages = 2` a few. (Queued messages have no journal record: memory is what shows.)
    let unlimited = rss_while_the_server_stalls("queue_bytes = \"1 GiB\"");
    for limits in ["queue_bytes = \"3 MiB\"", "queue_messages = 2"] {
        let limited = rss_while_the_server_stalls(limits);
        assert!(limited + 12 * 1024 < unlimited, "{limits}: {limited} KiB held, {unlimited} KiB without limits");
    }
}

/// The most the run holds once it has rendered what it may while the server stalls: resident memory sampled
/// until it has not grown for 1.5 s (or `until`, while the first reply still stalls), in KiB. Sampling at a
/// fixed moment measured a loaded machine's half-rendered queue instead.
fn settled_rss_kib(pid: u32, until: Instant) -> u64 {
    let (mut most, mut grew) = (rss_kib(pid), Instant::now());
    while Instant::now() < until && grew.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(50));
        let now = rss_kib(pid);
        if now > most {
            (most, grew) = (now, Instant::now());
        }
    }
    most
}

/// The run's resident memory while the server stalls on its greeting, in KiB.
fn rss_while_the_server_stalls(limits: &str) -> u64 {
    let server = MailServer::start();
    server.set_delay(Duration::from_secs(6));
    let tag = unique_tag("queue");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 16), &format!("[limits]\n{limits}\n"));
    let toml = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    job.write("job.toml", toml.replace("[recipients]", "attachments = [\"files/big.bin\"]\n\n[recipients]"));
    std::fs::create_dir_all(job.path().join("files")).unwrap();
    std::fs::File::create(job.path().join("files/big.bin")).unwrap().set_len(1 << 20).unwrap();
    let child = job.spawn(&["--yes", "-q"]);
    let started = Instant::now();
    while !std::fs::read_to_string(job.journal_path()).unwrap_or_default().contains("\"run\"") {
        assert!(started.elapsed() < Duration::from_secs(30), "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss = settled_rss_kib(child.id(), Instant::now() + Duration::from_millis(5500));
    server.set_delay(Duration::ZERO);
    crate::jobs_support::Run::from(child.wait_with_output().unwrap()).expect(0);
    assert_eq!(server.accepted_total(), 16);
    rss
}
