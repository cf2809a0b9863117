//! The journal across runs (issue 6), against the scripted server: a message whose final dot went out without
//! a reply stays uncertain until `--resend-uncertain`; a finished job sends nothing; deferred recipients are
//! retried next time; a torn last record is ignored; changed templates or message settings stop a resume;
//! `--fresh` keeps the old journal.

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::strace;
use crate::common::unique_tag;

fn job(server: &MailServer, prefix: &str, n: usize, extra: &str) -> SendJob {
    let tag = unique_tag(prefix);
    SendJob::new(&tag, &Smtp::scripted(server).with("connections = 1"), addresses(&tag, n), extra)
}

/// Journal records of type `t` for `key`.
fn records(job: &SendJob, t: &str, key: &str) -> Vec<serde_json::Value> {
    job.journal().into_iter().filter(|r| r["t"] == t && r["key"] == key).collect()
}

#[test]
fn every_committing_record_is_written_before_its_final_dot() {
    let server = MailServer::start();
    let tag = unique_tag("commit");
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 4"), addresses(&tag, 60), "");
    let journal = job.journal_path();
    // At each final dot, the recipient's committing record must already be in the journal.
    server.check_at_dot(move |rcpt| {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        text.contains(&format!(r#""t":"committing","key":"{rcpt}""#))
    });
    job.send(&["--yes"]).expect(0);
    assert_eq!(server.accepted_total(), 60);
    assert_eq!(server.failed_dot_checks(), Vec::<String>::new(), "final dots sent before their committing record");
}

#[test]
fn a_connection_lost_after_the_final_dot_is_uncertain_until_resend_uncertain_sends_it_once_more() {
    let server = MailServer::start();
    let job = job(&server, "uncertain", 6, "");
    let lost = job.recipients[2].clone();
    server.close_after_dot(&lost, 1);

    job.send(&["--yes"]).expect(1);
    let report = job.last_report().by_email();
    assert_eq!((report[&lost].status.as_str(), report[&lost].code), ("uncertain", None), "{:?}", report[&lost]);
    assert!(job.recipients.iter().filter(|r| **r != lost).all(|r| report[r].status == "delivered"), "{report:#?}");
    assert_eq!(server.bodies(&lost).len(), 1, "the whole message reached the server");
    assert_eq!(records(&job, "committing", &lost).len(), 1);
    assert!(records(&job, "outcome", &lost).is_empty(), "no outcome recorded for a message without a reply");

    // A plain re-run reports it and sends nothing at all.
    let mails = server.commands("MAIL");
    job.send(&["--yes"]).expect(1);
    assert_eq!(server.commands("MAIL"), mails, "a plain re-run sent something");
    let row = &job.last_report().by_email()[&lost];
    assert_eq!(row.status, "uncertain", "{row:?}");
    assert!(row.reply.contains("earlier run"), "{row:?}");

    job.send(&["--yes", "--resend-uncertain"]).expect(0);
    assert_eq!(server.commands("MAIL"), mails + 1, "only the uncertain recipient is sent again");
    assert_eq!(server.accepted().get(&lost), Some(&1));
    let bodies = server.bodies(&lost);
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0] == bodies[1], "the resent message is byte-identical (same Date and Message-ID)");

    job.send(&["--yes", "--resend-uncertain"]).expect(0);
    assert_eq!(server.commands("MAIL"), mails + 1, "once delivered it is no longer uncertain");
    assert!(server.accepted().values().all(|&n| n == 1), "{:?}", server.accepted());
}

#[test]
fn a_finished_job_sends_nothing_and_exits_0() {
    let server = MailServer::start();
    let job = job(&server, "finished", 5, "");
    job.send(&["--yes"]).expect(0);
    let (connections, _) = server.connections();
    let run = job.send(&["--yes"]);
    run.expect(0);
    assert_eq!((server.connections().0, server.commands("MAIL")), (connections, 5), "the re-run contacted the server");
    let report = job.last_report();
    assert_eq!(report.count("delivered"), 5);
    assert!(report.rows.iter().all(|r| r.reply.contains("earlier run")), "{report:#?}");
    run.line_with(&["5 of these were settled in earlier runs"]);
}

