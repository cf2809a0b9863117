use proptest::prelude::*;

use super::*;
use crate::exhaustive::sequences;

/// Feeds `chunks` one by one (so state must carry across boundaries) and returns the wire bytes.
fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stuffer = DotStuffer::new();
    for chunk in chunks {
        stuffer.push(chunk, &mut out);
    }
    stuffer.finish(&mut out);
    out
}

/// SMTP-smuggling inputs and ordinary edge cases, each with the exact bytes that must go out
/// (in the manner of mail-send's `transparency_procedure` table).
const VECTORS: &[(&[&[u8]], &[u8])] = &[
    (&[b""], b".\r\n"),
    (&[b"hello"], b"hello\r\n.\r\n"),
    (&[b"hello\r\n"], b"hello\r\n.\r\n"),
    (&[b"hello\r\n\r\n"], b"hello\r\n\r\n.\r\n"),
    (&[b"bare\nlf"], b"bare\r\nlf\r\n.\r\n"),
    (&[b"bare\rcr"], b"bare\r\ncr\r\n.\r\n"),
    (&[b"ends in lf\n"], b"ends in lf\r\n.\r\n"),
    (&[b"ends in cr\r"], b"ends in cr\r\n.\r\n"),
    // The smuggling shapes: an early end of data hidden behind bare line ends.
    (&[b"a\n.\nMAIL FROM:<x>"], b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"),
    (&[b"a\r.\rb"], b"a\r\n..\r\nb\r\n.\r\n"),
    (&[b"a\r\n.\nb"], b"a\r\n..\r\nb\r\n.\r\n"),
    (&[b"a\n.\r\nb"], b"a\r\n..\r\nb\r\n.\r\n"),
    (&[b"a\r\n.\r\nb"], b"a\r\n..\r\nb\r\n.\r\n"),
    (&[b"a\r\n.\r\n"], b"a\r\n..\r\n.\r\n"),
    (&[b"\r\n.\r\n"], b"\r\n..\r\n.\r\n"),
    (&[b"a\r\r\nb"], b"a\r\n\r\nb\r\n.\r\n"),
    (&[b"a\n\rb"], b"a\r\n\r\nb\r\n.\r\n"),
    // Leading dots.
    (&[b".leading"], b"..leading\r\n.\r\n"),
    (&[b"."], b"..\r\n.\r\n"),
    (&[b"x\r\n..two"], b"x\r\n...two\r\n.\r\n"),
    (&[b"mid.dle. dots."], b"mid.dle. dots.\r\n.\r\n"),
    // Dots and line ends split across buffer boundaries.
    (&[b"a\r", b"\n.b"], b"a\r\n..b\r\n.\r\n"),
    (&[b"a\r\n", b".", b"\r\n"], b"a\r\n..\r\n.\r\n"),
    (&[b"a\r", b".\r", b"\n"], b"a\r\n..\r\n.\r\n"),
    (&[b"a\n", b".", b"\n", b"b"], b"a\r\n..\r\nb\r\n.\r\n"),
    (&[b"a\r", b"", b"\r", b"\n"], b"a\r\n\r\n.\r\n"),
    (&[b"", b".", b""], b"..\r\n.\r\n"),
];

#[test]
fn smuggling_vectors_give_exact_wire_bytes() {
    for (chunks, want) in VECTORS {
        let got = stuff(chunks);
        assert_eq!(got, *want, "input {:?}: got {:?}", chunks, String::from_utf8_lossy(&got));
        assert_eq!(encode(&chunks.concat()), *want, "whole {chunks:?}");
    }
}

#[test]
fn encode_matches_the_streaming_form_and_eight_bit_is_detected() {
    assert_eq!(encode(b"a\n.b"), stuff(&[b"a\n", b".b"]));
    assert!(is_eight_bit("Grüße".as_bytes()));
    assert!(!is_eight_bit(b"plain ascii\r\n"));
}

/// CRLF canonicalisation alone: every CRLF, bare CR and bare LF becomes CRLF; a last line gets its CRLF.
fn canonical(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            other => out.push(other),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What a server does (RFC 5321 §4.5.2): read lines up to the lone dot, drop one leading dot per line.
/// Panics if the wire holds a bare CR or LF or ends anywhere but at its end.
fn unstuff(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut lines = wire.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").expect("every LF follows a CR");
        assert!(!line.contains(&b'\r'), "bare CR on the wire");
        if line == b"." {
            assert_eq!(lines.next(), Some(&b""[..]), "end of data before the end of the wire bytes");
            assert!(lines.next().is_none(), "bytes after the end of data");
            return out;
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    panic!("no end of data");
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a'), Just(0xc3u8), any::<u8>()];
    proptest::collection::vec(byte, 0..200)
}

/// Bodies shaped like built messages: lines joined by CRLF, most of them wire-ready, some with a bare CR
/// or LF, a leading dot or no last line end (the copy-whole path and the byte machine both taken).
fn built_bodies() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        8 => "[a-z .]{0,12}",
        1 => "[a.\r\n]{0,4}",
        1 => "\\.[a-z]{0,3}",
    ];
    (proptest::collection::vec(line, 0..12), any::<bool>()).prop_map(|(lines, end)| {
        let mut body = lines.join("\r\n").into_bytes();
        if end {
            body.extend_from_slice(b"\r\n");
        }
        body
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn a_whole_body_goes_out_as_the_byte_machine_writes_it(body in built_bodies()) {
        let wire = stuff(&[&body[..]]);
        prop_assert_eq!(&encode(&body), &wire);
        prop_assert_eq!(wire_len(&body), wire.len());
        prop_assert_eq!(unstuff(&wire), canonical(&body));
        let mut machine = Vec::new();
        let mut canonical_only = DotStuffer::line_ends_only();
        canonical_only.push(&body, &mut machine);
        canonical_only.finish(&mut machine);
        let mut chunk = Vec::new();
        chunk_into(&body, &mut chunk);
        prop_assert_eq!(&chunk, &machine);
        prop_assert_eq!(chunk_len(&body), machine.len());
    }
}

proptest! {
    #[test]
    fn unstuffing_the_wire_gives_back_the_canonical_input(body in body_bytes(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&body[start..p]);
            start = p;
        }
        chunks.push(&body[start..]);
        let wire = stuff(&chunks);
        prop_assert_eq!(&wire, &encode(&body));
        prop_assert_eq!(wire_len(&body), wire.len(), "the counted size is the size sent (SIZE=, RFC 1870)");
        let mut reused = b"MAIL FROM:<a@b>\r\n".to_vec();
        encode_into(&body, &mut reused);
        prop_assert_eq!(&reused[17..], &wire[..], "appending to a used buffer keeps what was there");
        prop_assert_eq!(unstuff(&wire), canonical(&body));
    }
}

#[test]
fn a_bdat_chunk_is_the_canonical_body_with_no_stuffing_and_no_final_dot() {
    let body = b"Subject: x\n\n.leading dot\r\n..two\rbare CR\nlast line without end";
    let mut chunk = Vec::new();
    chunk_into(body, &mut chunk);
    assert_eq!(chunk, b"Subject: x\r\n\r\n.leading dot\r\n..two\r\nbare CR\r\nlast line without end\r\n");
    assert_eq!(chunk_len(body), chunk.len());
    let mut empty = Vec::new();
    chunk_into(b"", &mut empty);
    assert_eq!((empty.len(), chunk_len(b"")), (0, 0), "an empty body is an empty chunk (BDAT 0 LAST)");
}

proptest! {
    #[test]
    fn a_bdat_chunk_is_exactly_the_canonical_body(body in body_bytes()) {
        let mut chunk = b"BDAT 9 LAST\r\n".to_vec();
        chunk_into(&body, &mut chunk);
        prop_assert_eq!(&chunk[13..], &canonical(&body)[..]);
        prop_assert_eq!(chunk_len(&body), chunk.len() - 13, "the announced size is the size sent");
        prop_assert!(!chunk[13..].windows(2).any(|w| w == b"\r\r" || (w[1] == b'\n' && w[0] != b'\r')));
    }
}

/// What the byte machine writes when it is fed `body` one byte at a time (its slowest, plainest path).
fn machine_byte_by_byte(body: &[u8], mut machine: DotStuffer) -> Vec<u8> {
    let mut out = Vec::new();
    for byte in body {
        machine.push(std::slice::from_ref(byte), &mut out);
    }
    machine.finish(&mut out);
    out
}

/// The copy-whole path (`is_wire_ready`) must never change a byte: every DATA and BDAT form, and every
/// size announced for them, equals the machine's for every short body over the bytes that matter to it
/// (CR, LF, dot, a letter) and, shorter, with NUL, NEL and bytes that are not UTF-8 as well.
#[test]
fn every_short_body_goes_out_exactly_as_the_byte_machine_writes_it() {
    let bodies = sequences(b"\r\n.a", 8).into_iter().chain(sequences(b"\r\n.a\0\x85\xff", 5));
    let mut fast_paths = 0;
    for body in bodies {
        let data = machine_byte_by_byte(&body, DotStuffer::new());
        let bdat = machine_byte_by_byte(&body, DotStuffer::line_ends_only());
        let mut out = b"kept".to_vec();
        encode_into(&body, &mut out);
        assert_eq!(out, [&b"kept"[..], &data].concat(), "DATA form of {body:?}");
        assert_eq!(encode(&body), data, "encode({body:?})");
        assert_eq!(wire_len(&body), data.len(), "wire_len({body:?})");
        let mut out = b"kept".to_vec();
        chunk_into(&body, &mut out);
        assert_eq!(out, [&b"kept"[..], &bdat].concat(), "BDAT chunk of {body:?}");
        assert_eq!(chunk_len(&body), bdat.len(), "chunk_len({body:?})");
        assert_eq!(unstuff(&data), canonical(&body), "what a server reads of {body:?}");
        assert_eq!(bdat, canonical(&body), "BDAT chunk of {body:?} is the canonical body");
        fast_paths += usize::from(is_wire_ready(&body, true)) + usize::from(is_wire_ready(&body, false));
    }
    assert!(fast_paths > 1000, "the copy-whole path was taken only {fast_paths} times");
}

/// The copy-whole path is taken exactly when the machine would change nothing but add a last CRLF.
#[test]
fn a_body_is_wire_ready_exactly_when_the_machine_only_adds_a_last_line_end() {
    for body in sequences(b"\r\n.a", 7) {
        for (stuff, machine) in [(true, DotStuffer::new()), (false, DotStuffer::line_ends_only())] {
            let mut wire = machine_byte_by_byte(&body, machine);
            if stuff {
                wire.truncate(wire.len() - 3);
            }
            let unchanged = wire == body || (!body.is_empty() && wire == [&body[..], b"\r\n"].concat());
            assert_eq!(is_wire_ready(&body, stuff), unchanged, "{body:?}, stuffing {stuff}");
        }
    }
}
