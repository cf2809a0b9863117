//! OAuth2 AUTH against the lab's oauth2 listener (issue 17): XOAUTH2 and OAUTHBEARER with tokens from
//! `token_command` that expire after a few seconds, fetched again when the server refuses one.
//!
//! These state what issue 17 asks for ("What to build", "Tests", "Done when") with the keys the implementation
//! uses: `auth = "xoauth2"` / `"oauthbearer"`, `token_command`, `token_lifetime` (seconds, default 2700),
//! `username`. The listener (see `scripts/lab-smtpd.py`) accepts a token for 3 s after it was issued and logs
//! every AUTH attempt per EHLO name; each test sends its own EHLO name to read its attempts alone.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::lab_aiosmtpd::{Store, Stored};
use crate::common::lab_oauth::{AuthAttempt, OAuthLab, TokenHelper, giveaways, now_ms, oauth_lab};
use crate::common::send_job::{SendJob, addresses};
use crate::common::unique_tag;
use crate::jobs_support::{Run, run_in_with};

/// Three messages a second, strictly spaced: 40 messages take about 13 s, so a run with sessions of five
/// messages outlives its first token three or four times (a new session about every 1.7 s).
const PACE: &str = "[rate]\nper_second = 3\nburst = 1\n";

/// Long enough that only a refusal can make the client fetch a token again during a run.
const NO_TIMED_REFRESH: &str = "token_lifetime = 3600";

/// The EHLO name of a job tagged `tag` (the listener logs AUTH attempts under it).
fn ehlo(tag: &str) -> String {
    format!("{tag}.example.test")
}

/// A 40-message job on one connection that reconnects every five messages, at [`PACE`].
fn paced_job(lab: &OAuthLab, helper: &TokenHelper, auth: &str, tag: &str) -> SendJob {
    let smtp = lab
        .smtp(auth, helper, &ehlo(tag))
        .with(NO_TIMED_REFRESH)
        .with("connections = 1")
        .with("max_messages_per_connection = 5");
    SendJob::new(tag, &smtp, addresses(tag, 40), PACE)
}

/// Each recipient's one copy in the listener's store, from the job's sender to that recipient alone; panics when
/// one has none or several.
fn stored_once(job: &SendJob, recipients: &[String], store: &Store) -> HashMap<String, Stored> {
    let mut copies = store.by_rcpt(recipients);
    let wrong: Vec<_> = recipients.iter().filter(|r| copies.get(*r).map_or(0, Vec::len) != 1).collect();
    assert!(wrong.is_empty(), "not stored exactly once: {wrong:?}");
    let mut once = HashMap::new();
    for rcpt in recipients {
        let copy = copies.remove(rcpt).unwrap().pop().unwrap();
        assert_eq!((copy.mail_from.as_str(), copy.rcpt_tos.as_slice()), (job.from.as_str(), [rcpt.clone()].as_slice()));
        once.insert(rcpt.clone(), copy);
    }
    once
}

/// The attempts' outcomes in order, for messages.
fn outcomes(attempts: &[AuthAttempt]) -> Vec<String> {
    attempts.iter().map(|a| format!("{}:{}", a.mechanism, a.outcome)).collect()
}

/// Every OAUTHBEARER attempt names the server's host and port (RFC 7628 §3.1: `host=`, `port=`).
fn assert_oauthbearer_names_the_server(lab: &OAuthLab, attempts: &[AuthAttempt]) {
    for a in attempts.iter().filter(|a| a.mechanism == "OAUTHBEARER") {
        assert_eq!((a.host.as_deref(), a.port), (Some("127.0.0.1"), Some(lab.port)), "{a:?}");
    }
}

