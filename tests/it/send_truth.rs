//! What a run and `status` say is true (issue 13): the resume prompt counts what earlier runs settled, a job
//! stopped before sending leads with the cause and counts "not sent" (the word `status` uses too), and the
//! refusal to resume changed inputs names what changed.

use crate::common::send_job::{PASSWORD_ENV, SendJob, Smtp, addresses, summary_count};
use crate::common::unique_tag;
use crate::send_status::status;
use mailshot::smtp::testing::MailServer;

const ONE_ATTEMPT: &str = "[retry]\nattempts = 1\ninitial_delay = 0.1\nmax_delay = 0.5\n";

#[test]
fn the_prompt_says_a_run_resumes_and_what_earlier_runs_settled() {
    let server = MailServer::start();
    let tag = unique_tag("prompt");
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 1"), addresses(&tag, 6), ONE_ATTEMPT);
    let via = format!("from {} through 127.0.0.1:{} with 1 connection(s)? [y/N]", job.from, server.port);

    let (code, shown) = job.send_on_a_terminal(&[], "n");
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains(&format!("Send up to 6 messages {via}")), "{shown}");
    assert!(shown.contains("not confirmed; nothing was sent"), "{shown}");
    assert!(!job.journal_path().exists(), "no journal before a yes");

    server.reject(&job.recipients[0], "550 5.1.1 No such user", u32::MAX);
    server.reject(&job.recipients[1], "450 4.2.0 Mailbox busy", u32::MAX);
    server.close_after_dot(&job.recipients[3], 1);
    job.send(&["--yes", "--limit", "4"]).expect(1);
    let mails = server.commands("MAIL");

    let (code, shown) = job.send_on_a_terminal(&[], "n");
    assert_eq!(code, 2, "{shown}");
    let resumed = "2 of 6 were settled in earlier runs; 1 uncertain (maybe delivered) stays unsent \
                   (--resend-uncertain); send the remaining 3 (1 deferred earlier, tried again)";
    assert!(shown.contains(&format!("{resumed} {via}")), "{shown}");
    let (_, shown) = job.send_on_a_terminal(&["--limit", "1", "--resend-uncertain"], "n");
    let asked = "2 of 6 were settled in earlier runs; 1 uncertain (maybe delivered) is sent again as asked; \
                 send 1 of the remaining 4 (1 deferred earlier, tried again)";
    assert!(shown.contains(&format!("{asked} {via}")), "{shown}");
    assert_eq!(server.commands("MAIL"), mails, "nothing sent without a yes");

    let (code, shown) = job.send_on_a_terminal(&[], "y");
    assert_eq!(code, 1, "the refused ones are still refused:\n{shown}");
    assert!(shown.contains("(2 of these were settled in earlier runs, 1 left uncertain by them)"), "{shown}");
    assert!(server.accepted().values().all(|&n| n == 1), "{:?}", server.accepted());
}

/// `--limit` and the daily budget cap what the prompt offers, fresh or resumed: it never offers more than the
/// run will send.
#[test]
fn the_prompt_offers_no_more_than_the_limit_or_the_daily_budget_allows() {
    let server = MailServer::start();
    let tag = unique_tag("prompt-cap");
    let rate = "[rate]\nmax_per_day = 3\n";
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 1"), addresses(&tag, 6), rate);
    let via = format!("from {} through 127.0.0.1:{} with 1 connection(s)? [y/N]", job.from, server.port);

    let (_, shown) = job.send_on_a_terminal(&[], "n");
    assert!(shown.contains(&format!("Send up to 3 of 6 messages (the daily budget allows 3 more) {via}")), "{shown}");
    let (_, shown) = job.send_on_a_terminal(&["--limit", "2"], "n");
    assert!(shown.contains(&format!("Send up to 2 of 6 messages {via}")), "{shown}");
    job.send(&["--yes", "--limit", "1"]).expect(0);

    let (_, shown) = job.send_on_a_terminal(&[], "n");
    let resumed = "1 of 6 were settled in earlier runs; send 2 of the remaining 5 (the daily budget allows 2 more)";
    assert!(shown.contains(&format!("{resumed} {via}")), "{shown}");
    let (code, _) = job.send_on_a_terminal(&[], "y");
    assert_eq!((code, server.accepted_total()), (75, 3), "the run sends what the prompt offered");
}

/// A job whose every login the fake server refuses.
fn refused_login(server: &MailServer, n: usize) -> SendJob {
    server.reject_logins();
    let tag = unique_tag("truth-auth");
    let smtp = Smtp::scripted(server)
        .with("connections = 2")
        .with("username = \"news\"")
        .with(&format!("password_env = \"{PASSWORD_ENV}\""))
        .with("allow_plaintext_auth = true");
    let mut job = SendJob::new(&tag, &smtp, addresses(&tag, n), "");
    job.set_env(PASSWORD_ENV, "wrong");
    job
}

