use std::io::Write;
use std::sync::Mutex;

use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn committing(key: &str, at: DateTime<Utc>) -> Record {
    Record::Committing {
        key: key.into(),
        row: 2,
        email: key.into(),
        message_id: format!("<{key}>"),
        date: 1_790_000_000,
        attempt: 1,
        at,
    }
}

fn outcome(key: &str, status: Settled) -> Record {
    Record::Outcome {
        key: key.into(),
        row: 2,
        email: key.into(),
        status,
        code: Some(250),
        enhanced: Some("2.0.0".into()),
        reply: "250 2.0.0 Ok: queued as ABC".into(),
        attempt: 1,
        date: 1_790_000_000,
        at: now(),
        copies: String::new(),
    }
}

/// A delivered outcome whose copies (Cc/Bcc) were rejected, as `copies` says.
fn outcome_with_copies(key: &str, copies: &str) -> Record {
    let mut record = outcome(key, Settled::Delivered);
    if let Record::Outcome { copies: rejected, .. } = &mut record {
        *rejected = copies.into();
    }
    record
}

/// `copies` is written only when a copy was rejected, and a line without it (an older journal) still reads.
#[test]
fn an_outcome_keeps_its_rejected_copies_and_older_lines_still_parse() {
    let plain = outcome("a@example.test", Settled::Delivered);
    let line = serde_json::to_string(&plain).unwrap();
    assert!(!line.contains("copies"), "{line}");
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), plain);
    let with_copies = outcome_with_copies("b@example.test", "cc@example.test: 550 5.1.1 No such user");
    let line = serde_json::to_string(&with_copies).unwrap();
    assert!(line.contains(r#""copies":"cc@example.test: 550 5.1.1 No such user""#), "{line}");
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), with_copies);
}

#[tokio::test]
async fn records_survive_a_reopen_and_settle_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.journal.jsonl");
    let (journal, writer, replayed) = Journal::open(&path, now()).unwrap();
    assert!(replayed.entries.is_empty());
    journal
        .append(Record::Run { run: 1, started: now(), pid: 1, fingerprint: "f1".into(), inputs: None, shard: None })
        .unwrap();
    journal.commit(committing("a@x", now())).await.unwrap();
    journal.append(outcome("a@x", Settled::Delivered)).unwrap();
    journal.commit(committing("b@x", now())).await.unwrap();
    journal.append(outcome("c@x", Settled::Deferred)).unwrap();
    journal.append(outcome_with_copies("e@x", "cc@x: 550 5.1.1 No such user")).unwrap();
    drop(journal);
    writer.close().unwrap();

    let (_, _, replayed) = Journal::open(&path, now()).unwrap();
    assert_eq!(replayed.get("a@x").unwrap().state, JournalState::Settled(Settled::Delivered));
    let copies_rejected = |key| replayed.get(key).unwrap().copies_rejected;
    assert_eq!([copies_rejected("a@x"), copies_rejected("e@x")], [false, true], "a later run carries them (exit 1)");
    assert_eq!(replayed.get("b@x").unwrap().state, JournalState::Uncertain, "committing without outcome");
    assert_eq!(replayed.get("c@x").unwrap().state, JournalState::Settled(Settled::Deferred));
    assert_eq!(replayed.get("d@x"), None);
    assert_eq!(replayed.sent_last_24h, 2);
    let last = replayed.last_run.unwrap();
    assert_eq!((last.run, last.fingerprint.as_str(), last.ended), (1, "f1", None));
}

#[tokio::test]
async fn a_torn_last_line_is_ignored_and_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let (journal, writer, _) = Journal::open(&path, now()).unwrap();
    journal.commit(committing("a@x", now())).await.unwrap();
    drop(journal);
    writer.close().unwrap();
    let intact = std::fs::metadata(&path).unwrap().len();
    // Power loss in the middle of the next record.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"t":"outcome","key":"a@x","row":2,"status":"deliv"#).unwrap();
    drop(f);

    let (journal, writer, replayed) = Journal::open(&path, now()).unwrap();
    assert!(replayed.torn_tail);
    assert_eq!(replayed.get("a@x").unwrap().state, JournalState::Uncertain);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), intact, "torn bytes cut off");
    journal.commit(outcome("a@x", Settled::Delivered)).await.unwrap();
    drop(journal);
    writer.close().unwrap();
    let (_, _, replayed) = Journal::open(&path, now()).unwrap();
    assert!(!replayed.torn_tail);
    assert_eq!(replayed.get("a@x").unwrap().state, JournalState::Settled(Settled::Delivered));
}