/// No token the helper printed, nor its signature, nor a SASL message carrying it, appears in `outputs` or in
/// any file under the job's folder (reports, journal, run records …); nor does the tokens' prefix.
fn assert_no_token(lab: &OAuthLab, helper: &TokenHelper, dir: &Path, outputs: &[(&str, &str)]) {
    let tokens = helper.tokens();
    assert!(!tokens.is_empty(), "the helper was never run");
    let mut needles = vec!["labtok-".to_owned()];
    needles.extend(tokens.iter().flat_map(|t| giveaways(t, &lab.user, lab.port)));
    let mut places: Vec<(String, String)> = outputs.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                places
                    .push((path.display().to_string(), String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into()));
            }
        }
    }
    for (place, text) in &places {
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "{place} gives a token away ({needle:?}):\n{text}");
        }
    }
}

/// A line of `text` with `401` as a word and something about AUTH or the token: the decoded XOAUTH2 error.
fn names_status_401(text: &str) -> bool {
    text.lines().any(|l| {
        let lower = l.to_ascii_lowercase();
        l.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "401")
            && ["xoauth2", "token", "auth"].iter().any(|w| lower.contains(w))
    })
}

/// The decoded error the listener sends in its `334` for a refused token, as `mechanism`'s client shows it.
fn names_decoded_error(mechanism: &str, text: &str) -> bool {
    match mechanism {
        "XOAUTH2" => names_status_401(text),
        _ => text.contains("invalid_token"),
    }
}

/// Runs the 40-message job with tokens that expire every 3 s and `token_lifetime = 3600`: only fetching a
/// token again when one is refused gets it through.
fn tokens_refused_as_expired_are_fetched_again(test: &str, auth: &str, mechanism: &str) {
    let Some(lab) = oauth_lab(test) else { return };
    assert_eq!(lab.token_lifetime, 3, "the pace of these tests is made for tokens that live 3 s");
    let tag = unique_tag(&format!("refresh-{auth}"));
    let helper = TokenHelper::new(&lab);
    let store = lab.store();
    let job = paced_job(&lab, &helper, auth, &tag);

    let started = Instant::now();
    let run = job.send(&["--yes"]);
    let elapsed = started.elapsed();
    run.expect(0);
    let report = job.last_report();
    assert_eq!(report.count("delivered"), 40, "{:?}", report.counts());
    let copies = stored_once(&job, &job.recipients, &store);
    for (rcpt, copy) in &copies {
        let used = copy.auth.as_ref().map(|a| (a.mechanism.as_str(), a.user.as_str()));
        assert_eq!(used, Some((mechanism, lab.user.as_str())), "{rcpt}: the session's AUTH");
    }

    let attempts = lab.auth_attempts(&ehlo(&tag));
    let seen = outcomes(&attempts);
    assert!(attempts.iter().all(|a| a.mechanism == mechanism), "{seen:?}");
    assert!(attempts.iter().all(|a| ["accepted", "expired"].contains(&a.outcome.as_str())), "{seen:?}");
    assert_oauthbearer_names_the_server(&lab, &attempts);
    // At one session per ~1.7 s and a token living 3 s, the run meets at least two expiries (usually three).
    let expired = attempts.iter().filter(|a| a.outcome == "expired").count();
    assert!(expired >= 2, "{expired} expiries in {elapsed:?}: the run did not outlive its tokens: {seen:?}");
    // Each refused token is followed by an accepted, newer one: fetched again, not sent again.
    for (i, a) in attempts.iter().enumerate().filter(|(_, a)| a.outcome == "expired") {
        let next = attempts.get(i + 1);
        assert!(
            next.is_some_and(|n| n.outcome == "accepted" && n.token_issued_ms > a.token_issued_ms),
            "attempt {i} was refused as expired, then {next:?}: {seen:?}"
        );
    }
    // One fetch at the start and one per refusal (a spare for a fetch before the first session).
    let runs = helper.runs().len();
    assert!(runs <= expired + 2, "the helper ran {runs} times for {expired} refusals");
    assert_no_token(&lab, &helper, job.path(), &[("stdout", &run.stdout), ("stderr", &run.stderr)]);
}

