//! Deterministic identifiers: the Message-ID (RFC 5322 §3.6.4) and the MIME boundaries (RFC 2046 §5.1.1).
//!
//! Both derive from a per-job seed and the recipient key through SHA-256, so rendering the same recipient
//! again (a retry after a crash, `preview` then `send`) gives the same bytes, and two recipients never share
//! an ID. Random boundaries (mail-builder's default) would make every retry differ.

use sha2::{Digest, Sha256};

/// Makes Message-IDs for one job: `<hash(seed, key)@domain>`.
#[derive(Debug, Clone)]
pub struct MessageIds {
    seed: String,
    domain: String,
}

impl MessageIds {
    /// `domain` is the right-hand side (the From domain, A-labels); `seed` names the job or campaign.
    pub fn new(seed: impl Into<String>, domain: impl Into<String>) -> MessageIds {
        MessageIds { seed: seed.into(), domain: domain.into() }
    }

    /// The Message-ID without angle brackets, e.g. `3f1c…@example.com`.
    pub fn for_key(&self, key: &str) -> String {
        let mut id = hex(&digest(&[self.seed.as_bytes(), key.as_bytes()]), 16);
        id.reserve_exact(1 + self.domain.len());
        id.push('@');
        id.push_str(&self.domain);
        id
    }
}

/// The prefix of every boundary mailshot makes.
const PREFIX: &str = "=_mailshot_";

/// A boundary for the multipart at `depth` that occurs in none of `bodies`.
///
/// `=_` never appears in quoted-printable or base64 output, and a 7bit body would have to contain the
/// prefix and 24 hex digits as well; if it somehow does, the next counter value is tried.
pub fn boundary(message_id: &str, depth: u8, bodies: &[&str]) -> String {
    let make = |n: u32| {
        format!("{PREFIX}{}", hex(&digest(&[b"boundary", message_id.as_bytes(), &[depth], &n.to_be_bytes()]), 12))
    };
    // One scan for the prefix settles nearly every message; only a body that has it needs checking per candidate.
    let suspects: Vec<&&str> = bodies.iter().filter(|body| body.contains(PREFIX)).collect();
    (0u32..).map(make).find(|b| !suspects.iter().any(|body| body.contains(b.as_str()))).unwrap_or_default()
}

fn digest(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

fn hex(bytes: &[u8], n: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * n);
    for &b in bytes.iter().take(n) {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_deterministic_and_distinct() {
        let ids = MessageIds::new("/jobs/a/job.toml", "example.com");
        assert_eq!(ids.for_key("ann@example.com"), ids.for_key("ann@example.com"));
        assert_ne!(ids.for_key("ann@example.com"), ids.for_key("bob@example.com"));
        assert_ne!(ids.for_key("x"), MessageIds::new("/jobs/b/job.toml", "example.com").for_key("x"));
        let id = ids.for_key("ann@example.com");
        assert!(id.ends_with("@example.com") && id.len() == 32 + 12, "{id}");
    }

    #[test]
    fn boundary_avoids_body_content() {
        let first = boundary("id@x", 0, &[]);
        assert_eq!(first, boundary("id@x", 0, &["unrelated =_mailshot_0"]));
        assert_ne!(first, boundary("id@x", 1, &[]));
        let body = format!("text\r\n--{first}\r\nmore");
        let other = boundary("id@x", 0, &[body.as_str()]);
        assert_ne!(other, first);
        assert!(other.starts_with("=_mailshot_") && other.len() <= 70);
    }
}
