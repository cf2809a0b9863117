//! Sharding without the lab (issue 16): how a shard is named (flag, MAILSHOT_SHARD, --shards N with
//! JOB_COMPLETION_INDEX) and the refusals before anything is sent; `check --shards N`; the shard in the journal.

use mailshot::job::shard::Shard;
use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::{Run, run_in_with};

/// Arguments, variables, and what the refusal says.
type Case = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static str);

#[test]
fn a_shard_named_wrongly_is_refused_before_anything_is_sent() {
    let server = MailServer::start();
    let tag = unique_tag("shardargs");
    let mut job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 8), "");
    let cases: [Case; 11] = [
        (&["--shard", "4/4"], &[], "--shard \"4/4\": the index must be below the shard count (0 to 3)"),
        (&["--shard", "0/0"], &[], "--shard \"0/0\": the shard count must be at least 1"),
        (&["--shard", "two/4"], &[], "--shard \"two/4\": expected I/N"),
        (&["--shards", "4"], &[], "--shards 4: JOB_COMPLETION_INDEX is not set"),
        (
            &["--shards", "4"],
            &[("JOB_COMPLETION_INDEX", "x")],
            "JOB_COMPLETION_INDEX \"x\" is not a whole number from 0 to 3",
        ),
        (&["--shards", "4"], &[("JOB_COMPLETION_INDEX", "4")], "JOB_COMPLETION_INDEX \"4/4\": the index must be below"),
        (&["--shards", "0"], &[("JOB_COMPLETION_INDEX", "0")], "the shard count must be at least 1"),
        (&["--shard", "1/4"], &[("MAILSHOT_SHARD", "2/4")], "--shard 1/4 and MAILSHOT_SHARD=2/4 disagree"),
        (&[], &[("MAILSHOT_SHARD", "3")], "MAILSHOT_SHARD \"3\": expected I/N"),
        // A typo of a count would otherwise allocate a table per shard (4 billion of them) and abort.
        (&["--shard", "0/4000000000"], &[], "--shard \"0/4000000000\": at most 100000 shards"),
        (&["--shards", "200000"], &[("JOB_COMPLETION_INDEX", "0")], "at most 100000 shards"),
    ];
    for (args, env, said) in cases {
        for (name, value) in env {
            job.set_env(name, value);
        }
        let all: Vec<&str> = ["--yes"].iter().chain(args).copied().collect();
        job.send(&all).expect(2).line_with(&[said]);
        for (name, _) in env {
            job.set_env(name, "");
        }
    }
    let names: Vec<String> =
        std::fs::read_dir(job.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.contains("journal")), "no journal was made: {names:?}");
    assert_eq!(server.accepted_total(), 0);
}

#[test]
fn a_shards_journal_records_the_shard_and_holds_only_its_recipients() {
    let server = MailServer::start();
    let tag = unique_tag("shardjournal");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 40), "");
    job.send(&["--yes", "--shard", "2/3"]).expect(0);
    let path = job.path().join("job.shard-2-of-3.journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records[0]["shard"], serde_json::json!({"index": 2, "count": 3}), "{text}");
    let mine: Vec<&String> = job.recipients.iter().filter(|r| Shard::of_key(r, 3) == 2).collect();
    assert_eq!(server.accepted_total() as usize, mine.len());
    assert!(mine.iter().all(|r| server.accepted().get(*r) == Some(&1)), "{:?}", server.accepted());
    assert!(!job.path().join("job.shard-2-of-3.lock").exists(), "the shard's lock is gone after the run");
    // Renamed by hand to another shard's name, the journal is refused: it says whose it is.
    std::fs::rename(&path, job.path().join("job.shard-1-of-3.journal.jsonl")).unwrap();
    job.send(&["--yes", "--shard", "1/3"]).expect(2).line_with(&["written by a run of shard 2/3"]);
}

fn check(job: &SendJob, args: &[&str]) -> Run {
    let all: Vec<&str> = ["check", "job.toml"].iter().chain(args).copied().collect();
    run_in_with(job.path(), &all, &[])
}