#[test]
fn xoauth2_tokens_refused_as_expired_are_fetched_again_and_all_40_messages_go_out_once() {
    tokens_refused_as_expired_are_fetched_again(
        "xoauth2_tokens_refused_as_expired_are_fetched_again_and_all_40_messages_go_out_once",
        "xoauth2",
        "XOAUTH2",
    );
}

#[test]
fn oauthbearer_tokens_refused_as_expired_are_fetched_again_and_all_40_messages_go_out_once() {
    tokens_refused_as_expired_are_fetched_again(
        "oauthbearer_tokens_refused_as_expired_are_fetched_again_and_all_40_messages_go_out_once",
        "oauthbearer",
        "OAUTHBEARER",
    );
}

/// With `token_lifetime` shorter than the server's (2 s against 3 s), new sessions get a fresh token before
/// the old one can be refused: every AUTH is accepted, and the helper runs once per lifetime, not per session.
#[test]
fn a_token_older_than_token_lifetime_is_replaced_before_the_server_refuses_it() {
    let test = "a_token_older_than_token_lifetime_is_replaced_before_the_server_refuses_it";
    let Some(lab) = oauth_lab(test) else { return };
    let tag = unique_tag("lifetime");
    let helper = TokenHelper::new(&lab);
    let store = lab.store();
    let smtp = lab
        .smtp("oauth2", &helper, &ehlo(&tag))
        .with("token_lifetime = 2")
        .with("connections = 1")
        .with("max_messages_per_connection = 5");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 30), PACE);
    job.send(&["--yes"]).expect(0);
    stored_once(&job, &job.recipients, &store);
    let attempts = lab.auth_attempts(&ehlo(&tag));
    let seen = outcomes(&attempts);
    assert!(attempts.iter().all(|a| a.outcome == "accepted" && a.mechanism == "OAUTHBEARER"), "{seen:?}");
    let (runs, sessions) = (helper.runs().len(), attempts.len());
    assert!(runs >= 3, "30 messages at 3/s outlive a 2 s lifetime several times; the helper ran {runs} times");
    assert!(runs < sessions, "a token is reused within its lifetime: {runs} fetches for {sessions} sessions");
}