#[test]
fn damage_in_the_middle_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let good = serde_json::to_string(&committing("a@x", now())).unwrap();
    std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
    match Journal::open(&path, now()) {
        Err(JournalError::Corrupt { line, .. }) => assert_eq!(line, 2),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("damaged journal accepted"),
    }
}

/// The writer lays zeros ahead of its records (`prezeroed`). While it runs the journal ends in them and a
/// reader (`status`) takes them for a torn tail; a crash leaves them for the next run to cut off; closing
/// cuts them off.
#[tokio::test]
async fn the_zeros_ahead_of_the_records_read_as_a_torn_tail_and_closing_cuts_them_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let (journal, writer, _) = Journal::open(&path, now()).unwrap();
    journal.commit(committing("a@x", now())).await.unwrap();
    let live = std::fs::read(&path).unwrap();
    let end = live.iter().position(|&b| b == 0).expect("zeros ahead of the record");
    assert!(end > 0 && live[end..].iter().all(|&b| b == 0), "one record, then zeros only");
    let seen = Replayed::read(live.as_slice(), now(), &path).unwrap();
    assert!(seen.torn_tail);
    assert_eq!(seen.intact_len, end as u64);
    assert_eq!(seen.get("a@x").unwrap().state, JournalState::Uncertain);

    // A crash now: the file as it is, its writer never closing. The next run cuts the zeros off and goes on.
    let crashed = dir.path().join("crashed.jsonl");
    std::fs::write(&crashed, &live).unwrap();
    let (again, again_writer, replayed) = Journal::open(&crashed, now()).unwrap();
    assert!(replayed.torn_tail);
    again.commit(outcome("a@x", Settled::Delivered)).await.unwrap();
    drop(again);
    again_writer.close().unwrap();
    let after = std::fs::read(&crashed).unwrap();
    assert!(!after.contains(&0), "closing cut the zeros off");
    assert_eq!(after.iter().filter(|&&b| b == b'\n').count(), 2);
    let (_, _, replayed) = Journal::open(&crashed, now()).unwrap();
    assert_eq!(replayed.get("a@x").unwrap().state, JournalState::Settled(Settled::Delivered));

    drop(journal);
    writer.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), live[..end], "closed: the record, no zeros");
}

/// A process about to quit without closing the writer (a second signal) leaves the file as a close would;
/// records after that (a task that ran on before the exit) still land, appended, with no zeros after them.
#[tokio::test]
async fn finish_now_syncs_and_cuts_the_zeros_off_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let (journal, writer, _) = Journal::open(&path, now()).unwrap();
    journal.append(committing("a@x", now())).unwrap();
    journal.finish_now().await.unwrap();
    let finished = std::fs::read(&path).unwrap();
    assert!(!finished.contains(&0) && finished.ends_with(b"\n"), "{:?}", String::from_utf8_lossy(&finished));
    journal.commit(committing("b@x", now())).await.unwrap();
    let after = std::fs::read(&path).unwrap();
    assert!(!after.contains(&0) && after.ends_with(b"\n"), "appended, no zeros laid ahead after finishing");
    drop(journal);
    writer.close().unwrap();
    let (_, _, replayed) = Journal::open(&path, now()).unwrap();
    assert!(!replayed.torn_tail);
    assert!(replayed.get("a@x").is_some() && replayed.get("b@x").is_some());
}

