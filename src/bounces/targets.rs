//! The recipients a bounce report may be about: those of the job's CSV that its journal shows were sent,
//! found by the Message-ID mailshot gave their message (exact: IDs are derived from the job and the key)
//! or, for a report that does not return the message, by address (compared as duplicates are).

use std::collections::HashMap;

use crate::job::journal::{KeyId, Replayed, key_id};
use crate::jobdef::{Job, Problem};
use crate::recipients::{Entry, Mailbox};

/// A recipient the job sent to.
#[derive(Debug, Clone)]
pub struct Target {
    pub key: String,
    pub row: u64,
    pub email: String,
}

#[derive(Debug, Default)]
pub struct Targets {
    all: Vec<Target>,
    /// Digests of the Message-ID / the folded address → index into `all` (digests keep a million small).
    by_message_id: HashMap<KeyId, usize>,
    by_address: HashMap<KeyId, usize>,
    /// The VERP token (`mailshot.recipient_token`: the Message-ID's left part) → index into `all`.
    by_token: HashMap<KeyId, usize>,
}

impl Targets {
    /// Streams the job's CSV once; only recipients the journal names are kept.
    pub fn of(job: &Job, journal: &Replayed) -> Result<Targets, Vec<Problem>> {
        let mut targets = Targets::default();
        for entry in job.recipients()?.filter_map(Result::ok) {
            let Entry::Recipient(r) = entry else { continue };
            if journal.get(&r.key).is_none() {
                continue;
            }
            let i = targets.all.len();
            let message_id = job.message_id(&r);
            targets.by_token.insert(key_id(crate::jobdef::recipient_token(&message_id)), i);
            targets.by_message_id.insert(key_id(&message_id), i);
            targets.by_address.insert(key_id(&r.mailbox.dedup_key()), i);
            targets.all.push(Target { key: r.key, row: r.row, email: r.mailbox.envelope() });
        }
        Ok(targets)
    }

    /// The recipient whose message had this Message-ID (with or without angle brackets).
    pub fn by_message_id(&self, id: &str) -> Option<&Target> {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        self.by_message_id.get(&key_id(id)).map(|&i| &self.all[i])
    }

    /// The recipient a VERP address names (`bounces+TOKEN@…`: the token after the last `+` or `-`).
    pub fn by_verp_address(&self, address: &str) -> Option<&Target> {
        let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
        let token = local.rsplit(['+', '-']).next()?.to_ascii_lowercase();
        let is_token = token.len() >= 16 && token.chars().all(|c| c.is_ascii_hexdigit());
        is_token.then(|| self.by_token.get(&key_id(&token)).map(|&i| &self.all[i]))?
    }

    /// The recipient with this address, in any form `Mailbox::parse` reads.
    pub fn by_address(&self, address: &str) -> Option<&Target> {
        let mailbox = Mailbox::parse(address).ok()?;
        self.by_address.get(&key_id(&mailbox.dedup_key())).map(|&i| &self.all[i])
    }
}