/// Starts the 40-message job, turns the helper bad once 10 messages are stored, and checks that the job stops
/// at the next refusal of a fresh token with exit 3, the decoded error, and the rest not sent.
fn a_helper_gone_bad_stops_the_job(test: &str, auth: &str, mechanism: &str) {
    let Some(lab) = oauth_lab(test) else { return };
    let tag = unique_tag(&format!("gone-bad-{auth}"));
    let helper = TokenHelper::new(&lab);
    let store = lab.store();
    let job = paced_job(&lab, &helper, auth, &tag);

    let mut child = job.spawn(&["--yes"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.by_rcpt(&job.recipients).len() < 10 && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "10 messages were not stored in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let bad_from = now_ms();
    helper.go_bad();
    let run = Run::from(child.wait_with_output().unwrap());
    run.expect(3);
    assert!(
        names_decoded_error(mechanism, &run.stderr),
        "stderr does not name the server's decoded error for {mechanism}:\n{}",
        run.stderr
    );

    let report = job.last_report();
    let delivered = report.emails_with("delivered");
    assert!(delivered.len() >= 10, "{:?}", report.counts());
    stored_once(&job, &delivered, &store);
    let stored = store.by_rcpt(&job.recipients);
    let rest: Vec<_> = report.rows.iter().filter(|r| r.status != "delivered").collect();
    assert!(!rest.is_empty(), "the job went to its end: {:?}", report.counts());
    for row in rest {
        assert_eq!((row.status.as_str(), row.attempts), ("not sent", 0), "not sent: {row:?}");
        assert!(!stored.contains_key(&row.email), "{} was stored, yet reported {}", row.email, row.status);
    }

    // After the last accepted token: the old one refused (expired), then the one fresh fetch, refused (forged).
    let attempts = lab.auth_attempts(&ehlo(&tag));
    let seen = outcomes(&attempts);
    assert_oauthbearer_names_the_server(&lab, &attempts);
    let last_ok = attempts.iter().rposition(|a| a.outcome == "accepted").expect("an accepted token");
    let after: Vec<&str> = attempts[last_ok + 1..].iter().map(|a| a.outcome.as_str()).collect();
    assert!(matches!(after.as_slice(), ["forged"] | ["expired", "forged"]), "after the last acceptance: {seen:?}");
    let fetches_after = helper.runs().iter().filter(|&&t| t >= bad_from).count();
    assert_eq!(fetches_after, 1, "a refused token is fetched again once, then the job stops: {seen:?}");
    assert_no_token(&lab, &helper, job.path(), &[("stdout", &run.stdout), ("stderr", &run.stderr)]);
}

#[test]
fn an_xoauth2_helper_that_goes_bad_mid_run_stops_the_job_with_exit_3_and_the_decoded_401() {
    a_helper_gone_bad_stops_the_job(
        "an_xoauth2_helper_that_goes_bad_mid_run_stops_the_job_with_exit_3_and_the_decoded_401",
        "xoauth2",
        "XOAUTH2",
    );
}

#[test]
fn an_oauthbearer_helper_that_goes_bad_mid_run_stops_the_job_with_exit_3_and_invalid_token() {
    a_helper_gone_bad_stops_the_job(
        "an_oauthbearer_helper_that_goes_bad_mid_run_stops_the_job_with_exit_3_and_invalid_token",
        "oauthbearer",
        "OAUTHBEARER",
    );
}

/// `mailshot ARGS` in the job's folder with only PATH set.
fn mailshot(job: &SendJob, args: &[&str]) -> Run {
    let path = std::env::var("PATH").unwrap_or_default();
    run_in_with(job.path(), args, &[("PATH", &path)])
}

/// The `AUTH:` line of `probe`'s output.
fn auth_line(run: &Run) -> String {
    let line = run.stdout.lines().find(|l| l.starts_with("AUTH:"));
    line.unwrap_or_else(|| panic!("no AUTH: line in:\n{}{}", run.stdout, run.stderr)).to_owned()
}

/// `probe` shows the mechanism and the `235` for a good token, and for a refused one the mechanism and the
/// decoded error (exit 3); never the token, not even in its `-v` transcript.
fn probe_shows_the_mechanism_and_the_verdict(test: &str, auth: &str, mechanism: &str) {
    let Some(lab) = oauth_lab(test) else { return };
    let tag = unique_tag(&format!("probe-{auth}"));
    let helper = TokenHelper::new(&lab);
    let job = SendJob::new(&tag, &lab.smtp(auth, &helper, &ehlo(&tag)), addresses(&tag, 1), "");

    let accepted = mailshot(&job, &["probe", "job.toml"]);
    accepted.expect(0);
    let line = auth_line(&accepted);
    assert!(line.contains(mechanism) && line.contains("235"), "{line}");
    let verbose = mailshot(&job, &["probe", "job.toml", "-v"]);
    verbose.expect(0);

    helper.go_bad();
    let refused = mailshot(&job, &["probe", "job.toml", "-v"]);
    refused.expect(3);
    let all = format!("{}{}", refused.stdout, refused.stderr);
    assert!(all.contains(mechanism), "the mechanism is not named:\n{all}");
    assert!(names_decoded_error(mechanism, &all), "the decoded error is not shown:\n{all}");

    let attempts = lab.auth_attempts(&ehlo(&tag));
    assert_oauthbearer_names_the_server(&lab, &attempts);
    let seen = outcomes(&attempts);
    assert!(attempts.iter().all(|a| a.mechanism == mechanism), "{seen:?}");
    let outputs = [
        ("probe stdout", accepted.stdout.as_str()),
        ("probe stderr", accepted.stderr.as_str()),
        ("probe -v stdout", verbose.stdout.as_str()),
        ("probe -v stderr", verbose.stderr.as_str()),
        ("refused probe -v stdout", refused.stdout.as_str()),
        ("refused probe -v stderr", refused.stderr.as_str()),
    ];
    assert_no_token(&lab, &helper, job.path(), &outputs);
}

#[test]
fn probe_shows_xoauth2_and_235_for_a_good_token_and_the_decoded_401_for_a_bad_one() {
    probe_shows_the_mechanism_and_the_verdict(
        "probe_shows_xoauth2_and_235_for_a_good_token_and_the_decoded_401_for_a_bad_one",
        "xoauth2",
        "XOAUTH2",
    );
}

#[test]
fn probe_shows_oauthbearer_and_235_for_a_good_token_and_invalid_token_for_a_bad_one() {
    probe_shows_the_mechanism_and_the_verdict(
        "probe_shows_oauthbearer_and_235_for_a_good_token_and_invalid_token_for_a_bad_one",
        "oauthbearer",
        "OAUTHBEARER",
    );
}

/// Every way a token could leak, in one run: a send that meets an expiry (the refusal's exchange), `check`,
/// `status`, a send stopped by a bad token, and `probe -v` (the redacted transcript).
#[test]
fn the_token_never_appears_in_any_output_report_or_journal() {
    let Some(lab) = oauth_lab("the_token_never_appears_in_any_output_report_or_journal") else { return };
    let tag = unique_tag("no-leak");
    let helper = TokenHelper::new(&lab);
    // Two messages a session, two a second: a new session every second, so the first token expires mid-run.
    let smtp = lab
        .smtp("xoauth2", &helper, &ehlo(&tag))
        .with(NO_TIMED_REFRESH)
        .with("max_messages_per_connection = 2")
        .with("pipelining = \"off\"");
    let job = SendJob::new(&tag, &smtp, addresses(&tag, 10), "[rate]\nper_second = 2\nburst = 1\n");

    let check = mailshot(&job, &["check", "job.toml"]);
    check.expect(0);
    let sent = job.send(&["--yes", "-v"]);
    sent.expect(0);
    let expired = lab.auth_attempts(&ehlo(&tag)).iter().filter(|a| a.outcome == "expired").count();
    assert!(expired >= 1, "no token expired during the run: nothing was refused");
    let status = mailshot(&job, &["status", "job.toml"]);
    status.expect(0);
    let probe = mailshot(&job, &["probe", "job.toml", "-v"]);
    probe.expect(0);

    // A second job on the same helper, stopped by a bad token.
    let tag2 = unique_tag("no-leak-bad");
    helper.go_bad();
    let job2 = SendJob::new(&tag2, &lab.smtp("xoauth2", &helper, &ehlo(&tag2)), addresses(&tag2, 3), "");
    let stopped = job2.send(&["--yes", "-v"]);
    stopped.expect(3);
    let status2 = mailshot(&job2, &["status", "job.toml", "--json"]);

    let outputs = [
        ("check", check.stdout.as_str()),
        ("check stderr", check.stderr.as_str()),
        ("send stdout", sent.stdout.as_str()),
        ("send stderr", sent.stderr.as_str()),
        ("status", status.stdout.as_str()),
        ("probe -v", probe.stdout.as_str()),
        ("probe -v stderr", probe.stderr.as_str()),
        ("stopped send stdout", stopped.stdout.as_str()),
        ("stopped send stderr", stopped.stderr.as_str()),
        ("status --json", status2.stdout.as_str()),
    ];
    assert_no_token(&lab, &helper, job.path(), &outputs);
    assert_no_token(&lab, &helper, job2.path(), &[]);
}