/// After a power loss during a sync the disk may hold a later block of the unsynced records and not an
/// earlier one: zeros, then a record. That is damage (`repair` makes whoever it names uncertain), not a tail
/// to cut off unseen.
#[test]
fn zeros_followed_by_a_record_are_damage_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let good = serde_json::to_string(&committing("a@x", now())).unwrap();
    let mut content = format!("{good}\n").into_bytes();
    content.extend([0u8; 100]);
    content.extend(format!("{good}\n").into_bytes());
    content.extend([0u8; 50]);
    std::fs::write(&path, content).unwrap();
    match Journal::open(&path, now()) {
        Err(JournalError::Corrupt { line, message, .. }) => {
            assert_eq!(line, 2);
            assert!(message.contains("zeros"), "{message}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("zeros between records accepted"),
    }
}

#[tokio::test]
async fn budget_counts_only_the_last_24_hours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let (journal, writer, _) = Journal::open(&path, now()).unwrap();
    journal.append(committing("old@x", now() - Duration::hours(25))).unwrap();
    journal.append(committing("edge@x", now() - Duration::hours(23))).unwrap();
    journal.commit(committing("new@x", now())).await.unwrap();
    drop(journal);
    writer.close().unwrap();
    let (_, _, replayed) = Journal::open(&path, now()).unwrap();
    assert_eq!(replayed.sent_last_24h, 2);
    let (_, _, next_day) = Journal::open(&path, now() + Duration::hours(24)).unwrap();
    assert_eq!(next_day.sent_last_24h, 1);
}

