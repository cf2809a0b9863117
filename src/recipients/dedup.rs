//! Duplicate detection with memory that stays small: a 64-bit fingerprint and the first row per recipient,
//! 12 bytes a slot (two `u32` halves and a `u32` row, 4-byte aligned) in a table keyed without re-hashing.
//!
//! Why fingerprints: keeping every address would grow with the file (a million rows, tens of MB more).
//! SipHash with fixed keys is deterministic across runs, so `check` and `send` agree on which row is
//! "first". Two different addresses sharing a fingerprint (about 1 in 3·10⁷ for a million rows) would be
//! reported as a duplicate, visibly (with the other row's number), never silently merged.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry as Slot};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::{Entry, Mailbox, Recipient, RowError, RowErrorKind};

/// A fingerprint as two halves, so that a slot is 12 bytes rather than 16.
type Fingerprint = (u32, u32);
/// Rows beyond 4·10⁹ saturate (they would still be detected, with an approximate first row).
type Table = HashMap<Fingerprint, u32, BuildHasherDefault<Passthrough>>;

pub(super) struct Seen {
    addresses: Table,
    /// Only when a `key` column is configured; otherwise the key is the address.
    keys: Option<Table>,
}

fn fingerprint(value: &str) -> Fingerprint {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    split(hasher.finish())
}

/// The fingerprint of `Mailbox::dedup_key` (the envelope address, lower case) without building that string.
fn address_fingerprint(mailbox: &Mailbox) -> Fingerprint {
    let mut hasher = DefaultHasher::new();
    let mut buffer = [0u8; 256];
    let local = mailbox.local.as_bytes();
    match buffer.get_mut(..local.len()) {
        // The common case: an ASCII local part (≤ 64 octets) folded in place, hashed in one write.
        Some(folded) if local.is_ascii() => {
            folded.copy_from_slice(local);
            folded.make_ascii_lowercase();
            hasher.write(folded);
        }
        _ => mailbox.local.chars().flat_map(char::to_lowercase).for_each(|c| hasher.write_u32(u32::from(c))),
    }
    hasher.write(b"@");
    hasher.write(mailbox.domain_ascii.as_bytes());
    split(hasher.finish())
}

fn split(h: u64) -> Fingerprint {
    ((h >> 32) as u32, h as u32)
}

/// The fingerprint is already a uniform hash: the table uses it as it is.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 << 32) | u64::from(n);
    }
}

fn row32(row: u64) -> u32 {
    u32::try_from(row).unwrap_or(u32::MAX)
}

impl Seen {
    pub(super) fn new(separate_keys: bool) -> Seen {
        Seen { addresses: Table::default(), keys: separate_keys.then(Table::default) }
    }

    /// The first row with an address is sent; later ones are duplicates. A reused key with another address
    /// is an error, because the journal and the Message-ID could no longer tell the two apart.
    pub(super) fn admit(&mut self, recipient: Recipient) -> Result<Entry, RowError> {
        let row = recipient.row;
        let address = address_fingerprint(&recipient.mailbox);
        if let Slot::Occupied(first) = self.addresses.entry(address) {
            let (first_row, address) = (u64::from(*first.get()), recipient.mailbox.dedup_key());
            return Ok(Entry::Duplicate { row, first_row, address });
        }
        if let Some(keys) = &mut self.keys {
            match keys.entry(fingerprint(&recipient.key)) {
                Slot::Occupied(first) => {
                    let kind = RowErrorKind::DuplicateKey { key: recipient.key, first_row: u64::from(*first.get()) };
                    return Err(RowError { row, column: None, kind });
                }
                Slot::Vacant(slot) => {
                    slot.insert(row32(row));
                }
            }
        }
        self.addresses.insert(address, row32(row));
        Ok(Entry::Recipient(recipient))
    }
}
