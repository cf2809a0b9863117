//! The daily budget (issue 6): `[rate] max_per_day` over a rolling 24 hours counted from the journal. A run
//! that reaches it stops cleanly with exit 75, the rest left pending for the next day's run.

use chrono::{DateTime, Duration, Utc};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

/// 120 recipients, 50 a day: three runs on `days` deliver 50, 50 and 20 and exit 75, 75, 0. On the first
/// day a second run an hour later sends nothing (the budget is counted across runs).
fn budget_over(days: [DateTime<Utc>; 3]) {
    let server = MailServer::start();
    let tag = unique_tag("budget");
    let smtp = Smtp::scripted(&server).with("connections = 2");
    let mut job = SendJob::new(&tag, &smtp, addresses(&tag, 120), "[rate]\nmax_per_day = 50\n");
    for (day, (sent, exit)) in days.iter().zip([(50, 75), (50, 75), (20, 0)]) {
        let before = server.accepted_total();
        job.set_env("MAILSHOT_NOW", &day.to_rfc3339());
        job.send(&["--yes"]).expect(exit);
        assert_eq!(server.accepted_total() - before, sent, "on {day}");
        let report = job.last_report();
        assert_eq!(report.count("delivered"), (before + sent) as usize, "on {day}: {:?}", report.counts());
        if day == &days[0] {
            job.set_env("MAILSHOT_NOW", &(*day + Duration::hours(1)).to_rfc3339());
            job.send(&["--yes"]).expect(75).line_with(&["daily sending budget", "used up"]);
            assert_eq!(server.accepted_total(), 50, "sent past the budget");
        }
    }
    assert!(job.recipients.iter().all(|r| server.accepted().get(r) == Some(&1)), "{:?}", server.accepted());
    // The budget is used up again on the last day, but nothing is left to send: done, exit 0.
    let before = server.accepted_total();
    job.set_env("MAILSHOT_NOW", &(days[2] + Duration::hours(1)).to_rfc3339());
    job.send(&["--yes"]).expect(0);
    assert_eq!(server.accepted_total(), before);
}

/// `--fresh` starts a new campaign, not a new day: the kept journal's messages still count.
#[test]
fn a_fresh_campaign_does_not_reset_the_daily_budget() {
    let server = MailServer::start();
    let tag = unique_tag("budgetfresh");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 30), "[rate]\nmax_per_day = 20\n");
    job.send(&["--yes"]).expect(75);
    assert_eq!(server.accepted_total(), 20);
    job.send(&["--yes", "--fresh"]).expect(75);
    assert_eq!(server.accepted_total(), 20, "a fresh journal must not reset the budget");
    // `status` tells the budget the run goes by.
    let said = crate::send_status::status(&job, &[]);
    said.expect(0).line_with(&["budget     0 of 20 left in the last 24 hours"]);
    said.line_with(&["sent       20 messages in the last 24 hours"]);
}

#[test]
fn a_daily_budget_spreads_120_recipients_over_three_days() {
    // A day and ten minutes apart: the earlier day's messages are just out of the 24-hour window.
    let step = Duration::hours(24) + Duration::minutes(10);
    let now = Utc::now();
    budget_over([now, now + step, now + step * 2]);
}

#[test]
fn a_daily_budget_spreads_120_recipients_over_three_simulated_days() {
    let day = |d: u32| format!("2026-03-{d:02}T09:{:02}:00Z", (d - 10) * 10).parse().unwrap();
    budget_over([day(10), day(11), day(12)]);
}