#[test]
fn check_shards_prints_each_shards_size_and_part_of_the_limits() {
    let tag = unique_tag("shardcheck");
    let mut recipients = addresses(&tag, 50);
    recipients.push(recipients[3].to_uppercase());
    let rate = "[rate]\nper_minute = 120\nmax_per_day = 1001\nshard_share = [2, 1, 1, 1]\n";
    let job = SendJob::new(&tag, &Smtp::plain(25), recipients, rate);
    let run = check(&job, &["--shards", "4"]);
    run.expect(0);
    let sizes: Vec<usize> =
        (0..4).map(|i| job.recipients[..50].iter().filter(|r| Shard::of_key(r, 4) == i).count()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 50, "the duplicate row is nobody's");
    let (rates, budgets) = (["0.8", "0.4", "0.4", "0.4"], [401, 200, 200, 200]);
    for i in 0..4 {
        let line = format!("shard {i}/4  {} recipients, {} messages/s, {} a day", sizes[i], rates[i], budgets[i]);
        run.line_with(&[&line]);
    }
    job.write("job.toml", std::fs::read_to_string(job.path().join("job.toml")).unwrap().replace("2, 1, 1, 1", "1, 1"));
    check(&job, &["--shards", "4"]).expect(2).line_with(&["[rate] shard_share has 2 weight(s) for 4 shards"]);
    check(&job, &["--shards", "0"]).expect(2);
    check(&job, &["--shards", "4000000000"]).expect(2);
    // Fewer messages a day than shards: shard 3 would get none, every day, and never send its part.
    job.write(
        "job.toml",
        std::fs::read_to_string(job.path().join("job.toml"))
            .unwrap()
            .replace("max_per_day = 1001\nshard_share = [1, 1]", "max_per_day = 3"),
    );
    check(&job, &["--shards", "4"]).expect(2).line_with(&["job.toml", "max_per_day = 3 leaves shard 3/4 nothing"]);
}

#[test]
fn a_shard_asks_about_its_own_part_of_the_csv() {
    let server = MailServer::start();
    let tag = unique_tag("shardask");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 40), "");
    let mine = job.recipients.iter().filter(|r| Shard::of_key(r, 4) == 1).count();
    assert!(mine > 0 && mine < 40);
    let (code, shown) = job.send_on_a_terminal(&["--shard", "1/4"], "n");
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains(&format!("Send up to {mine} messages from")), "{shown}");
    job.send(&["--yes", "--shard", "1/4"]).expect(0);
    let (_, shown) = job.send_on_a_terminal(&["--shard", "1/4"], "n");
    assert!(shown.contains(&format!("{mine} of {mine} were settled in earlier runs")), "{shown}");
    assert_eq!(server.accepted_total() as usize, mine);
}

fn status(job: &SendJob, args: &[&str]) -> Run {
    crate::send_status::status(job, args)
}

/// Only shard 0 of 3 has run: `status` still counts the other shards' recipients as pending, shard by shard;
/// `--failed` and `--json` cover every shard's journal.
#[test]
fn status_counts_shards_that_have_not_run_and_lists_failures_across_shards() {
    let server = MailServer::start();
    let tag = unique_tag("shardstatus");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 60), "[retry]\nattempts = 1\n");
    let of = |shard: u32| job.recipients.iter().filter(|r| Shard::of_key(r, 3) == shard).cloned().collect::<Vec<_>>();
    let (zero, one, two) = (of(0), of(1), of(2));
    server.reject(&zero[0], "550 5.1.1 No such user", u32::MAX);
    server.reject(&two[0], "550 5.1.1 No such user", u32::MAX);
    job.send(&["--yes", "--shard", "0/3"]).expect(1);
    job.send(&["--yes", "--shard", "2/3"]).expect(1);

    let said = status(&job, &[]);
    said.expect(0).line_with(&[&format!("delivered  {}", zero.len() + two.len() - 2)]).line_with(&["failed     2"]);
    said.line_with(&[&format!("not sent   {}", one.len())]);
    said.line_with(&["shard 0/3", "pending 0", "failed 1", "exit 1"]);
    said.line_with(&["shard 1/3", &format!("pending {},", one.len()), "delivered 0", "no run"]);
    let json: serde_json::Value = serde_json::from_str(&status(&job, &["--json"]).expect(0).stdout).unwrap();
    assert_eq!(json["shards"][1]["journal"], "none yet", "{json}");
    assert_eq!(json["shards"][2]["failed"], 1, "{json}");
    let failed = status(&job, &["--failed"]).expect(0).stdout.clone();
    let mut emails: Vec<String> =
        csv::Reader::from_reader(failed.as_bytes()).records().map(|r| r.unwrap()[1].to_owned()).collect();
    emails.sort();
    let mut expected = vec![zero[0].clone(), two[0].clone()];
    expected.sort();
    assert_eq!(emails, expected, "{failed}");
}

