//! Physical line numbers for CSV records: the line on which a record's first byte is, as an editor shows it.
//!
//! Why not `csv::Position::line`: the csv crate ends a record at the CR of a CRLF and counts the LF into the
//! *next* record, and it skips blank lines before a record after taking its position; so with CRLF line ends
//! (Excel's and Python's default) every row was reported one line too low. Here the reader sits under the
//! csv parser, notes where the line breaks are as the bytes go by, and answers for a record's byte offset:
//! line ends before it (an LF, or a CR no LF follows), plus the breaks csv skipped at its start. One
//! definition for LF, CRLF, bare CR and quoted cells spanning lines, used by every command that names a row.

use std::collections::VecDeque;
use std::io::{self, Read};

/// A `Read` that remembers where the CR and LF bytes were until a record offset has passed them.
pub(super) struct LineCounter<R> {
    inner: R,
    /// The offset of the next byte to read.
    read: u64,
    /// CR and LF bytes not yet passed by [`LineCounter::line_at`], as `offset << 1 | is_lf`. Only the bytes
    /// csv has buffered ahead of the record being numbered are here.
    breaks: VecDeque<u64>,
    /// Line ends before everything in `breaks`.
    lines_before: u64,
    /// No byte at or beyond this offset is read: the reader fails instead (a record too long).
    until: u64,
    exceeded: bool,
}

impl<R: Read> LineCounter<R> {
    pub(super) fn new(inner: R) -> LineCounter<R> {
        LineCounter { inner, read: 0, breaks: VecDeque::new(), lines_before: 0, until: u64::MAX, exceeded: false }
    }

    /// Reading fails from byte `offset` on: the caller bounds how far one record may go.
    pub(super) fn allow_until(&mut self, offset: u64) {
        self.until = offset;
    }

    /// Whether a read failed because it reached the offset [`LineCounter::allow_until`] set.
    pub(super) fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The 1-based line of a record that csv says starts at byte `start`: the line of its first byte that is
    /// not a line break. Offsets must not decrease from one call to the next (records come in order).
    pub(super) fn line_at(&mut self, start: u64) -> u64 {
        let mut first = start;
        while let Some(&b) = self.breaks.front() {
            let offset = b >> 1;
            if offset > first {
                break;
            }
            if offset == first {
                // A break where the record would start: csv skipped it (a CRLF's LF, a blank line).
                first += 1;
            }
            self.breaks.pop_front();
            // An LF ends a line; so does a CR that no LF follows (classic Mac line ends, which csv accepts).
            let crlf = b & 1 == 0 && self.breaks.front().is_some_and(|&next| next == ((offset + 1) << 1 | 1));
            self.lines_before += u64::from(!crlf);
        }
        self.lines_before + 1
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.until.saturating_sub(self.read)).unwrap_or(usize::MAX);
        if room == 0 && !buf.is_empty() {
            self.exceeded = true;
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a record longer than allowed"));
        }
        let len = buf.len().min(room);
        let n = self.inner.read(&mut buf[..len])?;
        let base = self.read;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                self.breaks.push_back(((base + i as u64) << 1) | u64::from(b == b'\n'));
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of each record of `text`, as the csv crate splits it.
    fn lines(text: &str) -> Vec<u64> {
        let mut csv = csv::ReaderBuilder::new().has_headers(false).from_reader(LineCounter::new(text.as_bytes()));
        let mut record = csv::ByteRecord::new();
        let mut lines = Vec::new();
        while csv.read_byte_record(&mut record).unwrap() {
            let start = record.position().unwrap().byte();
            lines.push(csv.get_mut().line_at(start));
        }
        lines
    }

    #[test]
    fn lf_crlf_and_mixed_line_ends_give_the_same_lines() {
        assert_eq!(lines("h\na\nb\nc\n"), [1, 2, 3, 4]);
        assert_eq!(lines("h\r\na\r\nb\r\nc\r\n"), [1, 2, 3, 4]);
        assert_eq!(lines("h\r\na\nb\r\nc"), [1, 2, 3, 4]);
    }

    #[test]
    fn blank_lines_and_quoted_line_breaks_are_counted() {
        assert_eq!(lines("h\n\n\na\nb\n"), [1, 4, 5]);
        assert_eq!(lines("h\r\n\r\na\r\n"), [1, 3]);
        assert_eq!(lines("h,x\na,\"two\nlines\"\nb,\"three\r\nline\r\nbreaks\"\r\nc,\n"), [1, 2, 4, 7]);
        assert_eq!(lines("h\n\"\nstarts with a break\"\nx\n"), [1, 2, 4]);
    }

    #[test]
    fn a_bare_cr_ends_a_line_as_csv_ends_a_record_there() {
        assert_eq!(lines("h\ra\rb\rc\r"), [1, 2, 3, 4]);
        assert_eq!(lines("h\ra\r\nb\nc"), [1, 2, 3, 4]);
        assert_eq!(lines("h\r\ra\r"), [1, 3]);
        assert_eq!(lines("h,x\ra,\"two\rlines\"\rb,\n"), [1, 2, 4]);
    }

    #[test]
    fn a_bom_does_not_shift_lines() {
        assert_eq!(lines("\u{feff}h\r\na\r\nb\r\n"), [1, 2, 3]);
    }

    #[test]
    fn lines_hold_across_csv_buffer_boundaries() {
        let mut text = String::from("h\r\n");
        for i in 0..5000 {
            text.push_str(&format!("row {i} with some padding to cross buffers\r\n"));
        }
        let got = lines(&text);
        assert_eq!(got.len(), 5001);
        assert!(got.iter().enumerate().all(|(i, &l)| l == i as u64 + 1), "{:?}", &got[..10]);
    }
}
