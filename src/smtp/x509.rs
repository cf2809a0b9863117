//! Just enough DER to print a certificate's subject for `probe` (RFC 5280 §4.1.2.6).
//!
//! Verification is rustls/webpki's job; this only reads an already verified certificate, so any surprise
//! yields `None` rather than an error. A whole X.509 crate would be a large dependency for one line of output.

/// DER tags used below (X.690 §8).
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;

/// `CN=mail.example.com, O=Example` in the certificate's own order.
pub fn subject(cert_der: &[u8]) -> Option<String> {
    let (cert, _) = expect(cert_der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, then the subject.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (name, _) = expect(rest, SEQUENCE)?;
    let parts = attributes(name)?;
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The `TYPE=value` pairs of a Name: a SEQUENCE of SETs of SEQUENCE { OID, string }.
fn attributes(mut name: &[u8]) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    while !name.is_empty() {
        let (mut set, rest) = expect(name, SET)?;
        name = rest;
        while !set.is_empty() {
            let (pair, rest) = expect(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = expect(pair, OID)?;
            let (_, text, _) = tlv(value)?;
            parts.push(format!("{}={}", label(oid), String::from_utf8_lossy(text)));
        }
    }
    Some(parts)
}

/// RFC 4514 §3 short names for the usual attribute types (2.5.4.x); others as dotted OIDs.
fn label(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".to_owned(),
        [0x55, 0x04, 0x06] => "C".to_owned(),
        [0x55, 0x04, 0x07] => "L".to_owned(),
        [0x55, 0x04, 0x08] => "ST".to_owned(),
        [0x55, 0x04, 0x0a] => "O".to_owned(),
        [0x55, 0x04, 0x0b] => "OU".to_owned(),
        other => dotted(other),
    }
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    if let Some(first) = arcs.first().copied() {
        let (a, b) = if first < 80 { (first / 40, first % 40) } else { (2, first - 80) };
        arcs.splice(0..1, [a, b]);
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// One element with the given tag: (its content, what follows it).
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = tlv(input)?;
    (found == tag).then_some((content, rest))
}

/// One tag-length-value element (definite lengths only, as DER requires).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    #[test]
    fn reads_the_subject_of_a_generated_certificate() {
        let mut params = CertificateParams::new(vec!["mail.example.test".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "mail.example.test");
        params.distinguished_name.push(DnType::OrganizationName, "Example Ltd");
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(subject(cert.der()).as_deref(), Some("CN=mail.example.test, O=Example Ltd"));
    }

    #[test]
    fn garbage_gives_none_and_oids_print_dotted() {
        assert_eq!(subject(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject(b""), None);
        assert_eq!(dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]), "1.2.840.113549.1.9.1");
    }
}
