//! `mailshot status` (issue 6): counts by state, the last run, the budget; `--failed` as CSV that can be the
//! recipients of a new job with the same templates; `--json` for scripts.

use std::process::{Command, Stdio};

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::Run;

pub fn status(job: &SendJob, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailshot"));
    command.arg("status").arg("job.toml").args(args).current_dir(job.path()).env_clear().stdin(Stdio::null());
    Run::from(command.output().unwrap())
}

#[test]
fn status_counts_states_and_failed_rows_feed_a_new_job() {
    let server = MailServer::start();
    let tag = unique_tag("status");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 5), "[rate]\nmax_per_day = 100\n");
    status(&job, &[]).expect(2).line_with(&["no journal yet"]);
    let refused = job.recipients[1].clone();
    server.reject(&refused, "550 5.1.1 No such user", u32::MAX);
    job.send(&["--yes"]).expect(1);

    let text = status(&job, &[]);
    text.expect(0);
    for line in ["delivered  4", "failed     1", "deferred   0", "uncertain  0", "not sent   0"] {
        text.line_with(&[line]);
    }
    text.line_with(&["last run", "#1", "exit 1"]).line_with(&["budget", "95 of 100 left"]);

    let run = status(&job, &["--json"]);
    let json: serde_json::Value = serde_json::from_str(&run.expect(0).stdout).unwrap();
    assert_eq!((json["delivered"].as_u64(), json["failed"].as_u64()), (Some(4), Some(1)), "{json}");
    assert_eq!((json["pending"].as_u64(), json["budget_left"].as_u64()), (Some(0), Some(95)), "{json}");

    // The job's own `code` column keeps its name (the templates use it); the SMTP code becomes mailshot_code.
    let failed = status(&job, &["--failed"]).expect(0).stdout.clone();
    let mut reader = csv::Reader::from_reader(failed.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["row", "email", "mailshot_code", "reply", "name", "code"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{failed}");
    assert_eq!((&rows[0][0], &rows[0][1], &rows[0][2], &rows[0][4]), ("3", refused.as_str(), "550", "User 1"));
    assert!(rows[0][3].contains("No such user"), "{failed}");
    assert!(status(&job, &["--uncertain"]).expect(0).stdout.lines().count() == 1, "only the header");

    // Fed back as the recipients of the same job (a new campaign): it renders and sends the one row again.
    let toml = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    job.write("job.toml", toml.replace("csv = \"recipients.csv\"", "csv = \"failed.csv\""));
    job.write("failed.csv", &failed);
    server.reject(&refused, "550 5.1.1 No such user", 0);
    job.send(&["--yes", "--fresh"]).expect(0);
    assert_eq!(server.accepted().get(&refused), Some(&1), "the failed row was sent again, once");
    assert_eq!(server.accepted_total(), 5);
    let body = String::from_utf8(server.bodies(&refused).pop().unwrap()).unwrap();
    assert!(body.contains(&format!("your code is {tag}-0001.")), "rendered from the original columns:\n{body}");
}

/// Cron's questions: who is deferred (`--deferred`, a CSV like `--failed`), and how many messages went out
/// today — recipients delivered, not attempts: a message refused for now after its final dot and delivered
/// on its retry counts once (the budget, like a provider, counts both attempts).
#[test]
fn status_lists_the_deferred_and_counts_messages_not_attempts() {
    let server = MailServer::start();
    let tag = unique_tag("status-24h");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 5), "[rate]\nmax_per_day = 100\n");
    let (retried, deferred) = (job.recipients[0].clone(), job.recipients[4].clone());
    server.reply_after_dot(&retried, "451 4.3.0 Try again later", 1);
    server.reject(&deferred, "450 4.2.0 Mailbox busy", u32::MAX);
    job.send(&["--yes"]).expect(1);
    assert_eq!(server.accepted().get(&retried), Some(&1));

    let text = status(&job, &[]);
    text.expect(0).line_with(&["sent       4 messages in the last 24 hours"]);
    text.line_with(&["deferred   1"]).line_with(&["budget", "of 100 left in the last 24 hours"]);
    let json: serde_json::Value = serde_json::from_str(&status(&job, &["--json"]).stdout).unwrap();
    assert_eq!(json["sent_last_24h"].as_u64(), Some(4), "{json}");
    assert!(json["budget_left"].as_u64().unwrap() <= 95, "the retried message counts twice in the budget: {json}");

    let listed = status(&job, &["--deferred"]).expect(0).stdout.clone();
    let mut reader = csv::Reader::from_reader(listed.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["row", "email", "mailshot_code", "reply", "name", "code"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!((&rows[0][0], &rows[0][1], &rows[0][2], &rows[0][4]), ("6", deferred.as_str(), "450", "User 4"));
    assert!(rows[0][3].contains("Mailbox busy"), "{listed}");
}

/// `status` reads the journal as a run does: a torn last line is ignored, a damaged line before it is
/// reported with its number and `mailshot repair`, not skipped (the counts after it would be wrong).
#[test]
fn status_reads_a_damaged_journal_as_the_run_does() {
    let server = MailServer::start();
    let tag = unique_tag("status-damaged");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 3), "");
    job.send(&["--yes"]).expect(0);
    let journal = std::fs::read_to_string(job.journal_path()).unwrap();

    std::fs::write(job.journal_path(), format!("{journal}{{\"t\":\"outcome\",\"key\":")).unwrap();
    status(&job, &[]).expect(0).line_with(&["delivered  3"]);
    job.send(&["--yes"]).expect(0);

    let mut lines: Vec<String> = std::fs::read_to_string(job.journal_path()).unwrap().lines().map(Into::into).collect();
    lines[2] = "{\"t\":\"outcome\",\"key\":".into();
    std::fs::write(job.journal_path(), lines.join("\n") + "\n").unwrap();
    let said = status(&job, &[]);
    said.expect(2).line_with(&["job.journal.jsonl, line 3: the journal is damaged", "mailshot repair"]);
    assert!(said.stdout.is_empty(), "no counts from a damaged journal:\n{}", said.stdout);
    status(&job, &["--failed"]).expect(2).line_with(&["line 3: the journal is damaged"]);
    job.send(&["--yes"]).expect(2).line_with(&["line 3: the journal is damaged", "mailshot repair"]);
}
