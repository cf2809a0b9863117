//! What a `send` without a terminal (cron, a pipe) logs, line by line: every line starts with its time in
//! UTC (ISO 8601), the first line of the run names the job, its campaign, the run and its counts, and a
//! retry says when it is due. The run's clock is set with `MAILSHOT_NOW`, so the times are the run's own.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::Run;
use mailshot::smtp::testing::MailServer;

/// The moment the runs' clock starts from (it still advances in real time).
const NOW: &str = "2031-03-04T05:06:07Z";

/// `2031-03-04T05:06:07Z` as the log writes it, or `None`.
fn iso(word: &str) -> Option<DateTime<Utc>> {
    let time = NaiveDateTime::parse_from_str(word.strip_suffix('Z')?, "%Y-%m-%dT%H:%M:%S").ok()?;
    (word.len() == 20).then(|| time.and_utc())
}

/// Every stderr line split into its time and the rest; each must start with a time from this run (the
/// runs here take seconds, not minutes).
fn stamped_lines(run: &Run) -> Vec<(DateTime<Utc>, String)> {
    let start: DateTime<Utc> = NOW.parse().unwrap();
    run.stderr
        .lines()
        .map(|line| {
            let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("no time in {line:?}"));
            let time = iso(time).unwrap_or_else(|| panic!("{line:?} does not start with an ISO 8601 UTC time"));
            assert!(time >= start && time - start < TimeDelta::minutes(2), "{line:?}: not this run's time");
            (time, rest.to_owned())
        })
        .collect()
}

fn job_with(server: &MailServer, tag: &str, extra: &str) -> SendJob {
    let mut job = SendJob::new(tag, &Smtp::scripted(server), addresses(tag, 12), extra);
    job.set_env("MAILSHOT_NOW", NOW);
    job
}

/// The run's first line after the check's: `job PATH · CAMPAIGN · run N began TIME · COUNTS`.
fn first_run_line(run: &Run) -> String {
    let lines = stamped_lines(run);
    assert!(lines[0].1.starts_with("12 rows: 12 valid"), "the check's line comes first: {:?}", lines[0]);
    lines[1].1.clone()
}

#[test]
fn the_first_line_names_the_job_its_campaign_and_what_this_run_will_do() {
    let server = MailServer::start();
    let tag = unique_tag("prog");
    let mut job = job_with(&server, &tag, "");
    let path = std::path::absolute(job.path().join("job.toml")).unwrap();
    let run = job.send(&["--yes", "--limit", "5"]);
    run.expect(0);
    let began = |line: &str| line.split(" began ").nth(1).and_then(|rest| iso(&rest[..20]));
    let first = first_run_line(&run);
    assert_eq!(
        first.replace(&path.display().to_string(), "JOB"),
        format!(
            "job JOB · no campaign name · run 1 began {} · 12 recipients: 5 to send, 0 settled in earlier runs, \
             7 not sent in this run",
            &first.split(" began ").nth(1).unwrap()[..20]
        )
    );
    assert!(began(&first).is_some_and(|t| t <= stamped_lines(&run)[1].0), "{first}");

    // The next run resumes: the five are settled, the other seven go now. Its clock starts a second later:
    // from the same shifted start, both runs could begin in one millisecond and so name the same report,
    // which `Report::create` refuses to overwrite (a real clock never gives two runs one start).
    job.set_env("MAILSHOT_NOW", "2031-03-04T05:06:08Z");
    let run = job.send(&["--yes"]);
    run.expect(0);
    let first = first_run_line(&run).replace(&path.display().to_string(), "JOB");
    assert!(first.starts_with("job JOB · no campaign name · run 2 began 2031-03-04T05:0"), "{first}");
    assert!(first.ends_with(" · 12 recipients: 7 to send, 5 settled in earlier runs"), "{first}");
}