/// The cause is the first thing said after the check's line, before the summary; the summary, the report and
/// `status` all call the recipients "not sent", with and without `-q`.
#[test]
fn a_job_stopped_before_sending_leads_with_the_cause_and_counts_not_sent() {
    for quiet in [false, true] {
        let server = MailServer::start();
        let job = refused_login(&server, 30);
        let args: &[&str] = if quiet { &["--yes", "-q"] } else { &["--yes"] };
        let (code, out) = job.send_interleaved(args);
        assert_eq!(code, 3, "{out}");
        let lines: Vec<&str> = out.lines().map(crate::common::untimed).collect();
        let stopped = lines.iter().position(|l| l.starts_with("mailshot: the job stopped: ") && l.contains("535"));
        let summary = lines.iter().position(|l| *l == "summary");
        assert!(stopped.is_some() && stopped < summary, "the cause leads (quiet: {quiet}):\n{out}");
        assert_eq!(out.matches("the job stopped").count(), 1, "said once:\n{out}");
        assert_eq!((summary_count(&out, "not sent"), summary_count(&out, "skipped")), (30, 0), "{out}");
        assert_eq!(job.last_report().count("not sent"), 30);

        let said = status(&job, &[]);
        said.expect(0).line_with(&["not sent   30"]);
        said.line_with(&["last run", "exit 3: delivered 0 failed 0 deferred 0 uncertain 0 not sent 30 skipped 0"]);
        let json: serde_json::Value = serde_json::from_str(&status(&job, &["--json"]).stdout).unwrap();
        assert_eq!((json["not_sent"].as_u64(), json["pending"].as_u64()), (Some(30), Some(30)), "{json}");
    }
}

/// Every kind of input the campaign depends on is named when it changes: each template, a `[message]` key, a
/// `[recipients]` key; several at once are all named; `--accept-changes` names them too.
#[test]
fn the_changed_inputs_refusal_names_what_changed() {
    type Edit = (&'static str, fn(&SendJob));
    let edits: [Edit; 5] = [
        ("the text template templates/body.txt", |j| j.write("templates/body.txt", "Changed {{ name }}\n")),
        ("the html template templates/body.html", |j| j.write("templates/body.html", "<p>Changed</p>\n")),
        ("[message] subject", |j| edit_job(j, "subject = \"Hi ", "subject = \"Hello ")),
        ("[recipients] name", |j| edit_job(j, "name = \"name\"", "name = \"code\"")),
        ("[message] subject, the text template templates/body.txt", |j| {
            edit_job(j, "subject = \"Hi ", "subject = \"Hello ");
            j.write("templates/body.txt", "Changed {{ name }}\n");
        }),
    ];
    for (named, edit) in edits {
        let (server, job) = half_sent("named");
        edit(&job);
        let run = job.send(&["--yes"]);
        run.expect(2).line_with(&[&format!("mailshot: {named} changed since the last run"), "--accept-changes"]);
        job.send(&["--yes", "--accept-changes"]).expect(0).line_with(&[&format!("note: {named} changed since")]);
        assert_eq!(server.accepted_total(), 4, "{named}");
    }
}

/// A journal written before per-input digests were kept still compares, and says it cannot tell what changed.
#[test]
fn an_older_journal_without_input_digests_says_it_cannot_tell_what_changed() {
    let (server, job) = half_sent("older");
    forget_digests(&job);
    job.send(&["--yes", "--limit", "1"]).expect(0);
    assert_eq!(server.accepted_total(), 3, "unchanged inputs still compare equal with an older journal");

    forget_digests(&job);
    job.write("templates/body.txt", "Changed {{ name }}\n");
    job.send(&["--yes"]).expect(2).line_with(&["written by an older mailshot", "cannot tell which", "--fresh"]);
}

/// Rewrites the journal as a mailshot before per-input digests wrote it.
fn forget_digests(job: &SendJob) {
    let text = std::fs::read_to_string(job.journal_path()).unwrap();
    let older: String = text
        .lines()
        .map(|l| {
            let mut record: serde_json::Value = serde_json::from_str(l).unwrap();
            record.as_object_mut().unwrap().remove("inputs");
            format!("{record}\n")
        })
        .collect();
    assert_ne!(older, text, "the last run record had its digests");
    std::fs::write(job.journal_path(), older).unwrap();
}

/// The CSV's rows are not among the inputs: fixing or adding a row resumes (recipients match by key).
#[test]
fn an_added_csv_row_is_not_a_change_and_only_it_is_sent() {
    let (server, job) = half_sent("rows");
    let csv = std::fs::read_to_string(job.path().join("recipients.csv")).unwrap();
    let added = format!("added-{}@example.test", unique_tag("row"));
    job.write("recipients.csv", format!("{csv}{added},Added,X1\n"));
    job.send(&["--yes"]).expect(0);
    assert_eq!(server.accepted().get(&added), Some(&1));
    assert_eq!(server.accepted_total(), 5);
}

/// A job with an HTML template whose first run sent 2 of 4 (`--limit 2`).
fn half_sent(prefix: &str) -> (MailServer, SendJob) {
    let server = MailServer::start();
    let tag = unique_tag(prefix);
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 1"), addresses(&tag, 4), "");
    edit_job(&job, "text = \"templates/body.txt\"", "text = \"templates/body.txt\"\nhtml = \"templates/body.html\"");
    job.write("templates/body.html", "<p>Hello {{ name }}</p>\n");
    job.send(&["--yes", "--limit", "2"]).expect(0);
    assert_eq!(server.accepted_total(), 2);
    (server, job)
}

fn edit_job(job: &SendJob, from: &str, to: &str) {
    let text = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    assert!(text.contains(from), "{from:?} in {text}");
    job.write("job.toml", text.replacen(from, to, 1));
}
