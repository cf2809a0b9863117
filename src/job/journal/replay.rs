//! Reading a journal back into what the next run needs: each recipient's state, the last run, the budget used.
//! The one fold of the journal: `send` resumes from it and `status` reports from it, so the two never differ
//! on what a record means (a damaged line stops both; a torn last line is ignored by both).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::JournalError;
use super::record::{Bounce, BounceKind, Record, Settled};

/// What the journal knows about one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry {
    pub state: JournalState,
    /// Date header (unix seconds) of the last attempt: a retry reuses it.
    pub date: i64,
    pub attempts: u32,
    /// Delivered while some of its copies (Cc/Bcc) were rejected: a later run carries that along (exit 1).
    pub copies_rejected: bool,
}

/// Where a recipient stands in the journal (what the next run does with it follows from this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalState {
    /// The final dot may have gone out and no verdict was recorded: maybe delivered.
    Uncertain,
    /// Taken and then given back unsent: pending, to be sent with the recorded Date.
    Released,
    Settled(Settled),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub run: u32,
    pub started: DateTime<Utc>,
    pub fingerprint: String,
    /// What the run's messages depended on, input by input (absent in journals written before they were kept).
    pub inputs: Option<BTreeMap<String, String>>,
    /// `None` when the run did not end cleanly (killed, crashed).
    pub ended: Option<(DateTime<Utc>, u8, String)>,
    /// The shard the run sent, as its record says.
    pub shard: Option<crate::job::shard::Shard>,
}

/// Recipients are keyed by a 128-bit digest of their key, so a million of them fit in a few tens of MB.
pub type KeyId = u128;

pub fn key_id(key: &str) -> KeyId {
    let digest = Sha256::digest(key.as_bytes());
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"))
}

fn bounce_report_id(report: &str, key: &str) -> KeyId {
    key_id(&format!("{}\0{report}\0{key}", report.len()))
}

#[derive(Debug, Default)]
pub struct Replayed {
    pub entries: HashMap<KeyId, JournalEntry>,
    pub last_run: Option<LastRun>,
    /// Messages whose final dot went out in the 24 hours before `now` (the rolling daily budget).
    pub sent_last_24h: u64,
    /// Recipients delivered in the 24 hours before `now` (messages, where `sent_last_24h` counts attempts).
    pub delivered_last_24h: u64,
    /// Each recipient's address, row and last reply, kept only when asked for ([`Replayed::read_details`]).
    pub details: Option<HashMap<KeyId, Detail>>,
    /// Byte length of the intact prefix; a torn last line lies beyond it.
    pub intact_len: u64,
    pub torn_tail: bool,
    /// Each recipient's bounce, the hard one where there were both (`mailshot bounces`).
    pub bounces: HashMap<KeyId, Bounce>,
    /// The (report, recipient) pairs recorded, so that reading a report again adds nothing.
    bounce_reports: HashSet<KeyId>,
    /// Every envelope address a record names, with the key it was sent under (digests both), so that a
    /// report can be checked against the journal.
    emails: HashMap<KeyId, KeyId>,
}

/// What a person needs to know about a recipient's last record (`status`), beyond its [`JournalEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub row: u64,
    pub email: String,
    pub code: Option<u16>,
    pub reply: String,
}

/// The reply `status` shows for an uncertain recipient (a committing record with no outcome after it).
pub const UNCERTAIN_REPLY: &str =
    "the final dot may have been sent; the server's answer never arrived (maybe delivered)";

/// What a complete line holding zeros is called: the writer's zeros ahead of its records (`prezeroed`), then
/// a record, as a power loss mid-sync leaves them, or as a reader without the lock meets them for a moment
/// ([`Replayed::read_unlocked`]).
const ZEROS_THEN_RECORDS: &str = "zeros where a record should be, then more records";

/// How often a reader without the lock reads the journal again before zeros then a record are damage, and
/// the pause between two reads (far longer than the one `write` that puts a record over its zeros).
const UNLOCKED_READS: u32 = 5;
const UNLOCKED_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

impl Replayed {
    /// The journal at `path` for a reader that does not hold the job's lock (`status`, the prompt before
    /// the run takes it), so a run may be writing it. The run writes each record over zeros laid ahead of
    /// it (`prezeroed`): a record written between two reads of the reader, across where the first one
    /// stopped, reads as zeros then the record's tail, a complete line, as a power loss's damage does (an
    /// appended file only ever showed such a reader less, never that). Damage stays and a record in flight
    /// does not: the file is read again, a moment apart, before zeros then a record are called damage.
    pub fn read_unlocked(path: &std::path::Path, now: DateTime<Utc>, details: bool) -> Result<Replayed, JournalError> {
        let mut reads = 1;
        loop {
            let file = std::fs::File::open(path).map_err(|e| JournalError::io(path, e))?;
            let read = if details { Replayed::read_details(file, now, path) } else { Replayed::read(file, now, path) };
            match read {
                Err(JournalError::Corrupt { message, .. })
                    if message == ZEROS_THEN_RECORDS && reads < UNLOCKED_READS =>
                {
                    reads += 1;
                    std::thread::sleep(UNLOCKED_PAUSE);
                }
                read => return read,
            }
        }
    }

