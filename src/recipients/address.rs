//! Strict parsing of one mailbox per CSV cell (or the job's `from`): `a@b` or `Name <a@b>`, nothing else.
//!
//! Why strict: a mail merge must never guess. `Smith, John <j@x>` could be two addresses, `John j@x` a name
//! without brackets; both are refused with a reason instead of being "fixed". Domains go through IDNA
//! (UTS #46, strict) to A-labels for the envelope (RFC 5890); a non-ASCII local part needs SMTPUTF8 (RFC 6531).

/// A parsed mailbox. Display names are kept as Unicode; the header writer encodes them (RFC 2047).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    /// The local part exactly as written (case preserved: RFC 5321 §2.4).
    pub local: String,
    /// The domain as A-labels, lower case (`xn--mller-kva.de`).
    pub domain_ascii: String,
    /// The domain as U-labels (`müller.de`), for headers of messages that need SMTPUTF8 anyway.
    pub domain_unicode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("control characters (CR, LF, …) are not allowed")]
    Control,
    #[error("only one address per cell (found `,` or `;`)")]
    Several,
    #[error("a display name must be followed by <address>")]
    NameWithoutBrackets,
    #[error("`<` and `>` must enclose the whole address, once, at the end")]
    Brackets,
    #[error("the display name contains `{0}`: put it in double quotes")]
    UnquotedSpecial(char),
    #[error("the quoted display name is not closed properly")]
    BadQuotedName,
    #[error("the address needs exactly one `@`")]
    At,
    #[error("quoted local parts are not supported")]
    QuotedLocal,
    #[error("the local part (before `@`) is empty, too long, or has a forbidden character or dot")]
    Local,
    #[error("the domain is not a valid host name")]
    Domain,
    #[error("the domain needs a dot (e.g. example.com)")]
    DomainWithoutDot,
    #[error("domain literals ([1.2.3.4]) are not supported")]
    DomainLiteral,
    /// RFC 1123 §2.1 and RFC 3696 §2: a top-level label is never all digits, so `a@1.2.3.4` is an IP address
    /// written without brackets. Mail is addressed to host names; guessing would send it somewhere else.
    #[error("the domain is an IP address (its last label is all digits): use the host name")]
    NumericDomain,
    #[error("the address is longer than 254 octets")]
    TooLong,
}

impl Mailbox {
    /// Parses one mailbox; surrounding white space is ignored.
    pub fn parse(cell: &str) -> Result<Mailbox, AddressError> {
        let text = cell.trim();
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.chars().any(char::is_control) {
            return Err(AddressError::Control);
        }
        let (name, addr) = split_name(text)?;
        let mut mailbox = parse_addr_spec(addr)?;
        mailbox.name = name;
        Ok(mailbox)
    }

    /// Whether the envelope and headers need SMTPUTF8: only a non-ASCII local part does (domains become A-labels).
    pub fn needs_smtputf8(&self) -> bool {
        !self.local.is_ascii()
    }

    /// The address for `MAIL FROM`/`RCPT TO`: the local part as written, the domain as A-labels.
    pub fn envelope(&self) -> String {
        joined(&self.local, &self.domain_ascii)
    }

    /// The address for `From`/`To`: pure ASCII when possible; U-labels only when SMTPUTF8 is needed anyway.
    pub fn header_address(&self) -> String {
        let domain = if self.needs_smtputf8() { &self.domain_unicode } else { &self.domain_ascii };
        joined(&self.local, domain)
    }

    /// What two cells must share to be "the same recipient": the envelope address, case-folded.
    /// Lower-cased char by char (as `dedup`'s fingerprint does; an ASCII local part in place, as it is built
    /// for every row of every pass over the CSV); the domain is already lower case.
    pub fn dedup_key(&self) -> String {
        let mut key = String::with_capacity(self.local.len() + 1 + self.domain_ascii.len());
        if self.local.is_ascii() {
            key.push_str(&self.local);
            key.make_ascii_lowercase();
        } else {
            key.extend(self.local.chars().flat_map(char::to_lowercase));
        }
        key.push('@');
        key.push_str(&self.domain_ascii);
        key
    }
}

