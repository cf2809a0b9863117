//! One run of a job at a time (issue 6): a second concurrent `send` is refused with exit 75 and a message
//! naming the running process; the lock of a run killed with -9 does not block the next one; a run that
//! ends removes `job.lock` (issue 13).

use std::time::Duration;

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::Run;

#[test]
fn a_second_run_is_refused_naming_the_first_and_a_killed_runs_lock_is_taken_over() {
    let server = MailServer::start();
    server.set_delay(Duration::from_millis(10));
    let tag = unique_tag("lock");
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 1"), addresses(&tag, 300), "");

    let mut first = job.spawn_quietly(&["--yes"]);
    server.wait_until(Duration::from_secs(20), "5 messages", |s| s.accepted_total() >= 5);
    let second = job.send(&["--yes"]);
    second.expect(75).line_with(&["another mailshot run", &format!("pid {}", first.id())]);
    assert_eq!(job.reports().len(), 1, "the refused run wrote no report");
    assert!(first.try_wait().unwrap().is_none(), "the first run goes on");

    first.kill().unwrap();
    first.wait().unwrap();
    assert!(job.path().join("job.lock").exists(), "a killed run cannot remove its lock file");
    server.set_delay(Duration::ZERO);
    let run = Run::from(job.spawn(&["--yes"]).wait_with_output().unwrap());
    assert!(run.code == 0 || run.code == 1, "exit {}: {}", run.code, run.stderr);
    assert!(!run.stderr.contains("another mailshot run"), "{}", run.stderr);
    assert!(!job.path().join("job.lock").exists(), "a run that ended removed job.lock");

    let report = job.last_report();
    assert_eq!(report.count("delivered") + report.count("uncertain"), 300, "{:?}", report.counts());
    let bound = mailshot::job::run::uncertain_bound(1, 1);
    let uncertain = report.count("uncertain");
    assert!(uncertain <= bound, "one connection: {uncertain} uncertain, at most {bound} (README)");
    let accepted = server.accepted();
    for row in &report.rows {
        let n = accepted.get(&row.email).copied().unwrap_or(0);
        assert!(if row.status == "delivered" { n == 1 } else { n <= 1 }, "{row:?} accepted {n} times");
    }
}