/// `--fresh` and `repair` act on one shard: the other shards' journals stay as they were.
#[test]
fn fresh_and_repair_work_on_one_shard() {
    let server = MailServer::start();
    let tag = unique_tag("shardfresh");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 30), "");
    for i in 0..2 {
        job.send(&["--yes", "--shard", &format!("{i}/2")]).expect(0);
    }
    let journal = |i: u32| job.path().join(format!("job.shard-{i}-of-2.journal.jsonl"));
    let other = std::fs::read(journal(0)).unwrap();
    let mine = job.recipients.iter().filter(|r| Shard::of_key(r, 2) == 1).count();
    job.send(&["--yes", "--shard", "1/2", "--fresh"]).expect(0).line_with(&["the old journal is kept as"]);
    assert_eq!(std::fs::read(journal(0)).unwrap(), other, "shard 0's journal untouched");
    assert_eq!(server.accepted_total() as usize, 30 + mine, "shard 1 sent its part again, as a new campaign");

    // A damaged line in shard 1's journal: its run refuses, `repair --shard 1/2` cuts it, shard 0 never noticed.
    let text = std::fs::read_to_string(journal(1)).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    std::fs::write(journal(1), format!("{first}\nnot json\n{rest}")).unwrap();
    job.send(&["--yes", "--shard", "1/2"]).expect(2).line_with(&["line 2", "damaged", "add --shard 1/2"]);
    status(&job, &[]).expect(2).line_with(&["job.shard-1-of-2.journal.jsonl, line 2", "add --shard 1/2"]);
    job.send(&["--yes", "--shard", "0/2"]).expect(0);
    let repair = crate::jobs_support::run_in(job.path(), &["repair", "job.toml", "--shard", "1/2"]);
    repair.expect(0).line_with(&["cut at line 2"]);
    job.send(&["--yes", "--shard", "1/2"]).expect(1);
    assert_eq!(server.accepted_total() as usize, 30 + mine, "nobody sent again after the repair");
    assert!(std::fs::read(journal(0)).unwrap().len() > other.len(), "shard 0 ran once more");
}

/// `bounces` cannot record into shard journals yet: it says so and creates no unsharded journal (which would
/// then block every shard as a journal of another layout).
#[test]
fn bounces_refuses_a_sharded_campaign_and_the_manual_documents_shards() {
    let server = MailServer::start();
    let tag = unique_tag("shardbounce");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 6), "");
    job.send(&["--yes", "--shard", "0/2"]).expect(0);
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(job.path().join("bounced").join(sub)).unwrap();
    }
    let run = run_in_with(job.path(), &["bounces", "job.toml", "--from", "bounced"], &[]);
    run.expect(2).line_with(&["job.shard-0-of-2.journal.jsonl", "sharded", "nothing was recorded"]);
    assert!(!job.journal_path().exists());
    job.send(&["--yes", "--shard", "1/2"]).expect(0);

    run_in_with(job.path(), &["man", "--dir", "man"], &[]).expect(0);
    let text = std::fs::read_to_string(job.path().join("man/mailshot-send.1")).unwrap().replace("\\-", "-");
    for needle in ["--shard", "--shards", "JOB_COMPLETION_INDEX", "shard_share", "max_per_day mod N"] {
        assert!(text.contains(needle), "the manual does not say {needle}");
    }
}

/// `--fresh` with another shard count sets the other layout's journals aside; a shard of that layout that is
/// running (its lock held) would go on sending beside the new campaign, writing into a journal no longer
/// current. So it is refused as busy, naming the lock, and nothing is set aside or sent.
#[test]
fn fresh_refuses_while_a_shard_of_the_other_layout_runs() {
    let server = MailServer::start();
    let tag = unique_tag("shardfreshbusy");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 20), "");
    job.send(&["--yes", "--shard", "0/2"]).expect(0);
    let sent = server.accepted_total();
    let old = job.path().join("job.shard-0-of-2.journal.jsonl");
    let before = std::fs::read(&old).unwrap();
    // As a running `--shard 0/2` holds it.
    let held = mailshot::job::lock::acquire(&job.path().join("job.shard-0-of-2.lock")).unwrap();
    for args in [&["--yes", "--shard", "0/3", "--fresh"][..], &["--yes", "--fresh"][..]] {
        job.send(args).expect(75).line_with(&["job.shard-0-of-2.lock", "in progress"]);
        assert_eq!(std::fs::read(&old).unwrap(), before, "{args:?}: the running shard's journal stays current");
        assert_eq!(server.accepted_total(), sent, "{args:?}: nothing sent");
    }
    drop(held);
    job.send(&["--yes", "--shard", "0/3", "--fresh"]).expect(0).line_with(&["the old journal is kept as"]);
    assert!(!old.exists());
}

