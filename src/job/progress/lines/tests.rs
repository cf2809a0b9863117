//! The display at chosen moments of made-up runs: a fake clock (plain `DateTime`s) and no terminal.

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use unicode_width::UnicodeWidthStr;

use super::*;
use crate::job::progress::view::{Planned, Retry, Start, View};
use crate::job::settlement::{Settlement, Status};

fn t0() -> DateTime<Utc> {
    "2026-12-02T22:40:00Z".parse().unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

fn settlement(row: u64, status: Status) -> Settlement {
    Settlement {
        row,
        email: format!("r{row}@example.test"),
        status,
        code: None,
        enhanced: None,
        reply: String::new(),
        attempts: 1,
        message_id: String::new(),
        first_attempt: None,
        last_attempt: None,
        copies: String::new(),
    }
}

fn retry(row: u64, due: DateTime<Utc>, reason: &str) -> Retry {
    let email = format!("r{row}@example.test");
    Retry { row, email, attempt: 2, attempts: 5, due, reason: reason.to_owned() }
}

/// A resumed run: 60 rows, 26 settled earlier, 34 to send at `rate`, two connections.
fn resumed(rate: Option<f64>) -> View {
    let start = Start {
        job: PathBuf::from("/srv/jobs/news/job.toml"),
        campaign: Some("december".into()),
        run: 2,
        began: t0(),
        rate,
    };
    let mut view = View::new(start, 60, 2);
    view.planned = Some(Planned { recipients: 60, to_send: 34, settled_earlier: 26, uncertain_earlier: 0 });
    for row in 2..28 {
        view.settled(&settlement(row, Status::Delivered), true);
    }
    view.sessions_open = Some(2);
    view
}

fn send(view: &mut View, rows: std::ops::Range<u64>, status: Status) {
    rows.for_each(|row| view.settled(&settlement(row, status), false));
}

#[test]
fn a_resumed_runs_bar_counts_this_runs_work_and_the_eta_follows_the_rate() {
    let mut view = resumed(Some(0.25));
    send(&mut view, 28..35, Status::Delivered);
    send(&mut view, 35..36, Status::Failed);
    view.connection(0, "→ row 36 r36@example.test".into());
    view.connection(1, "idle (session open)".into());
    // 8 sent in 16 s would make 52 s for the 26 left; one message every 4 s makes 104 s.
    let lines = terminal(&view, at(16), utc(), 200);
    assert_eq!(
        lines,
        [
            "[=====>                  ] 8/34 this run · ETA 1m 44s · 0.5 msg/s · elapsed 16s · delivered 7 · failed 1 \
             · deferred 0 · uncertain 0 · 26 settled earlier · 2 sessions open",
            "  conn 1  → row 36 r36@example.test",
            "  conn 2  idle (session open)",
        ]
    );
    // Without a rate, the pace measured in this run decides (the 26 carried ones are not part of it).
    assert!(terminal(&resumed_with(8), at(16), utc(), 200)[0].contains("ETA 52s"));
}

fn resumed_with(sent: u64) -> View {
    let mut view = resumed(None);
    send(&mut view, 28..28 + sent, Status::Delivered);
    view
}

#[test]
fn waiting_retries_replace_stale_lines_and_count_down() {
    let mut view = resumed_with(32);
    view.retrying(retry(60, at(60), "451 4.7.1 Try again later"));
    view.retrying(retry(61, at(90), "421 4.7.0 Too many messages"));
    view.connection(0, "idle (session open)".into());
    view.connection(1, "idle".into());
    let zone = FixedOffset::east_opt(3600).unwrap();
    let early = terminal(&view, at(30), zone, 200);
    assert_eq!(
        early[1..],
        [
            "  conn 1  idle (session open)",
            "  conn 2  idle",
            "  waiting to retry 2 until 23:41:30 (in 1m 00s)",
            "    row 60 r60@example.test: attempt 2 at 23:41:00 (in 30s) after 451 4.7.1 Try again later",
            "    row 61 r61@example.test: attempt 2 at 23:41:30 (in 1m 00s) after 421 4.7.0 Too many messages",
        ]
    );
    // The pace (34 transactions in 30 s) says 2 s for the two left; they cannot go before the last is due.
    assert!(early[0].contains("32/34 this run · ETA 1m 00s"), "{}", early[0]);
    // Ten seconds on, nothing happened and still the display moves on.
    let later = terminal(&view, at(40), zone, 200);
    assert!(later[0].contains("ETA 50s · 0.8 msg/s · elapsed 40s"), "{}", later[0]);
    assert_eq!(later[3], "  waiting to retry 2 until 23:41:30 (in 50s)");
    // The first one is due: back in line, no longer waiting.
    assert_eq!(terminal(&view, at(61), zone, 200)[3], "  waiting to retry 1 until 23:41:30 (in 29s)");
    // Settled: gone from the list.
    view.settled(&settlement(61, Status::Delivered), false);
    assert_eq!(terminal(&view, at(45), zone, 200).len(), 5, "only row 60 waits");
}

#[test]
fn many_retries_and_connections_are_summed_up() {
    let start = Start { job: "job.toml".into(), campaign: None, run: 1, began: t0(), rate: None };
    let mut view = View::new(start, 100, 12);
    for worker in 0..12 {
        let state = if worker % 3 == 0 { "→ row 2 a@example.test" } else { "connecting" };
        view.connection(worker, state.into());
    }
    for row in 2..8 {
        view.retrying(retry(row, at(100 + row as i64), "451 later"));
    }
    let lines = terminal(&view, at(1), utc(), 200);
    assert_eq!(lines[8], "  conn 8  connecting");
    assert_eq!(lines[9], "  … 4 more connections, 1 of them sending");
    assert_eq!(lines[10], "  waiting to retry 6 until 22:41:47 (in 1m 46s)");
    assert_eq!(lines[14], "    … and 3 more");
    assert_eq!(lines.len(), 15);
}

#[test]
fn every_line_fits_the_terminal_and_server_text_cannot_drive_it() {
    let mut view = resumed_with(3);
    view.connection(0, "→ row 12 山田太郎.长长的名字@例子.测试".into());
    view.retrying(retry(9, at(50), "451 \x1b[2Jcleared? 4.7.1 a very long explanation from the server"));
    for width in [20, 37, 60, 80] {
        for line in terminal(&view, at(5), utc(), width) {
            assert!(line.width() <= width, "{line:?} is wider than {width}");
            assert!(!line.contains('\x1b'), "{line:?}");
        }
    }
    let narrow = terminal(&view, at(5), utc(), 37);
    assert_eq!(narrow[1], "  conn 1  → row 12 山田太郎.长长的名…");
    assert!(narrow[0].ends_with('…'));
    let wide = terminal(&view, at(5), utc(), 200);
    assert!(wide[4].contains("after 451 \\x1b[2Jcleared?"), "{}", wide[4]);
}

#[test]
fn plain_lines_start_with_the_time_and_the_first_names_the_job_and_its_counts() {
    let view = resumed_with(0);
    assert_eq!(
        stamped(at(1), &header(&view)),
        "2026-12-02T22:40:01Z job /srv/jobs/news/job.toml · campaign \"december\" · run 2 began \
         2026-12-02T22:40:00Z · 60 recipients: 34 to send, 26 settled in earlier runs"
    );
    let mut single = View::new(view.start.clone(), 1, 1);
    assert!(header(&single).ends_with(" · 1 recipient"), "{}", header(&single));
    single.planned = Some(Planned { recipients: 1, to_send: 1, settled_earlier: 0, uncertain_earlier: 0 });
    assert!(header(&single).ends_with(" · 1 recipient: 1 to send, 0 settled in earlier runs"), "{}", header(&single));
    let mut limited = View::new(Start { campaign: None, ..view.start.clone() }, 60, 1);
    limited.planned = Some(Planned { recipients: 60, to_send: 10, settled_earlier: 0, uncertain_earlier: 0 });
    assert!(
        header(&limited).ends_with(
            "· no campaign name · run 2 began 2026-12-02T22:40:00Z · 60 recipients: 10 to send, \
             0 settled in earlier runs, 50 not sent in this run"
        ),
        "{}",
        header(&limited)
    );
}

/// Recipients an earlier run left uncertain are not "settled": the prompt and `status` keep them apart, and
/// so do the first line and the progress line.
#[test]
fn uncertain_recipients_from_earlier_runs_are_not_counted_as_settled() {
    let mut view = View::new(resumed_with(0).start, 12, 2);
    view.planned = Some(Planned { recipients: 12, to_send: 3, settled_earlier: 5, uncertain_earlier: 4 });
    assert!(
        header(&view).ends_with(
            "12 recipients: 3 to send, 5 settled in earlier runs, 4 left uncertain by earlier runs (not sent again)"
        ),
        "{}",
        header(&view)
    );
    (2..7).for_each(|row| view.settled(&settlement(row, Status::Delivered), true));
    (7..11).for_each(|row| view.settled(&settlement(row, Status::Uncertain), true));
    let line = plain(&view, at(1));
    assert!(line.contains(" · 5 settled earlier · 4 uncertain earlier"), "{line}");
}

#[test]
fn the_plain_progress_line_names_the_waiting_retries_in_utc() {
    let mut view = resumed_with(30);
    view.retrying(retry(60, at(75), "451 later"));
    assert_eq!(
        plain(&view, at(20)),
        "progress 30/34 this run · ETA 55s · 1.5 msg/s · elapsed 20s · delivered 30 · failed 0 · deferred 0 · \
         uncertain 0 · 26 settled earlier · 2 sessions open · waiting to retry 1 until 2026-12-02T22:41:15Z"
    );
    assert_eq!(
        deferred(&view.retries[&60], None),
        "row 60 r60@example.test deferred (451 later); attempt 2 of 5 at 2026-12-02T22:41:15Z"
    );
    assert_eq!(
        deferred(&view.retries[&60], Some(FixedOffset::west_opt(5 * 3600).unwrap())),
        "row 60 r60@example.test deferred (451 later); attempt 2 of 5 at 17:41:15"
    );
}