    pub fn read(input: impl Read, now: DateTime<Utc>, path: &std::path::Path) -> Result<Replayed, JournalError> {
        Replayed::fold(input, now, path, Replayed::default())
    }

    /// [`Replayed::read`], also keeping each recipient's [`Detail`] (more memory: for `status`, not a run).
    pub fn read_details(
        input: impl Read,
        now: DateTime<Utc>,
        path: &std::path::Path,
    ) -> Result<Replayed, JournalError> {
        Replayed::fold(input, now, path, Replayed { details: Some(HashMap::new()), ..Replayed::default() })
    }

    fn fold(
        input: impl Read,
        now: DateTime<Utc>,
        path: &std::path::Path,
        mut replayed: Replayed,
    ) -> Result<Replayed, JournalError> {
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        let since = now - Duration::hours(24);
        for number in 1.. {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| JournalError::io(path, e))?;
            if n == 0 {
                break;
            }
            let complete = line.ends_with(b"\n");
            match serde_json::from_slice::<Record>(&line) {
                Ok(record) if complete => replayed.apply(record, since),
                // A torn last write (power loss, kill -9 mid-write): ignored, and cut off before appending.
                _ if !complete => {
                    replayed.torn_tail = true;
                    break;
                }
                Ok(_) => unreachable!("complete is true here"),
                Err(e) => {
                    let message = match line.contains(&0) {
                        // The zeros the writer lays ahead of its records (`prezeroed`) with a record after
                        // them: a power loss while the last records were being synced.
                        true => ZEROS_THEN_RECORDS.to_owned(),
                        false => e.to_string(),
                    };
                    return Err(JournalError::Corrupt { path: path.to_owned(), line: number, message });
                }
            }
            replayed.intact_len += n as u64;
        }
        Ok(replayed)
    }

    fn apply(&mut self, record: Record, since: DateTime<Utc>) {
        match record {
            Record::Run { run, started, fingerprint, inputs, shard, .. } => {
                self.last_run = Some(LastRun { run, started, fingerprint, inputs, ended: None, shard });
            }
            Record::Committing { key, row, email, date, attempt, at, .. } => {
                self.emails.insert(key_id(&email.to_ascii_lowercase()), key_id(&key));
                if at >= since {
                    self.sent_last_24h += 1;
                }
                let id = key_id(&key);
                self.entries.insert(
                    id,
                    JournalEntry { state: JournalState::Uncertain, date, attempts: attempt, copies_rejected: false },
                );
                self.detail(id, row, email, None, UNCERTAIN_REPLY.to_owned());
            }
            Record::Outcome { key, row, email, status, code, reply, attempt, date, at, copies, .. } => {
                self.emails.insert(key_id(&email.to_ascii_lowercase()), key_id(&key));
                if at >= since && status == Settled::Delivered {
                    self.delivered_last_24h += 1;
                }
                let id = key_id(&key);
                let (state, copies_rejected) = (JournalState::Settled(status), !copies.is_empty());
                self.entries.insert(id, JournalEntry { state, date, attempts: attempt, copies_rejected });
                self.detail(id, row, email, code, reply);
            }
            Record::Released { key, date, at } => {
                if at >= since {
                    self.sent_last_24h = self.sent_last_24h.saturating_sub(1);
                }
                // Pending again, keeping its Date so that the message sent later is the same bytes.
                let attempts = self.entries.get(&key_id(&key)).map_or(0, |e| e.attempts.saturating_sub(1));
                let entry = JournalEntry { state: JournalState::Released, date, attempts, copies_rejected: false };
                self.entries.insert(key_id(&key), entry);
            }
            Record::RunEnd { bounce: Some(bounce), .. } => self.bounced(bounce),
            Record::RunEnd { run, ended, exit_code, summary, bounce: None } => {
                if let Some(last) = self.last_run.as_mut().filter(|l| l.run == run) {
                    last.ended = Some((ended, exit_code, summary));
                }
            }
        }
    }

    fn bounced(&mut self, bounce: Bounce) {
        self.bounce_reports.insert(bounce_report_id(&bounce.report, &bounce.key));
        let id = key_id(&bounce.key);
        let hard_already = self.bounces.get(&id).is_some_and(|b| b.kind == BounceKind::Hard);
        if !(hard_already && bounce.kind == BounceKind::Soft) {
            self.bounces.insert(id, bounce);
        }
    }

    /// Whether this report about this recipient is recorded already.
    pub fn has_bounce(&self, report: &str, key: &str) -> bool {
        self.bounce_reports.contains(&bounce_report_id(report, key))
    }

    fn detail(&mut self, id: KeyId, row: u64, email: String, code: Option<u16>, reply: String) {
        if let Some(details) = self.details.as_mut() {
            details.insert(id, Detail { row, email, code, reply });
        }
    }

    /// What the journal last recorded for the recipient sent to this envelope address, if it names it.
    pub fn state_of_email(&self, email: &str) -> Option<JournalState> {
        let key = self.emails.get(&key_id(&email.to_ascii_lowercase()))?;
        self.entries.get(key).map(|e| e.state)
    }

    pub fn get(&self, key: &str) -> Option<&JournalEntry> {
        self.entries.get(&key_id(key))
    }

    pub fn count(&self, state: JournalState) -> usize {
        self.entries.values().filter(|e| e.state == state).count()
    }
}