#[tokio::test]
async fn many_concurrent_commits_share_syncs_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let (journal, writer, _) = Journal::open(&path, now()).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let j = journal.clone();
            tokio::spawn(async move { j.commit(committing(&format!("r{i}@x"), now())).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    drop(journal);
    writer.close().unwrap();
    let (_, _, replayed) = Journal::open(&path, now()).unwrap();
    assert_eq!(replayed.entries.len(), 200);
}

/// `status` reads the same fold as a run, with details: a released message is not sent again (and not in the
/// budget), a retried one counts once as a message and twice as attempts, and an uncertain one says so.
#[test]
fn details_follow_the_same_fold_as_a_resume() {
    let lines = [
        committing("a@x", now()),
        outcome("a@x", Settled::Deferred),
        committing("a@x", now()),
        outcome("a@x", Settled::Delivered),
        committing("b@x", now()),
        Record::Released { key: "b@x".into(), date: 1_790_000_000, at: now() },
        committing("c@x", now()),
    ];
    let text: String = lines.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
    let path = std::path::Path::new("j.jsonl");
    let plain = Replayed::read(text.as_bytes(), now(), path).unwrap();
    let detailed = Replayed::read_details(text.as_bytes(), now(), path).unwrap();
    assert_eq!(plain.entries, detailed.entries);
    assert!(plain.details.is_none());
    assert_eq!((detailed.sent_last_24h, detailed.delivered_last_24h), (3, 1));
    assert_eq!(detailed.get("b@x").unwrap().state, JournalState::Released);
    let details = detailed.details.unwrap();
    assert_eq!(details[&key_id("a@x")].reply, "250 2.0.0 Ok: queued as ABC");
    assert_eq!(details[&key_id("c@x")].reply, UNCERTAIN_REPLY);
}

fn bounce(key: &str, kind: BounceKind, report: &str) -> Record {
    let status = if kind == BounceKind::Hard { "5.1.1" } else { "4.4.7" };
    Record::RunEnd {
        run: BOUNCE_RUN,
        ended: now(),
        exit_code: 0,
        summary: format!("bounce: {} {status} {key}", kind.as_str()),
        bounce: Some(Bounce {
            key: key.into(),
            row: 2,
            email: key.into(),
            kind,
            action: if kind == BounceKind::Hard { "failed" } else { "delayed" }.into(),
            status: Some(status.into()),
            diagnostic: Some("smtp; 550 5.1.1 no such user".into()),
            report: report.into(),
        }),
    }
}

/// The journal record as mailshot read it before bounces existed (December 2026), field for field.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[allow(dead_code)]
enum RecordBeforeBounces {
    Run { run: u32, started: DateTime<Utc>, pid: u32, fingerprint: String },
    Committing { key: String, row: u64, email: String, message_id: String, date: i64, attempt: u32, at: DateTime<Utc> },
    Outcome { key: String, status: Settled, reply: String, attempt: u32, date: i64, at: DateTime<Utc> },
    Released { key: String, date: i64, at: DateTime<Utc> },
    RunEnd { run: u32, ended: DateTime<Utc>, exit_code: u8, summary: String },
}

#[test]
fn a_bounce_record_reads_as_a_run_end_of_no_run_to_a_mailshot_from_before_bounces() {
    let line = serde_json::to_string(&bounce("a@x", BounceKind::Hard, "<r1@mx>")).unwrap();
    assert!(line.starts_with(r#"{"t":"run_end","run":0,"#), "{line}");
    match serde_json::from_str::<RecordBeforeBounces>(&line).unwrap() {
        // Older replays fold a run end only into the run they saw start last; runs are numbered from 1.
        RecordBeforeBounces::RunEnd { run, .. } => assert_eq!(run, BOUNCE_RUN),
        other => panic!("{other:?}"),
    }
    // And this version reads it back as the bounce it is.
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), bounce("a@x", BounceKind::Hard, "<r1@mx>"));
}

#[test]
fn bounces_replay_hard_over_soft_and_remember_their_reports() {
    let mut journal = Vec::new();
    let run = Record::Run { run: 1, started: now(), pid: 1, fingerprint: "f".into(), inputs: None, shard: None };
    let end = Record::RunEnd { run: 1, ended: now(), exit_code: 0, summary: "delivered 2".into(), bounce: None };
    let records = [
        run,
        committing("a@x", now()),
        outcome("a@x", Settled::Delivered),
        committing("b@x", now()),
        outcome("b@x", Settled::Delivered),
        end,
        bounce("a@x", BounceKind::Soft, "<d1@mx>"),
        bounce("a@x", BounceKind::Hard, "<d2@mx>"),
        bounce("a@x", BounceKind::Soft, "<d3@mx>"),
        bounce("b@x", BounceKind::Soft, "<d1@mx>"),
    ];
    for record in &records {
        writeln!(journal, "{}", serde_json::to_string(record).unwrap()).unwrap();
    }
    let replayed = Replayed::read(journal.as_slice(), now(), std::path::Path::new("j")).unwrap();
    let kind = |k: &str| replayed.bounces[&key_id(k)].kind;
    assert_eq!((kind("a@x"), kind("b@x")), (BounceKind::Hard, BounceKind::Soft));
    let last = replayed.last_run.as_ref().unwrap();
    assert_eq!(last.ended.as_ref().map(|e| e.2.as_str()), Some("delivered 2"), "a bounce is not a run's end");
    assert_eq!(replayed.get("a@x").unwrap().state, JournalState::Settled(Settled::Delivered), "nor an outcome");
    assert!(replayed.has_bounce("<d1@mx>", "a@x") && replayed.has_bounce("<d1@mx>", "b@x"));
    assert!(!replayed.has_bounce("<d2@mx>", "b@x"));
}

/// A stand-in for the journal file: keeps the bytes written and how many of them each sync covered; the test
/// can hold syncs back or make writes or syncs fail.
#[derive(Clone, Default)]
struct Disk(std::sync::Arc<DiskState>);

#[derive(Default)]
struct DiskState {
    log: Mutex<DiskLog>,
    /// While set, every sync waits.
    hold: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct DiskLog {
    written: Vec<u8>,
    /// `written.len()` at each sync.
    synced: Vec<usize>,
    fail_write: Option<std::io::ErrorKind>,
    fail_sync: Option<std::io::ErrorKind>,
}

impl Disk {
    fn log(&self) -> std::sync::MutexGuard<'_, DiskLog> {
        self.0.log.lock().unwrap()
    }

    fn hold_syncs(&self, hold: bool) {
        self.0.hold.store(hold, std::sync::atomic::Ordering::SeqCst);
    }

    fn lines_written(&self) -> usize {
        self.log().written.iter().filter(|&&b| b == b'\n').count()
    }

    /// How many whole lines the last sync covered.
    fn lines_synced(&self) -> usize {
        let log = self.log();
        let covered = log.synced.last().copied().unwrap_or(0);
        log.written[..covered].iter().filter(|&&b| b == b'\n').count()
    }
}

impl Write for Disk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut log = self.log();
        if let Some(kind) = log.fail_write {
            return Err(std::io::Error::new(kind, "the disk said no"));
        }
        log.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for Disk {
    fn sync(&mut self) -> std::io::Result<()> {
        while self.0.hold.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut log = self.log();
        if let Some(kind) = log.fail_sync {
            return Err(std::io::Error::new(kind, "the disk said no"));
        }
        let len = log.written.len();
        log.synced.push(len);
        Ok(())
    }
}

/// Waits (a liveness bound, not a speed goal) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// The contract the final dot relies on: a ticket resolves only once a sync has covered its record, and a
/// record appended while a sync runs waits for the next one.
#[tokio::test]
async fn a_ticket_is_durable_only_after_a_sync_that_covers_it() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    disk.hold_syncs(true);
    let first = tokio::spawn(journal.durable(journal.append(committing("a@x", now())).unwrap()));
    eventually("the first record is written", || disk.lines_written() == 1).await;
    let second = journal.append(committing("b@x", now())).unwrap();
    let second = tokio::spawn(journal.durable(second));
    // A writer that published before its sync returned would resolve them now.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!first.is_finished() && !second.is_finished(), "durable while the sync is held back");
    assert!(disk.log().synced.is_empty());
    disk.hold_syncs(false);
    first.await.unwrap().unwrap();
    assert!(disk.lines_synced() >= 1);
    second.await.unwrap().unwrap();
    assert_eq!(disk.lines_synced(), 2, "the second record's ticket needs a sync that covers it");
    drop(journal);
    writer.close().unwrap();
}

