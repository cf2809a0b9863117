//! Sharded campaigns against the Postfix lab (issue 16): N processes, each `send --shard I/N`, deliver every
//! recipient exactly once between them (counted in the lab's Maildir); a shard killed with -9 finishes alone;
//! rows added between runs stay in their shard; another shard count is refused; `status` merges the shards;
//! the campaign's budget and rate are split between them.

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use mailshot::job::shard::Shard;

use crate::common::lab_env::lab;
use crate::common::lab_mail::Maildir;
use crate::common::send_job::{Report, SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::Run;
use crate::send_status::status;

/// The newest report of shard `index` of `count` (`reports/shard-I-of-N/`).
fn shard_report(job: &SendJob, index: u32, count: u32) -> Report {
    let dir = job.path().join("reports").join(format!("shard-{index}-of-{count}"));
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    Report::read(paths.last().unwrap_or_else(|| panic!("no report in {}", dir.display())))
}

/// Recipients by the shard the documented hash gives them.
fn by_shard(recipients: &[String], count: u32) -> HashMap<u32, Vec<String>> {
    let mut shards: HashMap<u32, Vec<String>> = HashMap::new();
    for r in recipients {
        shards.entry(Shard::of_key(&r.to_ascii_lowercase(), count)).or_default().push(r.clone());
    }
    shards
}

fn wait(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn four_shards_as_four_processes_deliver_everyone_exactly_once_and_status_merges_them() {
    let Some(lab) = lab("four_shards_as_four_processes_deliver_everyone_exactly_once_and_status_merges_them") else {
        return;
    };
    let tag = unique_tag("shards4");
    let mut maildir = Maildir::mark(&lab);
    let smtp = Smtp::lab_tls(&lab, &lab.password).with("connections = 2");
    let mut job = SendJob::new(&tag, &smtp, addresses(&tag, 400), "");
    // The three ways to name a shard: the flag, MAILSHOT_SHARD, and --shards N with the Indexed Job's index.
    let mut children = vec![job.spawn(&["--yes", "--shard", "0/4"]), job.spawn(&["--yes", "--shard", "1/4"])];
    job.set_env("MAILSHOT_SHARD", "2/4");
    children.push(job.spawn(&["--yes"]));
    job.set_env("MAILSHOT_SHARD", "");
    job.set_env("JOB_COMPLETION_INDEX", "3");
    children.push(job.spawn(&["--yes", "--shards", "4"]));
    for child in children {
        wait(child).expect(0);
    }

    let expected = by_shard(&job.recipients, 4);
    for index in 0..4 {
        let report = shard_report(&job, index, 4);
        let mut sent = report.emails_with("delivered");
        sent.sort();
        let mut mine = expected[&index].clone();
        mine.sort();
        assert_eq!(sent, mine, "shard {index} delivered exactly its recipients");
        assert_eq!(report.rows.len(), mine.len(), "shard {index} reports only its own rows");
    }
    let copies = maildir.settle(&job.recipients, 400);
    let once = job.recipients.iter().filter(|r| copies.get(*r) == Some(&1)).count();
    assert_eq!(once, 400, "every recipient once: {copies:?}");
    assert_eq!(copies.values().sum::<usize>(), 400, "no copy more");

    // `status` merges the four journals: its totals are what the Maildir holds.
    let said = status(&job, &[]);
    said.expect(0).line_with(&[&format!("delivered  {once}")]).line_with(&["not sent   0"]);
    for index in 0..4 {
        let n = expected[&index].len();
        said.line_with(&[&format!("shard {index}/4"), "pending 0", &format!("delivered {n},"), "exit 0"]);
    }
    let json: serde_json::Value = serde_json::from_str(&status(&job, &["--json"]).expect(0).stdout).unwrap();
    assert_eq!(json["delivered"].as_u64(), Some(400), "{json}");
    let per_shard: Vec<u64> =
        json["shards"].as_array().unwrap().iter().map(|s| s["delivered"].as_u64().unwrap()).collect();
    assert_eq!(per_shard, (0..4).map(|i| expected[&i].len() as u64).collect::<Vec<_>>(), "{json}");
    assert_eq!(status(&job, &["--failed"]).expect(0).stdout.lines().count(), 1, "no failed row, the header only");
}

fn committed(job: &SendJob, shard: &str) -> usize {
    let text = std::fs::read_to_string(job.path().join(format!("job.{shard}.journal.jsonl"))).unwrap_or_default();
    text.matches("\"t\":\"committing\"").count()
}

#[test]
fn a_shard_killed_with_kill_9_finishes_alone_with_no_duplicate() {
    let Some(lab) = lab("a_shard_killed_with_kill_9_finishes_alone_with_no_duplicate") else { return };
    let tag = unique_tag("shardkill");
    let mut maildir = Maildir::mark(&lab);
    let smtp = Smtp::plain(lab.plain_port).with("connections = 4");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 1200), "");
    let others: Vec<Child> = [0, 2, 3].iter().map(|i| job.spawn(&["--yes", "--shard", &format!("{i}/4")])).collect();
    let mut victim = job.spawn_quietly(&["--yes", "--shard", "1/4"]);
    let started = Instant::now();
    while committed(&job, "shard-1-of-4") < 60 && victim.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(victim.try_wait().unwrap().is_none(), "shard 1 finished before it could be killed");
    victim.kill().unwrap();
    victim.wait().unwrap();
    for child in others {
        wait(child).expect(0);
    }

    // Shard 1 alone, as a scheduler restarts one failed index; uncertain recipients are not sent again.
    let rerun = job.send(&["--yes", "--shard", "1/4"]);
    let report = shard_report(&job, 1, 4);
    let uncertain = report.emails_with("uncertain");
    assert_eq!(rerun.code, if uncertain.is_empty() { 0 } else { 1 }, "{}\n{}", rerun.stdout, rerun.stderr);
    let mine = &by_shard(&job.recipients, 4)[&1];
    assert_eq!(report.count("delivered") + uncertain.len(), mine.len(), "{:?}", report.counts());
    let delivered_rows = 1200 - uncertain.len();
    let copies = maildir.settle(&job.recipients, delivered_rows);
    for r in &job.recipients {
        let n = copies.get(r).copied().unwrap_or(0);
        let ok = if uncertain.contains(r) { n <= 1 } else { n == 1 };
        assert!(ok, "{r} has {n} copies (uncertain: {})", uncertain.contains(r));
    }
    eprintln!("killed after {} commits; {} uncertain", committed(&job, "shard-1-of-4"), uncertain.len());
}