#[test]
fn a_first_runs_counts_come_from_the_check_and_match_what_a_later_run_counts() {
    // On a first run the counts come from the check (no second pass over the CSV); later runs count with
    // the journal. Duplicates are rows but not recipients to send, as the counting pass has them.
    let server = MailServer::start();
    let tag = unique_tag("prog");
    let mut recipients = addresses(&tag, 12);
    recipients[3] = recipients[1].clone();
    recipients[7] = recipients[2].clone();
    let mut job = SendJob::new(&tag, &Smtp::scripted(&server), recipients, "");
    job.set_env("MAILSHOT_NOW", NOW);
    // The check's warnings about the duplicates come first, unstamped; then the stamped log.
    let counts = |run: &Run| {
        let line = run.stderr.lines().find(|l| l.contains(" · 12 recipients: ")).map(str::to_owned);
        line.unwrap_or_else(|| panic!("no counts in {}", run.stderr))
            .split(" · 12 recipients: ")
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let run = job.send(&["--yes", "--limit", "4"]);
    run.expect(0);
    assert!(run.stderr.contains("12 rows: 10 valid"), "{}", run.stderr);
    assert_eq!(counts(&run), "4 to send, 0 settled in earlier runs, 8 not sent in this run");
    job.set_env("MAILSHOT_NOW", "2031-03-04T05:06:08Z");
    let run = job.send(&["--yes"]);
    run.expect(0);
    assert_eq!(counts(&run), "6 to send, 4 settled in earlier runs, 2 not sent in this run");
    assert_eq!(server.accepted_total(), 10);
}

#[test]
fn the_campaign_is_named_when_the_job_names_it() {
    let server = MailServer::start();
    let tag = unique_tag("prog");
    let job = job_with(&server, &tag, "");
    let toml = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    job.write("job.toml", toml.replace("[message]\n", "[message]\ncampaign = \"spring-2031\"\n"));
    let run = job.send(&["--yes"]);
    run.expect(0);
    let first = first_run_line(&run);
    assert!(first.contains(" · campaign \"spring-2031\" · run 1 began "), "{first}");
    assert!(first.ends_with(" · 12 recipients: 12 to send, 0 settled in earlier runs"), "{first}");
}

#[test]
fn a_retry_and_a_failure_are_logged_with_their_times() {
    let server = MailServer::start();
    let tag = unique_tag("prog");
    let job = job_with(&server, &tag, "[retry]\ninitial_delay = 1\nmax_delay = 2\nattempts = 3\n");
    server.reject(&job.recipients[3], "451 4.7.1 Try again later", 1);
    server.reject(&job.recipients[5], "550 5.1.1 No such user", u32::MAX);
    let run = job.send(&["--yes"]);
    run.expect(1);
    let lines = stamped_lines(&run);
    let (logged, retry) = lines
        .iter()
        .find(|(_, l)| l.starts_with(&format!("row 5 {} deferred (", job.recipients[3])))
        .unwrap_or_else(|| panic!("no retry line in:\n{}", run.stderr));
    let (reason, due) = retry.split_once("); attempt 2 of 3 at ").unwrap_or_else(|| panic!("{retry}"));
    assert!(reason.ends_with("451 4.7.1 Try again later"), "{retry}");
    let due = iso(due).unwrap_or_else(|| panic!("the retry's time is not ISO 8601 UTC: {retry}"));
    // Due a second after it was refused (whole seconds both, so the same second or the next two).
    assert!(*logged <= due && due - *logged <= TimeDelta::seconds(2), "{retry} logged at {logged}");
    assert!(
        lines.iter().any(|(_, l)| l.starts_with("row 7 ") && l.contains(" failed 550 RCPT TO: 550 5.1.1 No such user")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("progress "), "no progress line in a run this short:\n{}", run.stderr);
}

#[test]
fn a_first_runs_counts_from_the_check_are_the_counting_pass_s_with_duplicates_suppressed_rows_and_limits() {
    // The unsharded first run takes its counts from the check; a run of the one shard `0/1` (the same rows)
    // still counts them in a pass over the CSV. Both must say the same, whatever cuts the rows down.
    let server = MailServer::start();
    // 75: the daily budget left recipients for a later run.
    for (i, (extra, args, code)) in [
        ("", &[][..], 0),
        ("", &["--limit", "3"][..], 0),
        ("", &["--limit", "0"][..], 0),
        ("", &["--limit", "50"][..], 0),
        ("[rate]\nmax_per_day = 5\n", &[][..], 75),
        ("[rate]\nmax_per_day = 5\n", &["--limit", "2"][..], 0),
        ("[rate]\nmax_per_day = 50\n", &["--limit", "7"][..], 0),
    ]
    .into_iter()
    .enumerate()
    {
        let counts = |shard: bool| {
            let tag = unique_tag(&format!("progplan{i}{}", u8::from(shard)));
            let mut recipients = addresses(&tag, 12);
            recipients[3] = recipients[1].clone();
            recipients[7] = recipients[2].to_uppercase();
            let mut job = SendJob::new(&tag, &Smtp::scripted(&server), recipients.clone(), extra);
            job.set_env("MAILSHOT_NOW", NOW);
            job.write("suppressed.csv", format!("email\n{}\n{}\n", recipients[5], recipients[10]));
            job.add_settings("recipients", "exclude = [\"suppressed.csv\"]");
            let mut all = vec!["--yes"];
            all.extend_from_slice(args);
            if shard {
                all.extend_from_slice(&["--shard", "0/1"]);
            }
            let counts = |run: &Run| {
                assert!(run.stderr.contains("12 rows: 8 valid"), "{}", run.stderr);
                let line = run.stderr.lines().find(|l| l.contains(" recipients: ")).map(str::to_owned);
                let line = line.unwrap_or_else(|| panic!("no counts in {}", run.stderr));
                line.split(" recipients: ").nth(1).unwrap().to_owned()
            };
            let first = counts(job.send(&all).expect(code));
            // `--fresh` sets the journal aside: a first run again, the day's budget partly spent.
            job.set_env("MAILSHOT_NOW", "2031-03-04T05:16:07Z");
            all.push("--fresh");
            let run = job.send(&all);
            assert!(run.code == 0 || run.code == 75, "{}", run.stderr);
            (first, counts(&run))
        };
        let (from_check, counted) = (counts(false), counts(true));
        assert_eq!(from_check, counted, "{extra} {args:?}");
    }
}
