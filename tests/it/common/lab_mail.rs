//! Reading the lab back: copies per recipient in its shared catch-all Maildir (the one poller of it), and
//! this run's SMTP sessions in the Postfix log.
//!
//! Both are shared by every test and session and never emptied, so each reader looks only at what concerns
//! it: the Maildir by `Delivered-To:` address (test addresses are unique), the log from the offset where the
//! test started and by envelope sender (each job's sender is unique).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::lab_env::Lab;

/// The lab's Maildir from a moment on, each file read once (delivered files never change).
pub struct Maildir {
    new: PathBuf,
    /// Unix seconds: files named as delivered before this (Maildir names start with the delivery time)
    /// are older than the test and never read, so a Maildir of many thousand files stays cheap to poll.
    since: u64,
    /// File name → its `Delivered-To:` address (lowercase), or "" when it has none.
    seen: HashMap<OsString, String>,
}

impl Maildir {
    /// Only messages delivered from now on (with a second of slack) will be looked at.
    pub fn mark(lab: &Lab) -> Maildir {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        Maildir { new: lab.maildir.join("new"), since: now - 2, seen: HashMap::new() }
    }

    fn scan(&mut self) {
        // A fresh lab has no Maildir until its first delivery: nothing delivered yet.
        let entries = match std::fs::read_dir(&self.new) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            entries => entries.unwrap(),
        };
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let delivered: Option<u64> = name.to_str().and_then(|n| n.split('.').next()?.parse().ok());
            if self.seen.contains_key(&name) || delivered.is_some_and(|t| t < self.since) {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let to = text
                .lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix("Delivered-To: "))
                .unwrap_or("")
                .to_ascii_lowercase();
            self.seen.insert(entry.file_name(), to);
        }
    }

    /// Copies delivered so far to each of `wanted` (absent: none).
    pub fn count(&mut self, wanted: &HashSet<String>) -> HashMap<String, usize> {
        self.count_where(|to| wanted.contains(to))
    }

    fn count_where(&mut self, matches: impl Fn(&str) -> bool) -> HashMap<String, usize> {
        self.scan();
        let mut counts = HashMap::new();
        for to in self.seen.values().filter(|to| matches(to)) {
            *counts.entry(to.clone()).or_default() += 1;
        }
        counts
    }

    /// Polls until `wanted` hold at least `at_least` copies in all (delivery lags the 250), then looks once
    /// more after a pause so that a late duplicate is counted too.
    pub fn settle(&mut self, wanted: &[String], at_least: usize) -> HashMap<String, usize> {
        let wanted: HashSet<String> = wanted.iter().map(|w| w.to_ascii_lowercase()).collect();
        self.settle_where(|to| wanted.contains(to), at_least)
    }

    /// As [`Maildir::settle`], for every address `matches` accepts (lowercase), e.g. all of one run's
    /// prefix, so that a copy to an address the test did not expect is counted too.
    pub fn settle_where(&mut self, matches: impl Fn(&str) -> bool, at_least: usize) -> HashMap<String, usize> {
        let start = Instant::now();
        while self.count_where(&matches).values().sum::<usize>() < at_least && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        self.count_where(&matches)
    }

    /// The first copy delivered to `rcpt`, polled for without the pause of [`Maildir::settle`]; panics
    /// when none came within 30 s.
    pub fn first(&mut self, rcpt: &str) -> String {
        let start = Instant::now();
        let rcpt = rcpt.to_ascii_lowercase();
        while self.count_where(|to| to == rcpt).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(30), "no message for {rcpt} in {}", self.new.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        self.messages(&rcpt).swap_remove(0)
    }

    /// The text of every copy delivered to `rcpt`, as of the last count (see [`Maildir::settle`]).
    pub fn messages(&self, rcpt: &str) -> Vec<String> {
        let rcpt = rcpt.to_ascii_lowercase();
        let names = self.seen.iter().filter(|(_, to)| **to == rcpt).map(|(n, _)| n);
        names.map(|n| std::fs::read_to_string(self.new.join(n)).unwrap()).collect()
    }
}

/// One smtpd session in the Postfix log: from `connect from` to `disconnect from` of one process.
#[derive(Debug, Clone)]
pub struct Session {
    /// `lab/tls`, `lab/plain`, …
    pub service: String,
    /// Line numbers (in the log slice) of its connect and disconnect.
    pub opened: usize,
    pub closed: Option<usize>,
    /// Line number of its last `client=` line (its last MAIL FROM).
    pub last_mail: usize,
    pub queue_ids: Vec<String>,
    /// `mail=N` from the disconnect line: MAIL commands accepted in this session.
    pub mail: Option<u32>,
    /// `bdat=N` from the disconnect line: BDAT commands accepted (0 when the session used DATA).
    pub bdat: Option<u32>,
}