#[test]
fn deferred_recipients_are_retried_on_the_next_run() {
    let server = MailServer::start();
    let job = job(&server, "deferred", 5, "[retry]\nattempts = 2\ninitial_delay = 0.1\n");
    let busy = job.recipients[1].clone();
    server.reject(&busy, "450 4.2.0 Mailbox busy", 3);

    job.send(&["--yes"]).expect(1);
    let row = &job.last_report().by_email()[&busy];
    assert_eq!((row.status.as_str(), row.code, row.attempts), ("deferred", Some(450), 2), "{row:?}");
    assert_eq!(records(&job, "outcome", &busy).last().unwrap()["status"], "deferred");

    job.send(&["--yes"]).expect(0);
    let row = &job.last_report().by_email()[&busy];
    assert_eq!((row.status.as_str(), row.attempts), ("delivered", 2), "450 once more, then 250: {row:?}");
    assert_eq!(server.commands("RCPT"), 4 + 4, "four others once, the busy one four times");
    assert!(job.recipients.iter().all(|r| server.accepted().get(r) == Some(&1)), "{:?}", server.accepted());
}

#[test]
fn a_torn_last_journal_record_is_ignored_and_cut_off() {
    let server = MailServer::start();
    let job = job(&server, "torn", 6, "[retry]\nattempts = 1\n");
    let busy = job.recipients[4].clone();
    server.reject(&busy, "450 4.2.0 Mailbox busy", 1);
    job.send(&["--yes"]).expect(1);

    // Power lost in the middle of the next record.
    let intact = std::fs::read(job.journal_path()).unwrap();
    let torn = format!(r#"{{"t":"outcome","key":"{busy}","row":6,"status":"deliv"#);
    std::fs::write(job.journal_path(), [intact.as_slice(), torn.as_bytes()].concat()).unwrap();

    job.send(&["--yes"]).expect(0);
    assert!(job.recipients.iter().all(|r| server.accepted().get(r) == Some(&1)), "{:?}", server.accepted());
    let after = std::fs::read(job.journal_path()).unwrap();
    assert!(after.starts_with(&intact) && !String::from_utf8_lossy(&after).contains("\"deliv\""), "torn bytes kept");
    assert_eq!(records(&job, "outcome", &busy).last().unwrap()["status"], "delivered");
}

#[test]
fn a_damaged_record_before_the_last_line_stops_the_run_naming_the_line() {
    let server = MailServer::start();
    let job = job(&server, "damaged", 3, "[retry]\nattempts = 1\n");
    server.reject(&job.recipients[0], "450 4.2.0 Mailbox busy", 1);
    job.send(&["--yes"]).expect(1);
    let text = std::fs::read_to_string(job.journal_path()).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    std::fs::write(job.journal_path(), format!("{first}\nnot json\n{rest}")).unwrap();

    let mails = server.commands("MAIL");
    let run = job.send(&["--yes"]);
    run.expect(2).line_with(&["line 2", "damaged", "mailshot repair"]);
    assert!(!run.stderr.contains("move it aside"), "never advise a new journal: {}", run.stderr);
    assert_eq!(server.commands("MAIL"), mails, "sent with a journal it could not read");

    // `repair` cuts at line 2 and keeps the rest; everyone named there is uncertain, so nobody is re-sent.
    let repair = crate::jobs_support::run_in(job.path(), &["repair", "job.toml"]);
    repair.expect(0).line_with(&["cut at line 2"]).line_with(&["3 recipient(s)", "uncertain"]);
    let kept: Vec<_> = std::fs::read_dir(job.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("job.journal.damaged-"))
        .collect();
    let kept = std::fs::read_to_string(kept.first().expect("the cut part is kept").path()).unwrap();
    assert!(kept.starts_with("not json\n"), "{kept}");
    job.send(&["--yes"]).expect(1);
    assert_eq!(server.commands("MAIL"), mails, "a recipient named in the cut part was sent again");
    assert_eq!(job.last_report().count("uncertain"), 3, "{:?}", job.last_report().counts());
    crate::jobs_support::run_in(job.path(), &["repair", "job.toml"]).expect(0).line_with(&["nothing changed"]);
}

/// (what changed, the edit, whether a resume must refuse it).
type Edit = (&'static str, fn(&SendJob), bool);

const EDITS: [Edit; 4] = [
    ("the text template", |j| j.write("templates/body.txt", "Changed: {{ name }}\n"), true),
    ("the subject", |j| edit_job(j, "subject = \"Hi ", "subject = \"Hello "), true),
    ("[retry]", |j| edit_job(j, "initial_delay = 0.1", "initial_delay = 0.2"), false),
    ("[smtp] connections", |j| edit_job(j, "connections = 1", "connections = 2"), false),
];

fn edit_job(job: &SendJob, from: &str, to: &str) {
    let text = std::fs::read_to_string(job.path().join("job.toml")).unwrap();
    assert!(text.contains(from), "{from:?} in {text}");
    job.write("job.toml", text.replacen(from, to, 1));
}

#[test]
fn a_changed_template_or_message_setting_stops_a_resume_unless_accepted() {
    for (what, edit, refused) in EDITS {
        let server = MailServer::start();
        let job = job(&server, "changed", 4, "");
        let rest = job.recipients[3].clone();
        server.reject(&rest, "450 4.2.0 Mailbox busy", 3);
        job.send(&["--yes"]).expect(1);
        edit(&job);
        let mails = server.commands("MAIL");

        let run = job.send(&["--yes"]);
        if refused {
            run.expect(2).line_with(&["changed since the last run", "--accept-changes"]);
            assert_eq!(server.commands("MAIL"), mails, "{what}: sent despite the change");
            job.send(&["--yes", "--accept-changes"]).expect(0);
        } else {
            run.expect(0);
        }
        assert_eq!(server.accepted().get(&rest), Some(&1), "{what}: the rest is sent");
        assert!(server.accepted().values().all(|&n| n == 1), "{what}: {:?}", server.accepted());
    }
}

#[test]
fn fresh_starts_a_new_campaign_and_keeps_the_old_journal() {
    let server = MailServer::start();
    let job = job(&server, "fresh", 3, "");
    job.send(&["--yes"]).expect(0);
    let old = std::fs::read(job.journal_path()).unwrap();

    job.send(&["--yes", "--fresh"]).expect(0).line_with(&["old journal is kept as"]);
    assert!(job.recipients.iter().all(|r| server.accepted().get(r) == Some(&2)), "a new campaign sends again");
    let kept = kept_journals(&job);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), old, "the old journal is kept unchanged");
    let runs: Vec<_> = job.journal().into_iter().filter(|r| r["t"] == "run").collect();
    assert_eq!((runs.len(), &runs[0]["run"]), (1, &serde_json::json!(1)), "the new journal starts over");
}

