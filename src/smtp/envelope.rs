//! The envelope (RFC 5321 §2.3.1): who the message is from and to, validated before any byte is written.
//!
//! An address that could break out of `MAIL FROM:<…>` or `RCPT TO:<…>` (CR, LF, NUL, `<`, `>`, spaces and
//! other controls) is refused here, when the envelope is built, so a bad CSV row fails as that row's input
//! error and never reaches a session. Whether an address needs SMTPUTF8 (RFC 6531) is decided here too.

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets, the angle brackets included.
pub const MAX_ADDRESS: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("address {address:?} contains {what}, which cannot appear in an SMTP envelope")]
    Forbidden { address: String, what: &'static str },
    #[error("address {address:?} is {len} bytes long; the limit is {MAX_ADDRESS}")]
    TooLong { address: String, len: usize },
    #[error("a recipient address is empty")]
    EmptyRecipient,
    #[error("the envelope has no recipient")]
    NoRecipient,
}

/// A sender and one or more recipients, each checked safe for the wire.
///
/// The first `decisive` recipients must all be accepted for the message to go out (all or nothing); the
/// ones after them are *copies* (Cc/Bcc of a mail merge row), whose rejection is reported and does not stop
/// the transaction: the main recipient's message is not held back, nor ever sent twice, for a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    from: String,
    to: Vec<String>,
    decisive: usize,
    smtputf8: bool,
}

impl Envelope {
    /// `from` may be empty (the null reverse-path `<>`, RFC 5321 §4.5.5); recipients may not.
    pub fn new<I, S>(from: impl Into<String>, to: I) -> Result<Self, EnvelopeError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let from = from.into();
        check_address(&from)?;
        let to: Vec<String> = to.into_iter().map(Into::into).collect();
        if to.is_empty() {
            return Err(EnvelopeError::NoRecipient);
        }
        for rcpt in &to {
            if rcpt.is_empty() {
                return Err(EnvelopeError::EmptyRecipient);
            }
            check_address(rcpt)?;
        }
        let smtputf8 = !from.is_ascii() || to.iter().any(|a| !a.is_ascii());
        let decisive = to.len();
        Ok(Envelope { from, to, decisive, smtputf8 })
    }

    /// One main recipient, who alone decides whether the message goes out, and copies after it (`RCPT TO`
    /// in this order), which the server may reject one by one without stopping the transaction.
    pub fn with_copies<I, S>(from: impl Into<String>, main: impl Into<String>, copies: I) -> Result<Self, EnvelopeError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let to = std::iter::once(main.into()).chain(copies.into_iter().map(Into::into));
        Ok(Envelope { decisive: 1, ..Envelope::new(from, to)? })
    }

    /// Asks for SMTPUTF8 even with ASCII addresses, e.g. for a message with UTF-8 headers (RFC 6532).
    pub fn with_smtputf8(mut self) -> Self {
        self.smtputf8 = true;
        self
    }

    pub fn from(&self) -> &str {
        &self.from
    }

    pub fn to(&self) -> &[String] {
        &self.to
    }

    /// True for a recipient (by its index in [`to`](Self::to)) whose rejection does not stop the transaction.
    pub fn is_copy(&self, index: usize) -> bool {
        index >= self.decisive
    }

    /// True when an address is not ASCII or the caller asked for it: `MAIL FROM` then carries `SMTPUTF8`.
    pub fn smtputf8(&self) -> bool {
        self.smtputf8
    }
}

fn check_address(address: &str) -> Result<(), EnvelopeError> {
    let forbidden = |what| Err(EnvelopeError::Forbidden { address: address.to_owned(), what });
    for c in address.chars() {
        match c {
            '\r' => return forbidden("a carriage return"),
            '\n' => return forbidden("a line feed"),
            '\0' => return forbidden("a NUL byte"),
            '<' | '>' => return forbidden("an angle bracket"),
            ' ' | '\t' => return forbidden("white space"),
            c if c.is_control() => return forbidden("a control character"),
            _ => {}
        }
    }
    if address.len() > MAX_ADDRESS {
        return Err(EnvelopeError::TooLong { address: address.to_owned(), len: address.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_pass_and_utf8_ones_need_smtputf8() {
        let env = Envelope::new("news@example.test", ["ann@example.test", "bob@example.test"]).unwrap();
        assert_eq!(env.to().len(), 2);
        assert!(!env.smtputf8());
        assert!(Envelope::new("news@example.test", ["jöran@exämple.test"]).unwrap().smtputf8());
        assert!(Envelope::new("", ["a@b"]).unwrap().with_smtputf8().smtputf8());
    }

    #[test]
    fn only_the_main_recipient_decides_when_there_are_copies() {
        let all = Envelope::new("news@example.test", ["ann@example.test", "bob@example.test"]).unwrap();
        assert!(!all.is_copy(0) && !all.is_copy(1));
        let copies = Envelope::with_copies("news@example.test", "ann@example.test", ["cc@example.test"]).unwrap();
        assert_eq!(copies.to(), ["ann@example.test", "cc@example.test"]);
        assert!(!copies.is_copy(0) && copies.is_copy(1));
        let bad = Envelope::with_copies("news@example.test", "ann@example.test", ["c c@example.test"]);
        assert!(matches!(bad, Err(EnvelopeError::Forbidden { .. })));
    }

    #[test]
    fn addresses_that_could_break_a_command_are_refused() {
        for bad in ["a\r@b", "a\n@b", "a\0@b", "a>@b", "<a@b", "a b@c", "a\t@b", "a\u{7f}@b"] {
            assert!(matches!(Envelope::new(bad, ["x@y"]), Err(EnvelopeError::Forbidden { .. })), "{bad:?}");
            assert!(matches!(Envelope::new("x@y", [bad]), Err(EnvelopeError::Forbidden { .. })), "{bad:?}");
        }
    }

    #[test]
    fn recipients_must_exist_and_be_short_enough() {
        assert_eq!(Envelope::new("a@b", Vec::<String>::new()), Err(EnvelopeError::NoRecipient));
        assert_eq!(Envelope::new("a@b", [""]), Err(EnvelopeError::EmptyRecipient));
        let long = format!("{}@example.test", "x".repeat(250));
        assert!(matches!(Envelope::new("a@b", [long]), Err(EnvelopeError::TooLong { .. })));
    }
}