#[test]
fn rows_added_between_runs_move_nobody_and_another_shard_count_is_refused() {
    let Some(lab) = lab("rows_added_between_runs_move_nobody_and_another_shard_count_is_refused") else { return };
    let tag = unique_tag("shardadd");
    let mut maildir = Maildir::mark(&lab);
    let smtp = Smtp::plain(lab.plain_port).with("connections = 2");
    let first = addresses(&tag, 60);
    let job = SendJob::new(&tag, &smtp, first.clone(), "");
    for i in 0..2 {
        job.send(&["--yes", "--shard", &format!("{i}/2")]).expect(0);
    }
    let sorted = |mut emails: Vec<String>| {
        emails.sort();
        emails
    };
    let before: Vec<Vec<String>> = (0..2).map(|i| sorted(shard_report(&job, i, 2).emails_with("delivered"))).collect();

    // 30 new rows, ten of them before the old ones (every old row number changes).
    let added: Vec<String> = (0..30).map(|i| format!("new{i}-{tag}@example.test")).collect();
    let rows: Vec<String> = added[..10].iter().chain(&first).chain(&added[10..]).cloned().collect();
    let csv: String = rows.iter().enumerate().map(|(i, r)| format!("{r},User {i},c{i}\n")).collect();
    job.write("recipients.csv", format!("email,name,code\n{csv}"));
    for i in 0..2 {
        job.send(&["--yes", "--shard", &format!("{i}/2"), "--accept-changes"]).expect(0);
        let report = shard_report(&job, i, 2);
        let carried =
            report.rows.iter().filter(|r| r.status == "delivered" && r.attempts == 0).map(|r| r.email.clone());
        let carried = sorted(carried.collect());
        assert_eq!(carried, before[i as usize], "shard {i} carries exactly what it sent before, nothing moved in");
        let new = report.rows.iter().filter(|r| r.attempts > 0).map(|r| r.email.clone());
        assert!(new.clone().all(|e| added.contains(&e)), "shard {i} sent only new rows this time");
    }
    let copies = maildir.settle(&rows, 90);
    assert!(rows.iter().all(|r| copies.get(r) == Some(&1)), "{copies:?}");

    // Three shards now, or no shards: refused, naming the journals of the two-shard campaign; nothing sent.
    for args in [&["--yes", "--shard", "0/3"][..], &["--yes"][..]] {
        let refused = job.send(args);
        refused.expect(2).line_with(&["job.shard-0-of-2.journal.jsonl", "job.shard-1-of-2.journal.jsonl", "--fresh"]);
    }
    assert!(!job.path().join("job.shard-0-of-3.journal.jsonl").exists() && !job.journal_path().exists());
    // --fresh: a new three-shard campaign; the old journals are set aside, and shard 0 of 3 sends its part again.
    job.send(&["--yes", "--shard", "0/3", "--fresh"]).expect(0);
    assert!(!job.path().join("job.shard-0-of-2.journal.jsonl").exists(), "set aside");
    let again = by_shard(&rows, 3)[&0].len();
    let copies = maildir.settle(&rows, 90 + again);
    assert_eq!(copies.values().sum::<usize>(), 90 + again);
}

