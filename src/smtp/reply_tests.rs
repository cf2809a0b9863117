use super::*;

/// Valid replies as servers send them, with what they must parse to.
const VALID: &[(&str, u16, &[&str])] = &[
    ("220 mail.example.test ESMTP Postfix\r\n", 220, &["mail.example.test ESMTP Postfix"]),
    ("250 2.0.0 Ok\r\n", 250, &["2.0.0 Ok"]),
    ("250\r\n", 250, &[""]),
    ("354 End data with <CR><LF>.<CR><LF>\r\n", 354, &["End data with <CR><LF>.<CR><LF>"]),
    (
        "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
        250,
        &["mail.example.test", "PIPELINING", "SIZE 10240000", "8BITMIME"],
    ),
    // smtp-sink ends its EHLO reply with an empty `250 ` line.
    ("250-host\r\n250-PIPELINING\r\n250 \r\n", 250, &["host", "PIPELINING", ""]),
    ("550-5.1.1 first\r\n550 5.1.1 second\r\n", 550, &["5.1.1 first", "5.1.1 second"]),
    ("421 4.7.0 Closing connection\n", 421, &["4.7.0 Closing connection"]),
    // Line ends mixed within one reply; a CR inside a line is text.
    ("250-first\n250-mid\rdle\r\n250 last\r\n", 250, &["first", "mid\rdle", "last"]),
];

#[test]
fn valid_replies_parse_to_every_line() {
    for (wire, code, lines) in VALID {
        let (reply, used) = parse(wire.as_bytes()).unwrap().unwrap();
        assert_eq!(used, wire.len(), "{wire:?}");
        assert_eq!(reply.code(), *code, "{wire:?}");
        assert_eq!(reply.lines(), **lines, "{wire:?}");
    }
}

#[test]
fn every_strict_prefix_of_a_valid_reply_needs_more_bytes() {
    for (wire, _, _) in VALID {
        for end in 0..wire.len() {
            assert_eq!(parse(&wire.as_bytes()[..end]), Ok(None), "prefix {:?}", &wire[..end]);
        }
    }
}

#[test]
fn only_the_first_reply_is_consumed() {
    let wire = b"250 first\r\n250 second\r\n";
    let (reply, used) = parse(wire).unwrap().unwrap();
    assert_eq!((reply.lines().next(), used), (Some("first"), 11));
    let (second, _) = parse(&wire[used..]).unwrap().unwrap();
    assert_eq!(second.lines(), ["second"]);
}

#[test]
fn malformed_lines_are_protocol_errors() {
    for wire in ["25\r\n", "2x0 ok\r\n", "650 no\r\n", "160 no\r\n", "250_ok\r\n", "hello\r\n", "\r\n"] {
        assert!(matches!(parse(wire.as_bytes()), Err(ReplyError::Malformed { .. })), "{wire:?}");
    }
}

#[test]
fn mixed_codes_are_refused() {
    assert_eq!(parse(b"250-a\r\n550 b\r\n"), Err(ReplyError::MixedCodes { first: 250, other: 550 }));
}

#[test]
fn an_endless_line_is_refused_without_its_end() {
    let long = vec![b'2'; MAX_LINE];
    assert_eq!(parse(&long[..MAX_LINE - 1]), Ok(None));
    assert_eq!(parse(&long), Err(ReplyError::LineTooLong));
}

#[test]
fn an_endless_multi_line_reply_is_refused() {
    let wire = "250-continued\r\n".repeat(MAX_REPLY / 15 + 1);
    assert_eq!(parse(wire.as_bytes()), Err(ReplyError::ReplyTooLong));
}

#[test]
fn enhanced_codes_are_read_when_the_class_matches() {
    type Triple = Option<(u8, u16, u16)>;
    let cases: &[(&str, Triple)] = &[
        ("534 5.7.9 Application-specific password required\r\n", Some((5, 7, 9))),
        ("250 2.1.5 Ok\r\n", Some((2, 1, 5))),
        ("451 4.3.0 Try later\r\n", Some((4, 3, 0))),
        ("550 4.1.1 class disagrees with code\r\n", None),
        ("250 mail.example.test\r\n", None),
        ("250 1.2.3.4 not a code\r\n", None),
        ("550 5.1234.1 too long\r\n", None),
    ];
    for (wire, want) in cases {
        let (reply, _) = parse(wire.as_bytes()).unwrap().unwrap();
        let got = reply.enhanced().map(|e| (e.class, e.subject, e.detail));
        assert_eq!(got, *want, "{wire:?}");
    }
}

#[test]
fn display_is_one_line_and_wire_lines_round_trip() {
    let wire = "550-5.1.1 first\r\n550 5.1.1 second\r\n";
    let (reply, _) = parse(wire.as_bytes()).unwrap().unwrap();
    assert_eq!(reply.to_string(), "550 5.1.1 first 5.1.1 second");
    let again: String = reply.wire_lines().map(|l| l + "\r\n").collect();
    assert_eq!(again, wire);
    assert_eq!(reply.severity(), Severity::Permanent);
}
