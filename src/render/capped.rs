//! Rendering into memory with a cap: Tera's `render_to` writes as it goes, so a loop that would print
//! gigabytes fails at the cap within milliseconds instead of growing until the machine gives out.

use std::io::{self, Write};

/// A `Write` into memory that refuses to grow past `left` bytes (and remembers that it did).
pub(super) struct Capped {
    pub bytes: Vec<u8>,
    left: u64,
    pub full: bool,
}

impl Capped {
    pub fn new(left: u64) -> Capped {
        // Tera's own `render` starts at 2000 bytes; most parts fit.
        Capped { bytes: Vec::with_capacity(left.min(2000) as usize), left, full: false }
    }

    /// Writes `pieces` one after the other, all or (past the cap) none: one check and one reservation
    /// for the lot, where a `write` per piece would check and grow each time.
    pub fn write_pieces<'a>(&mut self, pieces: impl Iterator<Item = &'a str> + Clone) -> io::Result<()> {
        let len: usize = pieces.clone().map(str::len).sum();
        if len as u64 > self.left {
            self.full = true;
            return Err(full());
        }
        self.left -= len as u64;
        self.bytes.reserve(len);
        pieces.for_each(|piece| self.bytes.extend_from_slice(piece.as_bytes()));
        Ok(())
    }
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.full = true;
            return Err(full());
        }
        self.left -= buf.len() as u64;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn full() -> io::Error {
    io::Error::other("the rendered message is over its size limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_up_to_the_cap_and_not_a_byte_more() {
        let mut w = Capped::new(5);
        w.write_all(b"abc").unwrap();
        assert!(w.write_all(b"def").is_err());
        assert_eq!((w.bytes.as_slice(), w.full), (&b"abc"[..], true));
        let mut w = Capped::new(3);
        w.write_all(b"abc").unwrap();
        assert!(!w.full);
    }

    #[test]
    fn pieces_are_written_whole_or_not_at_all() {
        let mut w = Capped::new(6);
        w.write_pieces(["ab", "c"].into_iter()).unwrap();
        assert!(w.write_pieces(["d", "ef", "g"].into_iter()).is_err());
        assert_eq!((w.bytes.as_slice(), w.full), (&b"abc"[..], true));
        let mut w = Capped::new(6);
        w.write_pieces(["abc", "", "def"].into_iter()).unwrap();
        assert_eq!((w.bytes.as_slice(), w.full), (&b"abcdef"[..], false));
    }
}