#[test]
fn fresh_never_overwrites_an_earlier_kept_journal() {
    let server = MailServer::start();
    let job = job(&server, "fresh2", 1, "");
    job.send(&["--yes"]).expect(0);
    // Back to back: some of these start within one second of each other.
    for _ in 0..4 {
        job.send(&["--yes", "--fresh"]).expect(0);
    }
    assert_eq!(kept_journals(&job).len(), 4, "{:?}", kept_journals(&job));
}

/// Journals set aside by `--fresh`: `job.journal.<something>.jsonl`.
fn kept_journals(job: &SendJob) -> Vec<std::path::PathBuf> {
    let mut kept: Vec<_> = std::fs::read_dir(job.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("job.journal.") && name.ends_with(".jsonl") && name != "job.journal.jsonl"
        })
        .collect();
    kept.sort();
    kept
}

/// A new journal's name, `--fresh`'s link and unlink, and a finished report are made durable by an `fsync`
/// of their folder (seen with strace, which prints each fsync's path; CI installs it).
#[test]
fn the_journal_the_kept_journal_and_the_report_have_their_folders_synced() {
    if !strace::available(module_path!()) {
        return;
    }
    let server = MailServer::start();
    let job = job(&server, "dirsync", 2, "");
    let traced = |args: &[&str]| {
        let trace = job.path().join("trace.txt");
        let options = ["-y", "-e", "trace=fsync", "-o"].map(std::ffi::OsStr::new);
        assert!(strace::run(&job.command(args), options.iter().copied().chain([trace.as_os_str()])).status.success());
        std::fs::read_to_string(&trace).unwrap()
    };
    let dir = job.path().canonicalize().unwrap();
    let synced = |trace: &str, folder: &std::path::Path| trace.contains(&format!("<{}>)", folder.display()));
    let first = traced(&["--yes"]);
    assert!(synced(&first, &dir), "the job folder after creating the journal:\n{first}");
    assert!(synced(&first, &dir.join("reports")), "the reports folder after the report:\n{first}");
    let fresh = traced(&["--yes", "--fresh"]);
    let syncs_of_dir = fresh.matches(&format!("<{}>)", dir.display())).count();
    assert!(syncs_of_dir >= 2, "after --fresh's unlink and after the new journal: {syncs_of_dir}\n{fresh}");
}

