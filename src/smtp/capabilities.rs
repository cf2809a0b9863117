//! What the server said it can do, from its EHLO reply (RFC 5321 §4.1.1.1: the first line is its name,
//! each further line one `keyword [params]`). Unknown keywords are kept for display and otherwise ignored;
//! an empty last `250 ` line (Postfix's smtp-sink sends one) is tolerated.

use super::reply::Reply;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 1870: `Some(0)` means SIZE without a fixed limit; `Some(n)` the largest message accepted.
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 2034.
    pub enhanced_status_codes: bool,
    /// RFC 3030.
    pub chunking: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 4954: the mechanisms offered, upper-cased.
    pub auth: Vec<String>,
    /// Every keyword line as the server sent it, for display.
    pub lines: Vec<String>,
}

impl Capabilities {
    /// The capabilities in an EHLO reply; a HELO-only server has none.
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Capabilities::default();
        for line in reply.lines().iter().skip(1).map(|l| l.trim()).filter(|l| !l.is_empty()) {
            caps.add(line);
            caps.lines.push(line.to_owned());
        }
        caps
    }

    /// The largest message the server takes, when it declared one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }

    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    fn add(&mut self, line: &str) {
        let mut words = line.split_ascii_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        match keyword.as_str() {
            "PIPELINING" => self.pipelining = true,
            "SIZE" => self.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
            "8BITMIME" => self.eight_bit_mime = true,
            "SMTPUTF8" => self.smtputf8 = true,
            "ENHANCEDSTATUSCODES" => self.enhanced_status_codes = true,
            "CHUNKING" => self.chunking = true,
            "STARTTLS" => self.starttls = true,
            "AUTH" => self.add_auth(words),
            // Pre-RFC 4954 servers (old Exchange) write `AUTH=LOGIN PLAIN`.
            k if k.starts_with("AUTH=") => self.add_auth(line[5..].split_ascii_whitespace()),
            _ => {}
        }
    }

    fn add_auth<'a>(&mut self, mechanisms: impl Iterator<Item = &'a str>) {
        for m in mechanisms.map(str::to_ascii_uppercase) {
            if !self.auth.contains(&m) {
                self.auth.push(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply;

    fn caps(wire: &str) -> Capabilities {
        Capabilities::from_ehlo(&reply::parse(wire.as_bytes()).unwrap().unwrap().0)
    }

    #[test]
    fn postfix_submission_capabilities() {
        let c = caps(
            "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n\
             250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
             250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
        );
        assert!(c.pipelining && c.eight_bit_mime && c.smtputf8 && c.enhanced_status_codes && c.chunking);
        assert!(!c.starttls);
        assert_eq!(c.size_limit(), Some(10_240_000));
        assert_eq!(c.auth, ["PLAIN", "LOGIN"]);
        assert!(c.offers_auth("login"));
        assert_eq!(c.lines.len(), 11);
    }

    #[test]
    fn smtp_sink_style_empty_last_line_and_bare_size() {
        let c = caps("250-sink\r\n250-PIPELINING\r\n250-SIZE\r\n250-starttls\r\n250 \r\n");
        assert!(c.pipelining && c.starttls);
        assert_eq!((c.size, c.size_limit()), (Some(0), None));
        assert_eq!(c.lines, ["PIPELINING", "SIZE", "starttls"]);
    }

    #[test]
    fn a_server_without_extensions_offers_nothing() {
        assert_eq!(caps("250 mail.example.test\r\n"), Capabilities::default());
    }
}
