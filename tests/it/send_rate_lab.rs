//! A relay's per-client message rate limit, as Postfix itself enforces it (anvil's
//! `smtpd_client_message_rate_limit`, on the lab's rate port): past the limit each MAIL FROM gets
//! `450 4.7.1 Error: too much mail from 127.0.0.1` until the time unit turns over. The run must slow down,
//! defer what the limit refuses for the next run, and never deliver anyone twice.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::common::lab_env::lab;
use crate::common::lab_mail::Maildir;
use crate::common::send_job::{Report, SendJob, Smtp, addresses};
use crate::common::unique_tag;

#[test]
fn postfix_rate_limit_defers_the_rest_for_later_runs_and_nobody_gets_two() {
    rate_limited_runs("postfix_rate_limit_defers_the_rest_for_later_runs_and_nobody_gets_two", 1);
}

/// The same with windows of 8 (the rate port offers CHUNKING): the limit's 450 comes at a MAIL FROM in the
/// middle of a window, and the RCPT and BDAT written behind it are refused too; the MAIL's refusal decides.
#[test]
fn postfix_rate_limit_in_the_middle_of_windows_defers_and_nobody_gets_two() {
    rate_limited_runs("postfix_rate_limit_in_the_middle_of_windows_defers_and_nobody_gets_two", 8);
}

/// Anvil counts per client address and service: two tests at once would share one limit.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn rate_limited_runs(test: &str, window: u32) {
    let Some(lab) = lab(test) else { return };
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tag = unique_tag("anvil");
    let mut maildir = Maildir::mark(&lab);
    let total = 14;
    let smtp = Smtp::plain(lab.rate_port).with("connections = 2").with(&format!("window = {window}"));
    let retry = "[retry]\nattempts = 2\ninitial_delay = 0.5\nmax_delay = 2\n";
    let job = SendJob::new(&tag, &smtp, addresses(&tag, total), retry);

    // Each run ends when its messages are delivered or out of attempts; the limit lets `rate_messages`
    // through per `rate_unit` seconds, and the run slows down when it hears "too much mail" (a throttling
    // reply), so one run or a few (as a cron line would make) deliver everyone.
    let mut delivered_in: HashMap<String, usize> = HashMap::new();
    let mut refused_by_the_limit = 0;
    for run in 0..12 {
        let outcome = job.send(&["--yes", "-q"]);
        assert!(matches!(outcome.code, 0 | 1), "run {run}: exit {}\n{}", outcome.code, outcome.stderr);
        let report = Report::read(job.reports().last().expect("a report"));
        for row in &report.rows {
            // A report lists every row; those settled in an earlier run have no attempt in this one.
            match (row.status.as_str(), row.attempts) {
                ("delivered", 0) => assert!(delivered_in.contains_key(&row.email), "run {run}: {row:?}"),
                ("delivered", n) => {
                    *delivered_in.entry(row.email.clone()).or_default() += 1;
                    refused_by_the_limit += usize::from(n > 1);
                }
                ("deferred", _) => {
                    assert_eq!((row.code, row.enhanced.as_str()), (Some(450), "4.7.1"), "{row:?}");
                    assert!(row.reply.contains("too much mail"), "{row:?}");
                    refused_by_the_limit += 1;
                }
                _ => panic!("run {run}: {row:?}"),
            }
        }
        if outcome.code == 0 {
            break;
        }
    }
    assert!(
        refused_by_the_limit > 0,
        "the limit of {} per {} s never refused anyone",
        lab.rate_messages,
        lab.rate_unit
    );
    let twice: Vec<_> = delivered_in.iter().filter(|&(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "reported delivered more than once: {twice:?}");
    assert_eq!(delivered_in.len(), total, "delivered by the runs: {delivered_in:?}");
    let copies = maildir.settle(&job.recipients, total);
    assert!(job.recipients.iter().all(|r| copies.get(r) == Some(&1)), "copies in the Maildir: {copies:?}");
}
