//! Review of issue 12: reports as evidence and `repair`, against the scripted server. Each test here fails on
//! the change as reviewed: a healthy job refused for good (false alarms the user cannot clear), a real loss
//! let through (a recipient sent twice), and a repair that leaves the journal cut without its marks.

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::strace;
use crate::common::unique_tag;
use crate::jobs_support::run_in;

fn job(server: &MailServer, prefix: &str, n: usize, extra: &str) -> SendJob {
    let tag = unique_tag(prefix);
    SendJob::new(&tag, &Smtp::scripted(server).with("connections = 1"), addresses(&tag, n), extra)
}

fn edit(job: &SendJob, name: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(job.path().join(name)).unwrap();
    assert!(text.contains(from), "{name} has no {from:?}");
    job.write(name, text.replacen(from, to, 1));
}

/// With a key column, the address of a key can change in the CSV (a typo fixed after a bounce). The next
/// run carries the key's outcome and its report lists it under the *new* address, which no journal record
/// names; every later run is then refused (exit 2), and `repair --from-reports` says "nothing changed" (the
/// key is known), so the job can never send again: a new row added later is never sent.
#[test]
fn a_carried_outcome_under_an_address_corrected_in_the_csv_does_not_stop_later_runs() {
    let server = MailServer::start();
    let job = job(&server, "rekey", 3, "[retry]\nattempts = 1\n");
    edit(&job, "job.toml", "name = \"name\"\n", "name = \"name\"\nkey = \"code\"\n");
    server.reject(&job.recipients[1], "550 5.1.1 No such user", 1);
    job.send(&["--yes"]).expect(1);
    let fixed = format!("fixed-{}", job.recipients[1]);
    edit(&job, "recipients.csv", &job.recipients[1], &fixed);
    job.send(&["--yes"]).expect(1); // carried: failed in an earlier run (listed under the fixed address)

    let tag = &job.tag;
    let added = format!("added-{tag}@example.test");
    let csv = std::fs::read_to_string(job.path().join("recipients.csv")).unwrap();
    job.write("recipients.csv", format!("{csv}{added},Added,{tag}-added\n"));
    let run = job.send(&["--yes"]);
    assert_ne!(run.code, 2, "a healthy job refused as if its journal lost records:\n{}", run.stderr);
    assert_eq!(server.accepted().get(&added).copied(), Some(1), "the row added later was never sent");
}

/// A row whose message cannot be made at send time (its attachment removed during a long run) is reported
/// `failed` with no journal record. The next run takes that report row for a lost record and refuses
/// (exit 2); `repair --from-reports` would then record it as failed for good, though it was never sent.
/// (On a campaign's first run every message comes built from the check, see `job::spool`: the long run here
/// is the second, which renders at send time.)
#[test]
fn a_row_whose_message_cannot_be_made_mid_run_does_not_stop_the_next_run() {
    let server = MailServer::start();
    let job = job(&server, "render", 60, "");
    edit(&job, "job.toml", "text = ", "attachments = [\"files/{{ code }}.txt\"]\ntext = ");
    let code = |i: usize| format!("{}-{i:04}", job.tag);
    for i in 0..60 {
        job.write(&format!("files/{}.txt", code(i)), format!("file {i}\n"));
    }
    job.send(&["--yes", "--limit", "1"]).expect(0);
    let child = job.spawn_quietly(&["--yes", "--rate", "20"]);
    server
        .wait_until(std::time::Duration::from_secs(20), "the second run's first delivery", |s| s.accepted_total() >= 2);
    std::fs::remove_file(job.path().join(format!("files/{}.txt", code(55)))).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "row 55 cannot be made: exit 1: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(job.last_report().count("failed"), 1);

    job.write(&format!("files/{}.txt", code(55)), "file 55\n");
    let run = job.send(&["--yes"]);
    assert_ne!(run.code, 2, "refused over a message that was never sent:\n{}", run.stderr);
    for r in &job.recipients {
        assert!(server.accepted().get(r).copied().unwrap_or(0) <= 1, "{r} sent twice");
    }
}

/// On a campaign's first run the messages sent are the ones the check built (`job::spool`): an attachment
/// removed once sending began still goes as it was checked, and every row is delivered once.
#[test]
fn on_a_first_run_what_was_checked_is_what_is_sent() {
    let server = MailServer::start();
    let job = job(&server, "spooled", 60, "");
    edit(&job, "job.toml", "text = ", "attachments = [\"files/{{ code }}.txt\"]\ntext = ");
    let code = |i: usize| format!("{}-{i:04}", job.tag);
    for i in 0..60 {
        job.write(&format!("files/{}.txt", code(i)), format!("file {i}\n"));
    }
    let child = job.spawn_quietly(&["--yes", "--rate", "20"]);
    server.wait_until(std::time::Duration::from_secs(20), "a first delivery", |s| s.accepted_total() >= 1);
    std::fs::remove_file(job.path().join(format!("files/{}.txt", code(55)))).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for r in &job.recipients {
        assert_eq!(server.accepted().get(r).copied(), Some(1), "{r}");
    }
    let body = server.bodies(&job.recipients[55]).pop().expect("row 55's message");
    let body = String::from_utf8_lossy(&body);
    let part = body.split(&format!("filename=\"{}.txt\"", code(55))).nth(1).expect("the attachment");
    assert!(part.contains("file 55=0A"), "the attachment as checked: {body}");
}

