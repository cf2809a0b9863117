//! What `mailshot send` prints without a terminal (cron, a pipe): no bar or cursor control at all, the
//! summary table (ending with the report's path) on stdout; `-q` only that and a line per recipient not
//! delivered, `-v` a line per recipient.

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses, summary_count};
use crate::common::unique_tag;
use crate::jobs_support::Run;

/// Summary lines as `summary()` writes them: a name and a number, the carried note, elapsed and rate.
fn is_summary_line(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] | ["summary"] | ["not", "delivered"] => true,
        ["elapsed", n, "s"] | ["rate", n, "msg/s"] => n.parse::<f64>().is_ok(),
        ["report", path] => path.contains("reports/") && path.ends_with(".csv"),
        [name, n] => {
            ["delivered", "failed", "deferred", "uncertain", "skipped", "total"].contains(name)
                && n.parse::<u64>().is_ok()
        }
        ["not", "sent", n] => n.parse::<u64>().is_ok(),
        _ => line.trim_start().starts_with('(') && line.contains("settled in earlier runs"),
    }
}

fn only_summary_on_stdout(run: &Run, _: &SendJob) {
    assert!(run.stdout.lines().all(is_summary_line), "stdout:\n{}", run.stdout);
    assert!(run.stdout.lines().any(|l| l.trim_start().starts_with("report ")), "no report path:\n{}", run.stdout);
}

fn plain_logs_the_failure_and_the_report(run: &Run, job: &SendJob) {
    only_summary_on_stdout(run, job);
    run.line_with(&["row 4", &job.recipients[2], "failed", "550"]);
    assert!(!run.stderr.contains(" delivered"), "delivered rows are not logged without -v:\n{}", run.stderr);
}

fn quiet_prints_the_summary_and_names_the_undelivered(run: &Run, job: &SendJob) {
    let refused = format!("  {}  failed  ", job.recipients[2]);
    let (named, rest): (Vec<&str>, Vec<&str>) = run.stdout.lines().partition(|l| l.starts_with(&refused));
    assert_eq!(named.len(), 1, "the failed recipient, once:\n{}", run.stdout);
    assert!(named[0].contains("550 5.1.1 No such user"), "with the reply: {}", named[0]);
    assert!(rest.iter().all(|l| is_summary_line(l)), "stdout:\n{}", run.stdout);
    assert!(run.stderr.is_empty(), "stderr under -q:\n{}", run.stderr);
}

fn verbose_logs_every_recipient(run: &Run, job: &SendJob) {
    only_summary_on_stdout(run, job);
    for (i, rcpt) in job.recipients.iter().enumerate() {
        let status = if i == 2 { "failed" } else { "delivered" };
        run.line_with(&[&format!("row {} ", i + 2), rcpt, status]);
    }
}

#[test]
fn without_a_terminal_there_is_no_bar_and_each_verbosity_prints_what_it_promises() {
    type Check = fn(&Run, &SendJob);
    let cases: [(&[&str], Check); 3] = [
        (&["--yes"], plain_logs_the_failure_and_the_report),
        (&["--yes", "-q"], quiet_prints_the_summary_and_names_the_undelivered),
        (&["--yes", "-v"], verbose_logs_every_recipient),
    ];
    for (args, check) in cases {
        let server = MailServer::start();
        let tag = unique_tag("out");
        let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 2"), addresses(&tag, 12), "");
        server.reject(&job.recipients[2], "550 5.1.1 No such user", u32::MAX);
        let run = job.send(args);
        run.expect(1);
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(!text.contains('\x1b') && !text.contains('\r'), "{args:?}: control characters on {name}: {text:?}");
        }
        assert_eq!((summary_count(&run.stdout, "delivered"), summary_count(&run.stdout, "failed")), (11, 1));
        check(&run, &job);
    }
}

/// Cron (`-q`): every recipient not delivered is named on its own line (address, state, reply), at most 50,
/// then a count that points to the report; delivered ones are not listed.
#[test]
fn quiet_names_the_undelivered_recipients_up_to_fifty() {
    let server = MailServer::start();
    let tag = unique_tag("quiet-list");
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 2"), addresses(&tag, 60), "");
    for rcpt in &job.recipients[..55] {
        server.reject(rcpt, "550 5.1.1 No such user", u32::MAX);
    }
    let run = job.send(&["--yes", "-q"]);
    run.expect(1);
    let named: Vec<&str> =
        run.stdout.lines().filter(|l| l.contains("  failed  ") && l.ends_with("550 5.1.1 No such user")).collect();
    assert_eq!(named.len(), 50, "stdout:\n{}", run.stdout);
    assert!(named.iter().all(|l| job.recipients[..55].iter().any(|r| l.starts_with(&format!("  {r}  ")))));
    let report = job.reports().pop().unwrap();
    let name = report.file_name().unwrap().to_string_lossy().into_owned();
    run.line_with(&["  … and 5 more (see ", &format!("reports/{name})")]);
    assert!(job.recipients[55..].iter().all(|r| !run.stdout.contains(r.as_str())), "delivered ones are not named");
}