/// Splits `Name <addr>` / `<addr>` / `addr` into the optional display name and the addr-spec.
fn split_name(text: &str) -> Result<(Option<String>, &str), AddressError> {
    let Some(open) = text.find('<') else {
        if text.contains('>') {
            return Err(AddressError::Brackets);
        }
        return bare(text).map(|addr| (None, addr));
    };
    let close = text.len() - 1;
    if !text.ends_with('>') || text[open + 1..close].contains(['<', '>']) {
        return Err(AddressError::Brackets);
    }
    let name = display_name(text[..open].trim())?;
    Ok((name, &text[open + 1..close]))
}

fn bare(text: &str) -> Result<&str, AddressError> {
    if text.starts_with('"') {
        Err(AddressError::QuotedLocal)
    } else if text.contains([',', ';']) {
        Err(AddressError::Several)
    } else if text.contains(char::is_whitespace) {
        Err(AddressError::NameWithoutBrackets)
    } else {
        Ok(text)
    }
}

/// A display name: empty, a quoted string (`\` escapes), or a phrase without RFC 5322 specials.
fn display_name(raw: &str) -> Result<Option<String>, AddressError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if let Some(inner) = raw.strip_prefix('"') {
        return unquote(inner).map(|n| Some(n).filter(|n| !n.trim().is_empty()));
    }
    // A period is tolerated unquoted (RFC 5322 obs-phrase): "John Q. Public" is common and unambiguous.
    match raw.chars().find(|c| matches!(c, ',' | ';' | ':' | '@' | '"' | '(' | ')' | '[' | ']' | '\\')) {
        Some(special) => Err(AddressError::UnquotedSpecial(special)),
        None => Ok(Some(raw.to_owned())),
    }
}

fn unquote(inner: &str) -> Result<String, AddressError> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or(AddressError::BadQuotedName)?),
            '"' if chars.as_str().is_empty() => return Ok(out),
            '"' => return Err(AddressError::BadQuotedName),
            c => out.push(c),
        }
    }
    Err(AddressError::BadQuotedName)
}

fn parse_addr_spec(addr: &str) -> Result<Mailbox, AddressError> {
    if addr.starts_with('"') {
        return Err(AddressError::QuotedLocal);
    }
    if addr.contains(char::is_whitespace) {
        return Err(AddressError::Brackets);
    }
    let mut parts = addr.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AddressError::At);
    };
    check_local(local)?;
    let (domain_ascii, domain_unicode) = check_domain(domain)?;
    if local.len() + 1 + domain_ascii.len() > 254 {
        return Err(AddressError::TooLong);
    }
    Ok(Mailbox { name: None, local: local.to_owned(), domain_ascii, domain_unicode })
}

/// RFC 5321 dot-string, with RFC 6531's UTF-8 extension; at most 64 octets (RFC 5321 §4.5.3.1.1).
fn check_local(local: &str) -> Result<(), AddressError> {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let valid = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext));
    if valid { Ok(()) } else { Err(AddressError::Local) }
}

fn check_domain(domain: &str) -> Result<(String, String), AddressError> {
    if domain.starts_with('[') {
        return Err(AddressError::DomainLiteral);
    }
    if domain.is_empty() || domain.ends_with('.') {
        return Err(AddressError::Domain);
    }
    let ascii = match plain_ascii_domain(domain) {
        Some(ascii) => ascii,
        None => idna::domain_to_ascii_strict(domain).map_err(|_| AddressError::Domain)?,
    };
    if !ascii.contains('.') {
        return Err(AddressError::DomainWithoutDot);
    }
    if ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(AddressError::NumericDomain);
    }
    let unicode = if domain.is_ascii() { ascii.clone() } else { idna::domain_to_unicode(&ascii).0 };
    Ok((ascii, unicode))
}

/// The common case without IDNA: letters, digits and inner hyphens (RFC 1123 labels), not an A-label.
/// For such a name UTS #46 only lower-cases, so the result is the same as `domain_to_ascii_strict`'s, faster.
fn plain_ascii_domain(domain: &str) -> Option<String> {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        (1..=63).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
            && b.get(2..4) != Some(b"--")
    };
    (domain.len() <= 253 && domain.split('.').all(label_ok)).then(|| domain.to_ascii_lowercase())
}

/// `local@domain`, allocated once at its size (built for every message: `format!` costs several times more).
fn joined(local: &str, domain: &str) -> String {
    let mut address = String::with_capacity(local.len() + 1 + domain.len());
    address.push_str(local);
    address.push('@');
    address.push_str(domain);
    address
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
