//! Duplicate detection with memory that stays small: a 64-bit fingerprint and the first row per recipient.
//!
//! Why fingerprints: keeping every address would grow with the file (a million rows, tens of MB more).
//! SipHash with fixed keys is deterministic across runs, so `check` and `send` agree on which row is
//! "first". Two different addresses sharing a fingerprint (about 1 in 3·10⁷ for a million rows) would be
//! reported as a duplicate, visibly, never silently merged.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry as Slot};
use std::hash::{Hash, Hasher};

use super::{Entry, Recipient, RowError, RowErrorKind};

pub(super) struct Seen {
    addresses: HashMap<u64, u64>,
    /// Only when a `key` column is configured; otherwise the key is the address.
    keys: Option<HashMap<u64, u64>>,
}

fn fingerprint(value: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

impl Seen {
    pub(super) fn new(separate_keys: bool) -> Seen {
        Seen { addresses: HashMap::new(), keys: separate_keys.then(HashMap::new) }
    }

    /// The first row with an address is sent; later ones are duplicates. A reused key with another address
    /// is an error, because the journal and the Message-ID could no longer tell the two apart.
    pub(super) fn admit(&mut self, recipient: Recipient) -> Result<Entry, RowError> {
        let row = recipient.row;
        let address = recipient.mailbox.dedup_key();
        if let Slot::Occupied(first) = self.addresses.entry(fingerprint(&address)) {
            return Ok(Entry::Duplicate { row, first_row: *first.get(), address });
        }
        if let Some(keys) = &mut self.keys {
            match keys.entry(fingerprint(&recipient.key)) {
                Slot::Occupied(first) => {
                    let kind = RowErrorKind::DuplicateKey { key: recipient.key, first_row: *first.get() };
                    return Err(RowError { row, column: None, kind });
                }
                Slot::Vacant(slot) => {
                    slot.insert(row);
                }
            }
        }
        self.addresses.insert(fingerprint(&address), row);
        Ok(Entry::Recipient(recipient))
    }
}