/// The Postfix log from a given offset on (where a test started).
pub struct MailLog {
    path: PathBuf,
    start: u64,
}

impl MailLog {
    /// Marks the log's current end: only what is written after it is read.
    pub fn mark(lab: &Lab) -> MailLog {
        let start = std::fs::metadata(&lab.maillog).map(|m| m.len()).unwrap_or(0);
        MailLog { path: lab.maillog.clone(), start }
    }

    pub fn lines(&self) -> Vec<String> {
        let bytes = std::fs::read(&self.path).unwrap();
        let slice = bytes.get(self.start as usize..).unwrap_or_default();
        String::from_utf8_lossy(slice).lines().map(str::to_owned).collect()
    }

    /// The sessions that carried at least one message from `sender`, once the log shows `messages` of
    /// them and every one of those sessions has ended (polled: the log lags a little).
    pub fn sessions_of(&self, sender: &str, messages: usize) -> Vec<Session> {
        let start = Instant::now();
        loop {
            let (sessions, queued) = sessions_from(&self.lines(), sender);
            let done = queued >= messages && sessions.iter().all(|s| s.closed.is_some());
            if done || start.elapsed() > Duration::from_secs(20) {
                return sessions;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Lines of this slice reporting a failed SASL login for `user`.
    pub fn auth_failures(&self, user: &str) -> usize {
        let needle = format!("authentication failed: authentication failure, sasl_username={user}");
        self.lines().iter().filter(|l| l.contains(&needle)).count()
    }
}

/// `Nov 25 22:22:15 mx lab/tls/smtpd[9786]: connect from …` → (`lab/tls/smtpd[9786]`, `connect from …`).
fn split(line: &str) -> Option<(&str, &str)> {
    let at = line.find("]: ")?;
    let tag_start = line[..at].rfind(' ')? + 1;
    Some((&line[tag_start..=at], &line[at + 3..]))
}

/// The sessions carrying mail from `sender`, and how many of its messages the log shows queued.
fn sessions_from(lines: &[String], sender: &str) -> (Vec<Session>, usize) {
    let from = format!(": from=<{sender}>,");
    let mine: HashSet<&str> =
        lines.iter().filter(|l| l.contains(&from)).filter_map(|l| queue_id(split(l)?.1)).collect();
    let mut open: HashMap<&str, Session> = HashMap::new();
    let mut sessions = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((tag, message)) = split(line) else { continue };
        let Some((service, _pid)) = tag.strip_suffix(']').and_then(|t| t.split_once("/smtpd[")) else { continue };
        if message.starts_with("connect from ") {
            let session = Session {
                service: service.to_owned(),
                opened: i,
                closed: None,
                last_mail: i,
                queue_ids: Vec::new(),
                mail: None,
                bdat: None,
            };
            if let Some(unfinished) = open.insert(tag, session) {
                sessions.push(unfinished);
            }
        } else if let Some(s) = open.get_mut(tag) {
            if message.starts_with("disconnect from ") {
                s.closed = Some(i);
                let count = |verb: &str| {
                    let mut words = message.split_whitespace();
                    words.find_map(|w| w.strip_prefix(verb)?.split('/').next()?.parse().ok())
                };
                (s.mail, s.bdat) = (count("mail="), count("bdat=").or(Some(0)));
                sessions.push(open.remove(tag).unwrap());
            } else if let Some(id) = queue_id(message).filter(|_| message.contains(": client=")) {
                s.queue_ids.push(id.to_owned());
                s.last_mail = i;
            }
        }
    }
    sessions.extend(open.into_values());
    sessions.retain(|s| s.queue_ids.iter().any(|q| mine.contains(q.as_str())));
    sessions.sort_by_key(|s| s.opened);
    (sessions, mine.len())
}

/// `4ABC123: …` → `4ABC123`.
fn queue_id(message: &str) -> Option<&str> {
    let (id, _) = message.split_once(": ")?;
    (id.len() >= 6 && id.chars().all(|c| c.is_ascii_alphanumeric())).then_some(id)
}

/// The most sessions busy at one time, by log order, each from its connect to its last MAIL FROM.
///
/// Not to its disconnect: the smtpd that answered QUIT (or sent a 421) may log its disconnect after another
/// smtpd logged the client's next connect, so a worker's back-to-back sessions would seem to overlap.
pub fn max_concurrent(sessions: &[Session]) -> usize {
    let mut edges: Vec<(usize, i32)> = Vec::new();
    for s in sessions {
        edges.push((s.opened, 1));
        edges.push((s.last_mail, -1));
    }
    edges.sort();
    let mut open = 0;
    let mut most = 0;
    for (_, delta) in edges {
        open += delta;
        most = most.max(open);
    }
    most as usize
}