/// Nobody waits for a record: it is still synced, SYNC_DELAY after it was appended, without a sync request.
#[tokio::test]
async fn a_record_nobody_waits_for_is_synced_after_the_delay() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    journal.append(outcome("a@x", Settled::Delivered)).unwrap();
    let mut durable = journal.durable.clone();
    let reached = tokio::time::timeout(std::time::Duration::from_secs(20), durable.wait_for(|d| d == &Ok(1))).await;
    assert!(reached.is_ok(), "the delayed sync never came");
    drop(reached);
    assert_eq!(disk.lines_synced(), 1);
    drop((journal, durable));
    writer.close().unwrap();
}

/// Many records nobody waited for, then the last handle goes: every record is written, in order, and synced.
#[tokio::test]
async fn closing_writes_and_syncs_every_record_in_order() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    let n = 2500;
    for i in 0..n {
        assert_eq!(journal.append(committing(&format!("r{i}@x"), now())).unwrap(), Ticket(i as u64 + 1));
    }
    drop(journal);
    writer.close().unwrap();
    assert_eq!(disk.lines_synced(), n);
    let text = String::from_utf8(disk.log().written.clone()).unwrap();
    let keys: Vec<String> = text
        .lines()
        .map(|line| match serde_json::from_str::<Record>(line).unwrap() {
            Record::Committing { key, .. } => key,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, (0..n).map(|i| format!("r{i}@x")).collect::<Vec<_>>());
}

/// A write or a sync that fails stops the writer: whoever waits hears why (a full disk is recognisable as
/// such), no later record becomes durable, and closing returns the error.
#[tokio::test]
async fn a_failed_write_or_sync_stops_the_writer_and_says_why() {
    for fail_sync in [false, true] {
        let disk = Disk::default();
        {
            let mut log = disk.log();
            match fail_sync {
                true => log.fail_sync = Some(std::io::ErrorKind::StorageFull),
                false => log.fail_write = Some(std::io::ErrorKind::StorageFull),
            }
        }
        let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
        let error = journal.commit(committing("a@x", now())).await.unwrap_err();
        assert!(error.is_disk_full(), "fail_sync {fail_sync}: {error}");
        assert!(error.to_string().starts_with("j.jsonl: "), "names the file: {error}");
        // The writer is gone (or going): appending is refused, or its record never becomes durable.
        if let Ok(later) = journal.append(committing("b@x", now())) {
            assert!(journal.durable(later).await.is_err(), "fail_sync {fail_sync}: durable after the writer stopped");
        }
        drop(journal);
        assert!(writer.close().unwrap_err().is_disk_full());
        assert_eq!(disk.lines_synced(), 0);
    }
}