#[test]
fn shards_split_the_campaigns_daily_budget_and_rate() {
    let Some(lab) = lab("shards_split_the_campaigns_daily_budget_and_rate") else { return };
    let tag = unique_tag("shardbudget");
    let mut maildir = Maildir::mark(&lab);
    let smtp = Smtp::plain(lab.plain_port).with("connections = 2");
    // 8 a second and 30 a day for the campaign: 2 a second and 8, 8, 7, 7 a day for the four shards.
    let rate = "[rate]\nper_second = 8\nburst = 1\nmax_per_day = 30\n";
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 100), rate);
    let started = Instant::now();
    let children: Vec<Child> = (0..4).map(|i| job.spawn(&["--yes", "--shard", &format!("{i}/4")])).collect();
    let mut runs = Vec::new();
    for child in children {
        let run = wait(child);
        runs.push((run, started.elapsed()));
    }
    for (i, (run, took)) in runs.iter().enumerate() {
        run.expect(75).line_with(&["daily sending budget", "used up"]);
        let sent = shard_report(&job, i as u32, 4).count("delivered");
        assert_eq!(sent, [8, 8, 7, 7][i], "shard {i}'s part of the budget");
        // At this shard's 2 a second, `sent` messages need (sent - 1) / 2 seconds at least; at the campaign's
        // 8 a second they would need a quarter of that.
        let least = Duration::from_millis((sent as u64 - 1) * 500 - 100);
        assert!(*took >= least, "shard {i} sent {sent} in {took:?}: faster than its 2 a second");
    }
    let copies = maildir.settle(&job.recipients, 30);
    assert_eq!(copies.values().sum::<usize>(), 30, "the campaign's budget, no more");
    status(&job, &[]).expect(0).line_with(&["budget     0 of 30 left"]).line_with(&["not sent   70"]);
}

/// Three shards at once over a CSV with rows that repeat an address in other case and rows with a Cc: every
/// address (Cc included) arrives exactly once, the repeated rows are nobody's message, and `status` agrees.
#[test]
fn shards_at_once_send_each_address_once_with_case_duplicates_and_copies() {
    let Some(lab) = lab("shards_at_once_send_each_address_once_with_case_duplicates_and_copies") else { return };
    let tag = unique_tag("shardcase");
    let mut maildir = Maildir::mark(&lab);
    let smtp = Smtp::plain(lab.plain_port).with("connections = 2");
    let unique = addresses(&tag, 60);
    // Each of the first 12 again, upper-cased, after all of them (`User 60`… in the CSV).
    let rows: Vec<String> = unique.iter().cloned().chain(unique[..12].iter().map(|r| r.to_uppercase())).collect();
    let job = SendJob::new(&tag, &smtp, rows, "");
    let cc = |i: usize| format!("cc{i}-{tag}@example.test");
    job.add_column("cc", |i| if i % 10 == 3 { cc(i) } else { String::new() });
    job.add_settings("recipients", "cc = \"cc\"");
    let children: Vec<Child> = (0..3).map(|i| job.spawn(&["--yes", "--shard", &format!("{i}/3")])).collect();
    for child in children {
        wait(child).expect(0);
    }
    // Rows 3, 13, …, 53 carry a Cc; rows 63 and later are duplicates (not sent, so neither is their Cc).
    let copies_to: Vec<String> = (0..60).filter(|i| i % 10 == 3).map(cc).collect();
    let everyone: Vec<String> = unique.iter().chain(&copies_to).cloned().collect();
    let copies = maildir.settle(&everyone, everyone.len());
    assert!(everyone.iter().all(|r| copies.get(r) == Some(&1)), "{copies:?}");
    assert_eq!(copies.values().sum::<usize>(), everyone.len(), "no copy more: {copies:?}");
    status(&job, &[]).expect(0).line_with(&["delivered  60"]).line_with(&["not sent   0"]);
}