/// A journal cut short (restored from an older copy, truncated by a full disk) is not believed when the
/// reports say more was sent: `send` refuses naming the report, `repair --from-reports` takes the reports'
/// statuses back, and nobody is sent twice. `--fresh` sets the reports aside with the journal.
#[test]
fn a_journal_that_lost_records_is_refused_while_reports_say_more_and_repair_takes_them_back() {
    let server = MailServer::start();
    let job = job(&server, "lost", 6, "[retry]\nattempts = 1\n");
    server.reject(&job.recipients[5], "550 5.1.1 No such user", 1);
    job.send(&["--yes"]).expect(1);
    let mails = server.commands("MAIL");
    let text = std::fs::read_to_string(job.journal_path()).unwrap();
    let kept: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(job.journal_path(), kept.join("\n") + "\n").unwrap();

    let run = job.send(&["--yes"]);
    run.expect(2).line_with(&["reports/", "does not know", "repair job.toml --from-reports"]);
    assert_eq!(server.commands("MAIL"), mails, "nothing is sent on a journal that lost records");

    let repair = crate::jobs_support::run_in(job.path(), &["repair", "job.toml", "--from-reports"]);
    repair.expect(0).line_with(&["took the statuses of"]);
    job.send(&["--yes"]).expect(1);
    assert_eq!(server.commands("MAIL"), mails, "a recipient the report had as sent was sent again");
    let report = job.last_report();
    assert_eq!((report.count("delivered"), report.count("failed")), (5, 1), "{:?}", report.counts());

    job.send(&["--yes", "--fresh"]).expect(0); // a new campaign: the one refusal was used up
    let aside = std::fs::read_dir(job.path()).unwrap().flatten();
    assert!(aside.into_iter().any(|e| e.file_name().to_string_lossy().starts_with("reports-")), "old reports kept");
    assert_eq!(job.reports().len(), 1, "the new campaign's reports/ holds its own report only");
}

