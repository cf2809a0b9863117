//! The message body on the wire: CRLF canonicalisation and dot-stuffing as one explicit byte state machine.
//!
//! RFC 5321 §4.1.1.4 ends the data with `CRLF . CRLF`, and §4.5.2 doubles a dot at the start of a line.
//! Servers disagree on what a bare CR or bare LF means, and that disagreement is SMTP smuggling: `\n.\n`
//! may end the message for one server and not for another. So a bare CR or LF never leaves this machine
//! as such: each becomes CRLF *before* dot-stuffing looks at the next line. The state survives between
//! calls to [`DotStuffer::push`], so a body may be fed in any chunks (a CR at the end of one chunk and its
//! LF at the start of the next is still one line end). [`DotStuffer::finish`] ends the body with exactly one
//! CRLF and the final dot; nothing before it can ever read as an end of data.
//!
//! The machine writes into any [`Sink`]: a `Vec<u8>` (the connection's reused write buffer, so a message
//! costs no allocation of its own) or a [`Count`], which measures the wire size for `SIZE=` (RFC 1870)
//! before the body is due, as a pipelined `MAIL FROM` must carry it one round trip ahead of the data.

/// Where the wire bytes go.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A sink that only counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count(pub usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Where the machine is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinePosition {
    /// At the start of a line (also the start of the body): a dot here gets doubled.
    LineStart,
    /// Inside a line.
    MidLine,
    /// A CR was seen and not yet written: the next byte decides whether it was CRLF or a bare CR.
    AfterCr,
}

#[derive(Debug, Clone)]
pub struct DotStuffer {
    state: LinePosition,
    /// False for BDAT (RFC 3030): the size frames the data, so there is no dot to stuff and no final dot.
    stuff: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    pub fn new() -> Self {
        DotStuffer { state: LinePosition::LineStart, stuff: true }
    }

    /// Line ends only: the form of a BDAT chunk, whose size says where it ends (RFC 3030 §2).
    pub fn line_ends_only() -> Self {
        DotStuffer { state: LinePosition::LineStart, stuff: false }
    }

    /// Appends the wire form of `input` to `out`.
    ///
    /// A line that starts with no dot and ends in CRLF (nearly every line a message builder writes) goes
    /// out in one copy, found with one SIMD search; only line starts, bare CRs and bare LFs take the
    /// byte-at-a-time path.
    pub fn push(&mut self, input: &[u8], out: &mut impl Sink) {
        let mut rest = input;
        while let Some(&first) = rest.first() {
            match self.state {
                LinePosition::MidLine => {}
                LinePosition::LineStart if !matches!(first, b'.' | b'\r' | b'\n') => {
                    self.state = LinePosition::MidLine;
                }
                _ => {
                    self.byte(first, out);
                    rest = &rest[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\r', b'\n', rest) {
                None => {
                    out.put(rest);
                    return;
                }
                Some(end) if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') => {
                    out.put(&rest[..end + 2]);
                    rest = &rest[end + 2..];
                    self.state = LinePosition::LineStart;
                }
                Some(end) => {
                    out.put(&rest[..end]);
                    self.byte(rest[end], out);
                    rest = &rest[end + 1..];
                }
            }
        }
    }

    /// Ends the body: the last line gets its CRLF if it lacks one, then `.` CRLF (not for a BDAT chunk).
    pub fn finish(self, out: &mut impl Sink) {
        if self.state != LinePosition::LineStart {
            out.put(b"\r\n");
        }
        if self.stuff {
            out.put(b".\r\n");
        }
    }

    /// One byte outside the fast path (or a CR/LF inside a line).
    fn byte(&mut self, byte: u8, out: &mut impl Sink) {
        if self.state == LinePosition::AfterCr {
            out.put(b"\r\n");
            self.state = LinePosition::LineStart;
            if byte == b'\n' {
                return;
            }
        }
        self.state = match (byte, self.state) {
            (b'\r', _) => LinePosition::AfterCr,
            (b'\n', _) => {
                out.put(b"\r\n");
                LinePosition::LineStart
            }
            (b'.', LinePosition::LineStart) if self.stuff => {
                out.put(b"..");
                LinePosition::MidLine
            }
            (other, _) => {
                out.put(&[other]);
                LinePosition::MidLine
            }
        };
    }
}

/// The whole wire form of a body held in memory, final dot included.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    encode_into(body, &mut out);
    out
}

/// Appends the wire form of `body`, final dot included, to `out` (a reused buffer).
pub fn encode_into(body: &[u8], out: &mut impl Sink) {
    if is_wire_ready(body, true) {
        put_with_last_line_end(body, out);
        out.put(b".\r\n");
        return;
    }
    let mut stuffer = DotStuffer::new();
    stuffer.push(body, out);
    stuffer.finish(out);
}

/// True when the machine would change nothing in `body` but add a last CRLF: every CR is followed by LF,
/// every LF follows a CR, and (`stuff`) no line starts with a dot. A message builder writes nearly every
/// message so, and it is then copied whole instead of line by line. The test is one branch-free pass over
/// neighbouring bytes, which the compiler vectorises: far cheaper than stopping at every line end.
fn is_wire_ready(body: &[u8], stuff: bool) -> bool {
    let (Some(&first), Some(&last)) = (body.first(), body.last()) else { return true };
    if first == b'\n' || last == b'\r' || (stuff && first == b'.') {
        return false;
    }
    let bad = body
        .iter()
        .zip(&body[1..])
        .fold(false, |bad, (&a, &b)| bad | ((a == b'\r') != (b == b'\n')) | (stuff & (a == b'\n') & (b == b'.')));
    !bad
}

/// `body` (wire-ready), with the CRLF the machine gives a last line that lacks one.
fn put_with_last_line_end(body: &[u8], out: &mut impl Sink) {
    out.put(body);
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.put(b"\r\n");
    }
}

/// The length of [`encode`]'s output, without building it.
pub fn wire_len(body: &[u8]) -> usize {
    let mut count = Count(0);
    encode_into(body, &mut count);
    count.0
}

/// Appends `body` as one BDAT chunk to `out`: canonical CRLF line ends (a bare CR or LF never leaves this
/// machine, as with DATA), ending with CRLF, no dot-stuffing and no final dot.
pub fn chunk_into(body: &[u8], out: &mut impl Sink) {
    if is_wire_ready(body, false) {
        put_with_last_line_end(body, out);
        return;
    }
    let mut canonical = DotStuffer::line_ends_only();
    canonical.push(body, out);
    canonical.finish(out);
}

/// The length of [`chunk_into`]'s output: the size a `BDAT` command announces.
pub fn chunk_len(body: &[u8]) -> usize {
    let mut count = Count(0);
    chunk_into(body, &mut count);
    count.0
}

/// True when the body has a byte above 127 and so needs `BODY=8BITMIME` (RFC 6152).
pub fn is_eight_bit(body: &[u8]) -> bool {
    !body.is_ascii()
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