/// `status` reads the journal while a run writes it. Records are written over the zeros laid ahead of them
/// (`prezeroed`), so a reader's next read can meet the rest of a record whose start it read as zeros a
/// moment before: a complete line of zeros and a record's tail, which is no damage. A live reader must
/// never call the journal damaged for that.
#[test]
fn a_reader_racing_the_writer_never_sees_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let (journal, writer, _) = Journal::open(&path, now()).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = std::thread::spawn({
        let (path, done) = (path.clone(), done.clone());
        move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = Replayed::read_unlocked(&path, now(), true) {
                    return Err(format!("after {reads} clean reads: {e}"));
                }
                reads += 1;
            }
            Ok(reads)
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for i in 0..4000 {
        runtime.block_on(journal.commit(committing(&format!("r{i}@x"), now()))).unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(journal);
    writer.close().unwrap();
    let reads = reader.join().unwrap().unwrap();
    assert!(reads > 0);

    // Zeros then a record that stay are damage all the same.
    let mut damaged = std::fs::read(&path).unwrap();
    damaged.extend([0u8; 100]);
    damaged.extend(serde_json::to_string(&committing("late@x", now())).unwrap().into_bytes());
    damaged.push(b'\n');
    std::fs::write(&path, damaged).unwrap();
    match Replayed::read_unlocked(&path, now(), false) {
        Err(JournalError::Corrupt { line, message, .. }) => assert_eq!((line, message.contains("zeros")), (4001, true)),
        other => panic!("{:?}", other.map(|r| r.intact_len)),
    }
}

/// Connections served in the same turn of the runtime ask for one sync: the request goes out once the
/// tasks ready now have run, for the highest ticket wanted, and the records become durable.
#[test]
fn requests_in_one_turn_of_the_runtime_go_out_once_after_it() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let first = journal.append(committing("a@x", now())).unwrap();
        let second = journal.append(committing("b@x", now())).unwrap();
        journal.sync_soon(first);
        journal.sync_soon(second);
        assert_eq!(journal.queue().requested(), 0, "asked before the turn ended");
        tokio::task::yield_now().await;
        assert_eq!(journal.queue().requested(), second.0);
        journal.durable(second).await.unwrap();
    });
    assert_eq!(disk.lines_synced(), 2);
    drop(journal);
    writer.close().unwrap();
}

/// Off a runtime (`repair`), or when the runtime drops the asking task unrun (it shuts down), the request
/// goes out at once: a wanted sync is never left unasked.
#[test]
fn a_request_off_a_runtime_or_dropped_unrun_goes_out_at_once() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    disk.hold_syncs(true);
    let first = journal.append(committing("a@x", now())).unwrap();
    journal.sync_soon(first);
    assert_eq!(journal.queue().requested(), first.0, "off a runtime");

    let second = journal.append(committing("b@x", now())).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    {
        let _inside = runtime.enter();
        journal.sync_soon(second);
    }
    assert_eq!(journal.queue().requested(), first.0, "the task has not run yet");
    drop(runtime);
    assert_eq!(journal.queue().requested(), second.0, "dropped unrun, it asked");
    disk.hold_syncs(false);
    drop(journal);
    writer.close().unwrap();
    assert_eq!(disk.lines_synced(), 2);
}

/// `run::finish::close_journal` drops the last handle and joins the writer on the runtime's own thread. A
/// sync request made just before, with no await in between, must not keep the writer open: the task that
/// would ask for it can never run while that thread blocks in `close`.
#[test]
fn closing_on_the_runtime_right_after_a_sync_request_does_not_hang() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let ticket = journal.append(committing("a@x", now())).unwrap();
            journal.sync_soon(ticket);
            drop(journal);
            let _ = tx.send(writer.close().map_err(|e| e.to_string()));
        });
    });
    let closed = rx.recv_timeout(std::time::Duration::from_secs(10));
    assert_eq!(closed, Ok(Ok(())), "JournalWriter::close hung: the pending ask holds the journal open");
    assert_eq!(disk.lines_synced(), 1);
}

/// A writer that panicked (a bug) must not leave the handles believing it is there: appending is refused
/// as after an error, and `finish_now` (a second signal) answers at once instead of waiting out its timeout.
#[tokio::test]
async fn a_writer_that_panicked_refuses_records_and_answers_finish_now() {
    struct Panics;
    impl Write for Panics {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            panic!("a bug in the sink (this test's)")
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Sink for Panics {
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (journal, writer) = start(Panics, Path::new("j.jsonl")).unwrap();
    assert!(journal.commit(committing("a@x", now())).await.is_err());
    eventually("the writer thread ended", || writer.thread.is_finished()).await;
    let appended = journal.append(committing("b@x", now())).map(|_| ());
    let finished = tokio::time::timeout(std::time::Duration::from_secs(5), journal.finish_now()).await;
    drop(journal);
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.close())).is_err());
    assert!(
        appended.is_err() && matches!(finished, Ok(Err(_))),
        "after the writer panicked: append {appended:?}, finish_now {finished:?}"
    );
}