/// A disk that is already full when the run starts (strace fails the journal's writes with ENOSPC; CI
/// installs strace): nothing is sent and the run exits 75, "run again later", not 2 as for bad input.
#[test]
fn a_full_disk_at_the_start_sends_nothing_and_exits_75() {
    if !strace::available(module_path!()) {
        return;
    }
    let server = MailServer::start();
    let job = job(&server, "diskfull", 3, "");
    let journal = job.path().canonicalize().unwrap().join("job.journal.jsonl");
    let options = ["-o", "/dev/null", "-e", "trace=write", "-e", "inject=write:error=ENOSPC", "-P"];
    let options = options.map(std::ffi::OsStr::new).into_iter().chain([journal.as_os_str()]);
    let run = crate::jobs_support::Run::from(strace::run(&job.command(&["--yes"]), options));
    run.expect(75).line_with(&["disk is full", "nothing was sent"]);
    assert_eq!(server.commands("MAIL"), 0);
}

/// The journal grows ahead of its records in zero-filled steps (`prezeroed`), best effort: a step that fails
/// (strace fails one pwrite of zeros with ENOSPC, as a disk that fills up would) leaves the records to be
/// written as they are. A later step must then lay its zeros after the records written meanwhile, never
/// over them: zeros over a durable committing record lose the knowledge that its message was sent (the next
/// run calls the journal damaged, and `repair` cannot name a recipient whose record is zeros, so it is sent
/// again).
#[test]
fn a_failed_growth_step_never_lays_zeros_over_records_written_after_it() {
    if !strace::available(module_path!()) {
        return;
    }
    let server = MailServer::start();
    let job = job(&server, "growfail", 400, "");
    let journal = job.path().canonicalize().unwrap().join("job.journal.jsonl");
    // The first step takes two pwrites (64 KiB, then the rest); the third is the second step's first.
    let options = ["-o", "/dev/null", "-e", "trace=pwrite64", "-e", "inject=pwrite64:error=ENOSPC:when=3", "-P"];
    let options = options.map(std::ffi::OsStr::new).into_iter().chain([journal.as_os_str()]);
    let run = crate::jobs_support::Run::from(strace::run(&job.command(&["--yes"]), options));
    run.expect(0);
    assert_eq!(server.accepted_total(), 400);
    let bytes = std::fs::read(&journal).unwrap();
    let zeros = bytes.iter().filter(|&&b| b == 0).count();
    let mails = server.commands("MAIL");
    let again = job.send(&["--yes"]);
    assert_eq!(zeros, 0, "zeros in the closed journal ({} bytes); the next run: {}", bytes.len(), again.stderr);
    again.expect(0);
    assert_eq!(server.commands("MAIL"), mails, "a recipient was sent again");
}

/// Closing cuts off the zeros laid ahead of the records (`prezeroed`); that cut is tidiness, the records'
/// last sync is not. A cut that fails (strace fails the ftruncate with EIO) must still leave every record
/// synced, and is no error of the run: the zeros left are a torn tail the next run cuts off.
#[test]
fn a_failed_cut_of_the_zeros_at_close_still_syncs_the_last_records() {
    if !strace::available(module_path!()) {
        return;
    }
    let server = MailServer::start();
    let job = job(&server, "cutfail", 20, "");
    let journal = job.path().canonicalize().unwrap().join("job.journal.jsonl");
    let trace = job.path().join("trace.txt");
    let options = ["-e", "trace=write,ftruncate,fdatasync", "-e", "inject=ftruncate:error=EIO", "-o"];
    let options =
        options.map(std::ffi::OsStr::new).into_iter().chain([trace.as_os_str(), "-P".as_ref(), journal.as_os_str()]);
    let run = crate::jobs_support::Run::from(strace::run(&job.command(&["--yes"]), options));
    run.expect(0);
    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let last_write = lines.iter().rposition(|l| l.contains("write(")).expect("records written");
    let synced_after = lines[last_write..].iter().any(|l| l.contains("fdatasync(") && l.ends_with("= 0"));
    assert!(synced_after, "the last records were never synced:\n{trace}");
    assert!(!run.stderr.contains("Input/output error"), "{}", run.stderr);
    let mails = server.commands("MAIL");
    job.send(&["--yes"]).expect(0);
    assert_eq!(server.commands("MAIL"), mails, "a recipient was sent again");
}