/// The check asks only whether the journal *names* an address, not what it knows of it: a recipient
/// deferred once and delivered on its retry, whose later records were lost (journal restored from a copy
/// made between the two), is known as "deferred", so the report saying "delivered" is ignored and the
/// recipient is sent a second time.
#[test]
fn a_recipient_the_journal_knows_only_as_deferred_while_a_report_says_delivered_is_not_sent_again() {
    let server = MailServer::start();
    let job = job(&server, "deferlost", 1, "");
    let x = job.recipients[0].clone();
    server.reject(&x, "451 4.3.0 Try again later", 1);
    job.send(&["--yes"]).expect(0);
    assert_eq!(server.accepted().get(&x).copied(), Some(1));
    assert_eq!(job.last_report().count("delivered"), 1);
    // The journal as a copy made after the deferral: run, committing, deferred outcome.
    let text = std::fs::read_to_string(job.journal_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let deferred = lines.iter().position(|l| l.contains("\"status\":\"deferred\"")).expect("a deferred outcome");
    std::fs::write(job.journal_path(), lines[..=deferred].join("\n") + "\n").unwrap();

    let run = job.send(&["--yes"]);
    assert_eq!(server.accepted().get(&x).copied(), Some(1), "{x}, delivered by the report, was sent again");
    assert_eq!(run.code, 2, "the report says more than the journal: refused\n{}", run.stderr);
}

/// `'` is an ordinary character of a local part, and the report writes cells as they are (it adds no `'`
/// against spreadsheet formulas); the evidence reader strips a leading `'` before `-`, `=`, `+`, `@`
/// anyway, so `'-x@…` is read back as `-x@…`, which the journal does not know: every later run is refused,
/// and `repair --from-reports` leaves it out ("no longer in the CSV"), so the refusal never clears.
#[test]
fn an_address_beginning_with_an_apostrophe_is_not_taken_for_a_lost_record() {
    let server = MailServer::start();
    let tag = unique_tag("apos");
    let mut recipients = addresses(&tag, 2);
    recipients[0] = format!("'-{}", recipients[0]);
    let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 1"), recipients, "");
    job.send(&["--yes"]).expect(0);
    let run = job.send(&["--yes"]);
    assert_eq!(run.code, 0, "a finished job refused:\n{}", run.stderr);
}

/// `repair` truncated the journal in place, then appended the uncertain marks: if that write failed (a full
/// disk, the very thing that often damaged the journal) or the process died in between, the journal was cut
/// and named nobody from the cut part; a second `repair` found "no damaged line", and `send` sent those
/// recipients again. Now the new journal's write fails (strace injects ENOSPC; CI installs strace) and the
/// damaged journal is left as it was, to be repaired once there is room.
#[test]
fn a_repair_that_cannot_write_its_marks_does_not_leave_the_journal_cut_without_them() {
    if !strace::available(module_path!()) {
        return;
    }
    let server = MailServer::start();
    let job = job(&server, "repairfull", 8, "");
    job.send(&["--yes"]).expect(0);
    let text = std::fs::read_to_string(job.journal_path()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replacen("\"row\":", "\"row\":\u{1}", 1); // damage before the last line
    std::fs::write(job.journal_path(), lines.join("\n") + "\n").unwrap();
    std::fs::remove_dir_all(job.path().join("reports")).unwrap(); // no other evidence

    // The new journal is written beside the old one (`job.journal.repairing`) and renamed over it: fail that.
    let repairing = job.path().canonicalize().unwrap().join("job.journal.repairing");
    let mut repair = std::process::Command::new(env!("CARGO_BIN_EXE_mailshot"));
    repair.args(["repair", "job.toml"]).current_dir(job.path());
    let options = ["-o", "/dev/null", "-e", "trace=write", "-e", "inject=write:error=ENOSPC:when=1", "-P"];
    let failed = strace::run(&repair, options.map(std::ffi::OsStr::new).into_iter().chain([repairing.as_os_str()]));
    assert!(!failed.status.success(), "the journal's write was failed: repair must say so");

    // Whatever repair did, the journal must not have forgotten anyone the damaged journal named; and once
    // there is room, repair works (a second kept file beside the first).
    run_in(job.path(), &["repair", "job.toml"]).expect(0).line_with(&["cut at line 4"]);
    let before = server.accepted_total();
    job.send(&["--yes"]);
    assert_eq!(server.accepted_total(), before, "recipients cut out of the journal were sent again");
}

/// `--fresh` sets the journal aside first and `reports/` second: when the second step fails (reports/ a
/// mount point: EBUSY; another device: EXDEV; or a kill between the two) the run stops with the old journal
/// gone and the old reports in place. The next `send` then refuses, and the advice it gives, `repair
/// --from-reports`, copies the *old* campaign's statuses into the new campaign's journal: the new campaign
/// never sends to those recipients. (The rename is failed with strace; CI installs it.)
#[test]
fn a_fresh_campaign_that_could_not_set_the_reports_aside_keeps_the_old_journal() {
    if !strace::available(module_path!()) {
        return;
    }
    let server = MailServer::start();
    let job = job(&server, "freshhalf", 3, "");
    job.send(&["--yes"]).expect(0);
    let command = job.command(&["--yes", "--fresh"]);
    let failed =
        strace::run(&command, ["-o", "/dev/null", "-e", "trace=rename", "-e", "inject=rename:error=EBUSY:when=1"]);
    assert_eq!(failed.status.code(), Some(2), "reports/ could not be set aside");
    assert!(
        job.journal_path().exists(),
        "--fresh stopped half-way: the old journal is gone while the old reports stay, so the next send is \
         refused and its advice (repair --from-reports) would carry the old campaign into the new one"
    );
}
