//! Table-driven vectors for the strict address parser.

use super::{AddressError as E, Mailbox};

#[test]
fn accepted_forms() {
    let table: &[(&str, Option<&str>, &str, &str)] = &[
        ("a@example.com", None, "a", "example.com"),
        ("  a.b+tag@Example.COM ", None, "a.b+tag", "example.com"),
        ("<a@example.com>", None, "a", "example.com"),
        ("Ann Lee <ann@example.com>", Some("Ann Lee"), "ann", "example.com"),
        ("\"Lee, Ann\" <ann@example.com>", Some("Lee, Ann"), "ann", "example.com"),
        ("\"say \\\"hi\\\"\" <x@example.com>", Some("say \"hi\""), "x", "example.com"),
        ("John Q. Public <jqp@example.com>", Some("John Q. Public"), "jqp", "example.com"),
        ("Zoë Ångström <zoe@müller.de>", Some("Zoë Ångström"), "zoe", "xn--mller-kva.de"),
        ("jürgen@example.com", None, "jürgen", "example.com"),
        ("a@1.2.3.example", None, "a", "1.2.3.example"),
        ("a@123.example.com", None, "a", "123.example.com"),
    ];
    for &(cell, name, local, domain) in table {
        let m = Mailbox::parse(cell).unwrap_or_else(|e| panic!("{cell:?}: {e}"));
        assert_eq!((m.name.as_deref(), m.local.as_str(), m.domain_ascii.as_str()), (name, local, domain), "{cell:?}");
    }
}

#[test]
fn refused_forms() {
    let table: &[(&str, E)] = &[
        ("", E::Empty),
        ("   ", E::Empty),
        ("a@example.com, b@example.com", E::Several),
        ("a@example.com;b@example.com", E::Several),
        ("John a@example.com", E::NameWithoutBrackets),
        ("Smith, John <j@example.com>", E::UnquotedSpecial(',')),
        ("Ann <a@example.com> x", E::Brackets),
        ("Ann <<a@example.com>>", E::Brackets),
        ("a@example.com>", E::Brackets),
        ("\"Ann <a@example.com>", E::BadQuotedName),
        ("a@b@example.com", E::At),
        ("example.com", E::At),
        ("\"a b\"@example.com", E::QuotedLocal),
        (".a@example.com", E::Local),
        ("a..b@example.com", E::Local),
        ("a(b)@example.com", E::Local),
        ("a@", E::Domain),
        ("a@-bad-.com", E::Domain),
        ("a@example.com.", E::Domain),
        ("a@exa_mple.com", E::Domain),
        ("a@localhost", E::DomainWithoutDot),
        ("a@[192.0.2.1]", E::DomainLiteral),
        ("a@1.2.3.4", E::NumericDomain),
        ("Ann <a@192.0.2.1>", E::NumericDomain),
        ("a@example.123", E::NumericDomain),
        ("x\r\nBcc: victim@example.com", E::Control),
        ("Ann\n <a@example.com>", E::Control),
    ];
    for (cell, expected) in table {
        assert_eq!(Mailbox::parse(cell).as_ref(), Err(expected), "{cell:?}");
    }
}

#[test]
fn length_limits() {
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert_eq!(Mailbox::parse(&long_local), Err(E::Local));
    let label = "b".repeat(60);
    let long = format!("{}@{label}.{label}.{label}.{label}.com", "a".repeat(40));
    assert_eq!(Mailbox::parse(&long), Err(E::TooLong));
}

#[test]
fn idn_goes_to_the_envelope_as_a_labels() {
    let m = Mailbox::parse("Jörg <jorg@bücher.example>").unwrap();
    assert_eq!(m.envelope(), "jorg@xn--bcher-kva.example");
    assert_eq!(m.header_address(), "jorg@xn--bcher-kva.example");
    assert!(!m.needs_smtputf8());
}

#[test]
fn non_ascii_local_part_needs_smtputf8_and_keeps_u_labels_in_headers() {
    let m = Mailbox::parse("δοκιμή@παράδειγμα.δοκιμή").unwrap();
    assert!(m.needs_smtputf8());
    assert!(m.envelope().ends_with("@xn--hxajbheg2az3al.xn--jxalpdlp"), "{}", m.envelope());
    assert_eq!(m.header_address(), "δοκιμή@παράδειγμα.δοκιμή");
}

#[test]
fn dedup_key_folds_case() {
    let a = Mailbox::parse("Ann@Example.com").unwrap();
    let b = Mailbox::parse("Other Name <ann@example.COM>").unwrap();
    assert_eq!(a.dedup_key(), b.dedup_key());
    assert_eq!(a.dedup_key(), "ann@example.com");
    let unicode = Mailbox::parse("ÄNN.Ölz@Example.com").unwrap();
    assert_eq!(unicode.dedup_key(), "änn.ölz@example.com");
}

#[test]
fn the_ascii_fast_path_agrees_with_idna() {
    for domain in ["Example.COM", "a-b.example", "xn--mller-kva.de", "ab--cd.example", "1.2.3.example", "x.y"] {
        let fast = super::plain_ascii_domain(domain);
        let idna = idna::domain_to_ascii_strict(domain).ok();
        assert!(fast.is_none() || fast == idna, "{domain}: {fast:?} vs {idna:?}");
    }
    assert_eq!(super::plain_ascii_domain("Example.COM").as_deref(), Some("example.com"));
    assert_eq!(super::plain_ascii_domain("xn--mller-kva.de"), None, "A-labels go through IDNA validation");
}
