//! Crash safety against the Postfix lab (issue 6): a 2,000-recipient send killed with -9 at random moments,
//! then run again until done. Every recipient ends with exactly one delivered copy, except those reported
//! uncertain (killed between the final dot and its reply), which have at most one; none is missing.

use std::time::{Duration, Instant};

use crate::common::lab_env::lab;
use crate::common::lab_mail::Maildir;
use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

const RECIPIENTS: usize = 2000;
const CONNECTIONS: usize = 4;

fn committed(job: &SendJob) -> usize {
    let text = std::fs::read_to_string(job.journal_path()).unwrap_or_default();
    text.matches("\"t\":\"committing\"").count()
}

/// Keys with a committing record and no later outcome: what the next run will call uncertain, read through
/// the run's own fold (a torn last line, the kill, is ignored as the next run ignores it).
fn uncertain_in_journal(job: &SendJob) -> usize {
    job.replayed().map_or(0, |r| r.count(mailshot::job::journal::JournalState::Uncertain))
}

/// Starts a run and kills it with -9: the first time at a random moment of its start-up, later once it has
/// committed a random number of further messages (so with messages in flight). False if it finished first.
fn run_and_kill(job: &SendJob, kill: usize, args: &[&str], between: std::ops::Range<usize>) -> bool {
    let mut child = job.spawn_quietly(args);
    let started = Instant::now();
    if kill == 0 {
        std::thread::sleep(Duration::from_millis(rand::Rng::gen_range(&mut rand::thread_rng(), 10..300)));
    } else {
        let target = committed(job) + rand::Rng::gen_range(&mut rand::thread_rng(), between);
        while committed(job) < target && child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(30), "no progress");
            std::thread::sleep(Duration::from_millis(rand::Rng::gen_range(&mut rand::thread_rng(), 1..10)));
        }
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

#[test]
fn kill_9_at_random_moments_then_rerunning_sends_everyone_exactly_once() {
    let Some(lab) = lab("kill_9_at_random_moments_then_rerunning_sends_everyone_exactly_once") else { return };
    kill_and_rerun(&lab, "crash", RECIPIENTS, &["--yes"], 20..250, 1);
}

/// With BDAT windows of 8 (Postfix offers CHUNKING), up to 8 messages per connection are in flight when the
/// kill comes: the wider bound, `(window + 1) × connections`, still holds and nothing arrives twice.
#[test]
fn kill_9_with_windows_of_8_keeps_the_wider_bound_and_sends_nobody_twice() {
    let Some(lab) = lab("kill_9_with_windows_of_8_keeps_the_wider_bound_and_sends_nobody_twice") else { return };
    kill_and_rerun(&lab, "crash-window", RECIPIENTS, &["--yes"], 20..250, 8);
}

/// Under a rate limit most messages wait for their turn: they have no committing record yet, so a kill
/// leaves them pending, not uncertain (issue 12: 384 of 390 uncertain had never been sent).
#[test]
fn kill_9_under_a_rate_limit_leaves_only_what_was_on_the_wire_uncertain() {
    let Some(lab) = lab("kill_9_under_a_rate_limit_leaves_only_what_was_on_the_wire_uncertain") else { return };
    kill_and_rerun(&lab, "crash-rate", 400, &["--yes", "--rate", "50"], 10..60, 1);
}

fn kill_and_rerun(
    lab: &crate::common::lab_env::Lab,
    tag: &str,
    recipients: usize,
    args: &[&str],
    between: std::ops::Range<usize>,
    window: usize,
) {
    let tag = unique_tag(tag);
    let smtp = Smtp::plain(lab.plain_port).with(&format!("connections = {CONNECTIONS}\nwindow = {window}"));
    let job = SendJob::new(&tag, &smtp, addresses(&tag, recipients), "");
    let mut maildir = Maildir::mark(lab);

    let mut kills = 0;
    for k in 0..6 {
        let before = uncertain_in_journal(&job);
        kills += usize::from(run_and_kill(&job, k, args, between.clone()));
        let added = uncertain_in_journal(&job) - before;
        let bound = mailshot::job::run::uncertain_bound(CONNECTIONS, window);
        assert!(added <= bound, "kill {k} left {added} uncertain, more than the documented {bound}");
    }
    assert!(kills >= 5, "only {kills} runs were killed before they finished");
    let mut runs = 0;
    let report = loop {
        runs += 1;
        let run = job.send(&["--yes"]);
        let report = job.last_report();
        let settled = report.count("delivered") + report.count("uncertain") == recipients;
        if run.code == 0 || (run.code == 1 && settled) {
            break report;
        }
        assert!(runs < 4, "exit {} after {runs} runs: {:?}\n{}", run.code, report.counts(), run.stderr);
    };

    let uncertain = report.emails_with("uncertain");
    let delivered = report.count("delivered");
    let bound = kills * mailshot::job::run::uncertain_bound(CONNECTIONS, window);
    assert!(uncertain.len() <= bound, "{} uncertain, more than the documented {bound}", uncertain.len());
    let copies = maildir.settle(&job.recipients, delivered);
    let arrived = uncertain.iter().filter(|r| copies.contains_key(*r)).count();
    eprintln!(
        "{kills} kills, {runs} re-run(s): {delivered} delivered, {} uncertain ({arrived} of them arrived)",
        uncertain.len()
    );
    for row in &report.rows {
        let n = copies.get(&row.email).copied().unwrap_or(0);
        let ok = if row.status == "uncertain" { n <= 1 } else { n == 1 };
        assert!(ok, "{} ({}) has {n} copies", row.email, row.status);
    }
}