/// A new campaign does not reset the provider's daily count (docs: `max_per_day`), also when it has another
/// shard count than the old one: what the old layout's journals sent in the last 24 hours is spent for every
/// layout after it, and `status` says so.
#[test]
fn a_new_shard_count_on_the_same_day_counts_what_the_old_layout_sent() {
    let server = MailServer::start();
    let tag = unique_tag("shardbudgetfresh");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 40), "[rate]\nmax_per_day = 10\n");
    job.send(&["--yes"]).expect(75);
    assert_eq!(server.accepted_total(), 10);
    job.send(&["--yes", "--shard", "0/2", "--fresh"]);
    job.send(&["--yes", "--shard", "1/2"]);
    assert_eq!(server.accepted_total(), 10, "unsharded, then two shards: the day's 10 were spent");
    status(&job, &[]).expect(0).line_with(&["budget     0 of 10 left"]);
    job.send(&["--yes", "--shard", "0/3", "--fresh"]);
    job.send(&["--yes", "--fresh"]);
    assert_eq!(server.accepted_total(), 10, "another count, then unsharded again: nothing more today");
    status(&job, &[]).expect(0).line_with(&["budget     0 of 10 left"]);
}

/// Back to a shard count used before: `--fresh` of one shard sets aside the other count's journals, and the
/// old campaign's reports of the shards it did not run must not stand as evidence against their new, empty
/// journals (nor be taken for this campaign's).
#[test]
fn back_to_an_earlier_shard_count_every_shard_starts_clean() {
    let server = MailServer::start();
    let tag = unique_tag("shardback");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 30), "");
    for i in 0..2 {
        job.send(&["--yes", "--shard", &format!("{i}/2")]).expect(0);
    }
    job.send(&["--yes", "--shard", "0/3", "--fresh"]).expect(0);
    let three = job.recipients.iter().filter(|r| Shard::of_key(r, 3) == 0).count();
    job.send(&["--yes", "--shard", "0/2", "--fresh"]).expect(0);
    job.send(&["--yes", "--shard", "1/2"]).expect(0);
    assert_eq!(server.accepted_total() as usize, 30 + three + 30, "the third campaign sent everyone once");
    status(&job, &[]).expect(0).line_with(&["delivered  30"]).line_with(&["not sent   0"]);
}

/// What the day has left after the old layout's sends may be fewer messages than shards: the shards left
/// without any today wait for tomorrow (75), they are not refused as a budget that can never be met (2).
#[test]
fn a_new_shard_count_with_less_left_today_than_shards_waits_for_tomorrow() {
    let server = MailServer::start();
    let tag = unique_tag("shardbudgetleft");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 40), "[rate]\nmax_per_day = 10\n");
    job.send(&["--yes", "--limit", "8"]).expect(0);
    job.send(&["--yes", "--shard", "0/4", "--fresh"]).expect(75);
    for i in 1..4 {
        job.send(&["--yes", "--shard", &format!("{i}/4")]).expect(75).line_with(&["daily sending budget"]);
    }
    assert_eq!(server.accepted_total(), 10, "8, then the day's 2 left over the four shards");
    status(&job, &[]).expect(0).line_with(&["budget     0 of 10 left"]);
}

/// `repair` of the wrong layout (no `--shard` on a sharded campaign, or another N) must not create a journal
/// of that layout: it would block every shard of the campaign as "sent with another shard count". It is
/// refused, naming the campaign's journals, and the shards go on.
#[test]
fn repair_of_another_layout_is_refused_and_leaves_no_journal() {
    let server = MailServer::start();
    let tag = unique_tag("shardrepair");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 10), "");
    job.send(&["--yes", "--shard", "0/2"]).expect(0);
    for args in [&["--from-reports"][..], &["--from-reports", "--shard", "0/3"][..], &[][..], &["--shard", "1/3"][..]] {
        let all: Vec<&str> = ["repair", "job.toml"].iter().chain(args).copied().collect();
        let run = crate::jobs_support::run_in(job.path(), &all);
        run.expect(2).line_with(&["job.shard-0-of-2.journal.jsonl", "--shard"]);
        let names: Vec<String> =
            std::fs::read_dir(job.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        let journals: Vec<&String> = names.iter().filter(|n| n.contains("journal")).collect();
        assert_eq!(journals, ["job.shard-0-of-2.journal.jsonl"], "{args:?}");
    }
    job.send(&["--yes", "--shard", "1/2"]).expect(0);
    assert_eq!(server.accepted_total(), 10);
}