/// A request made on a runtime that has already shut down (its task is dropped at once, unrun) still goes
/// out at once.
#[test]
fn a_request_on_a_runtime_already_shut_down_goes_out_at_once() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    disk.hold_syncs(true);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let handle = runtime.handle().clone();
    drop(runtime);
    let ticket = journal.append(committing("a@x", now())).unwrap();
    {
        let _inside = handle.enter();
        journal.sync_soon(ticket);
    }
    assert_eq!(journal.queue().requested(), ticket.0);
    disk.hold_syncs(false);
    drop(journal);
    writer.close().unwrap();
    assert_eq!(disk.lines_synced(), 1);
}

/// Threads with runtimes of their own, and one without (as `repair`), append and ask in every order, with
/// pauses around the writer's doze and syncs held back now and then: every ticket waited for resolves, and
/// only once a sync covered it; closing writes and syncs every record.
#[test]
fn concurrent_appends_and_requests_never_hang_nor_resolve_early() {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 250;
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    let stalls = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let staller = {
        let (disk, stalls) = (disk.clone(), stalls.clone());
        std::thread::spawn(move || {
            while stalls.load(std::sync::atomic::Ordering::SeqCst) {
                disk.hold_syncs(true);
                std::thread::sleep(std::time::Duration::from_millis(3));
                disk.hold_syncs(false);
                std::thread::sleep(std::time::Duration::from_millis(17));
            }
        })
    };
    let check = |disk: &Disk, ticket: Ticket, thread: u64, round: u64| {
        let synced = disk.lines_synced() as u64;
        assert!(synced >= ticket.0, "thread {thread} round {round}: ticket {} durable, {synced} synced", ticket.0);
    };
    let threads: Vec<_> = (0..=THREADS)
        .map(|thread| {
            let (journal, disk) = (journal.clone(), disk.clone());
            std::thread::spawn(move || {
                let mut seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(thread + 1);
                let mut next = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                let limit = std::time::Duration::from_secs(20);
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                for round in 0..ROUNDS {
                    let pause = std::time::Duration::from_micros(next() % 7000);
                    let ticket = journal.append(committing(&format!("t{thread}r{round}@x"), now())).unwrap();
                    if thread == THREADS {
                        // Off any runtime, as `repair`: the request goes out from `durable` itself.
                        if next() % 3 == 0 {
                            std::thread::sleep(pause);
                        }
                        if next() % 2 == 0 {
                            let wait = journal.durable(ticket);
                            runtime.block_on(async { tokio::time::timeout(limit, wait).await }).expect("hung").unwrap();
                            check(&disk, ticket, thread, round);
                        }
                        continue;
                    }
                    runtime.block_on(async {
                        match next() % 4 {
                            0 => {}
                            1 => journal.sync_soon(ticket),
                            2 => {
                                journal.sync_soon(ticket);
                                tokio::time::sleep(pause).await;
                            }
                            _ => tokio::time::sleep(pause).await,
                        }
                        if next() % 3 != 0 {
                            tokio::time::timeout(limit, journal.durable(ticket)).await.expect("hung").unwrap();
                            check(&disk, ticket, thread, round);
                        }
                    });
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    stalls.store(false, std::sync::atomic::Ordering::SeqCst);
    staller.join().unwrap();
    drop(journal);
    writer.close().unwrap();
    let total = ((THREADS + 1) * ROUNDS) as usize;
    assert_eq!((disk.lines_written(), disk.lines_synced()), (total, total));
}

/// However many sync requests one turn of the runtime makes, one task asks for them: none pile up.
#[test]
fn requests_in_one_turn_spawn_one_task_and_none_is_left() {
    let disk = Disk::default();
    let (journal, writer) = start(disk.clone(), Path::new("j.jsonl")).unwrap();
    disk.hold_syncs(true);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let metrics = tokio::runtime::Handle::current().metrics();
        let mut last = None;
        for i in 0..1000 {
            let ticket = journal.append(committing(&format!("r{i}@x"), now())).unwrap();
            journal.sync_soon(ticket);
            last = Some(ticket);
        }
        assert_eq!(metrics.num_alive_tasks(), 1);
        tokio::task::yield_now().await;
        assert_eq!(metrics.num_alive_tasks(), 0);
        assert_eq!(journal.queue().requested(), last.unwrap().0);
    });
    disk.hold_syncs(false);
    drop(journal);
    writer.close().unwrap();
    assert_eq!(disk.lines_synced(), 1000);
}
