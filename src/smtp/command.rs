//! Commands as values, and the one place that turns them into wire bytes (RFC 5321 §4.1.1).
//!
//! User data never reaches the wire through `format!`: every argument is checked here for CR, LF and NUL
//! (which would end the command early and let the rest be read as a second command) *before* a single byte
//! is appended to the output buffer. Addresses are also validated when an [`Envelope`](super::Envelope) is
//! built; this check is the last line of defence, not the only one.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("{what} contains a forbidden byte 0x{byte:02x} (CR, LF and NUL would end or corrupt the command)")]
    ForbiddenByte { what: &'static str, byte: u8 },
    #[error("{what} is empty")]
    Empty { what: &'static str },
}

/// Parameters of `MAIL FROM` that we add ourselves; none of them carries user data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` (RFC 1870), sent only when the server advertised SIZE.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (RFC 6152).
    pub eight_bit: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
}

/// One SMTP command. Secrets (AUTH payloads) are only ever carried base64-encoded and are redacted by
/// [`Command::redacted`].
#[derive(Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Ehlo(&'a str),
    Helo(&'a str),
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4); the response is already base64.
    Auth {
        mechanism: &'a str,
        initial: Option<&'a str>,
    },
    /// A base64 line answering a 334 challenge (possibly empty, e.g. to end a failed XOAUTH2 exchange).
    AuthResponse(&'a str),
    Mail {
        from: &'a str,
        params: MailParams,
    },
    Rcpt {
        to: &'a str,
    },
    Data,
    /// `BDAT size LAST` (RFC 3030 §2): the whole message as one chunk of exactly `size` bytes.
    BdatLast {
        size: usize,
    },
    Rset,
    Noop,
    Quit,
}

impl Command<'_> {
    /// Appends the command and its CRLF to `out`, or appends nothing and says which argument is unsafe.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CommandError> {
        self.check()?;
        self.write(out);
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// The command as a transcript shows it: AUTH payloads replaced by `<redacted>`.
    pub fn redacted(&self) -> String {
        match self {
            Command::Auth { mechanism, initial: Some(_) } => format!("AUTH {mechanism} <redacted>"),
            Command::AuthResponse(_) => "<redacted>".to_owned(),
            other => other.text(),
        }
    }

    fn check(&self) -> Result<(), CommandError> {
        match self {
            Command::Ehlo(name) | Command::Helo(name) => argument("EHLO name", name, false),
            Command::Auth { mechanism, initial } => {
                argument("AUTH mechanism", mechanism, false)?;
                initial.map_or(Ok(()), |i| argument("AUTH response", i, true))
            }
            Command::AuthResponse(line) => argument("AUTH response", line, true),
            Command::Mail { from, .. } => argument("sender address", from, true),
            Command::Rcpt { to } => argument("recipient address", to, false),
            Command::StartTls
            | Command::Data
            | Command::BdatLast { .. }
            | Command::Rset
            | Command::Noop
            | Command::Quit => Ok(()),
        }
    }

    /// The command line without CRLF, appended piece by piece (no `format!`, no allocation of its own: this
    /// runs for every command of every message). Private: only reachable through `encode` (checked) or `text`.
    fn write(&self, out: &mut Vec<u8>) {
        let mut put = |parts: &[&str]| parts.iter().for_each(|p| out.extend_from_slice(p.as_bytes()));
        match self {
            Command::Ehlo(name) => put(&["EHLO ", name]),
            Command::Helo(name) => put(&["HELO ", name]),
            Command::StartTls => put(&["STARTTLS"]),
            Command::Auth { mechanism, initial: None } => put(&["AUTH ", mechanism]),
            // RFC 4954 §4: an empty initial response is sent as "=".
            Command::Auth { mechanism, initial: Some("") } => put(&["AUTH ", mechanism, " ="]),
            Command::Auth { mechanism, initial: Some(i) } => put(&["AUTH ", mechanism, " ", i]),
            Command::AuthResponse(line) => put(&[line]),
            Command::Mail { from, params } => {
                put(&["MAIL FROM:<", from, ">"]);
                // Formatting into a Vec through io::Write cannot fail and allocates nothing of its own.
                let _ = std::io::Write::write_fmt(out, format_args!("{params}"));
            }
            Command::Rcpt { to } => put(&["RCPT TO:<", to, ">"]),
            Command::Data => put(&["DATA"]),
            Command::BdatLast { size } => {
                put(&["BDAT "]);
                let _ = std::io::Write::write_fmt(out, format_args!("{size} LAST"));
            }
            Command::Rset => put(&["RSET"]),
            Command::Noop => put(&["NOOP"]),
            Command::Quit => put(&["QUIT"]),
        }
    }

    /// The command line as text, for transcripts.
    fn text(&self) -> String {
        let mut out = Vec::new();
        self.write(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl fmt::Display for MailParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(size) = self.size {
            write!(f, " SIZE={size}")?;
        }
        if self.eight_bit {
            f.write_str(" BODY=8BITMIME")?;
        }
        if self.smtputf8 {
            f.write_str(" SMTPUTF8")?;
        }
        Ok(())
    }
}

/// Debug shows the redacted form, so a `{:?}` in a log can never print a password.
impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:?})", self.redacted())
    }
}

/// Refuses CR, LF and NUL anywhere in a command argument (and an empty one where the grammar needs text).
pub fn argument(what: &'static str, value: &str, may_be_empty: bool) -> Result<(), CommandError> {
    if let Some(&byte) = value.as_bytes().iter().find(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
        return Err(CommandError::ForbiddenByte { what, byte });
    }
    if value.is_empty() && !may_be_empty {
        return Err(CommandError::Empty { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(cmd: Command<'_>) -> String {
        let mut out = Vec::new();
        cmd.encode(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn commands_encode_byte_for_byte() {
        let all = MailParams { size: Some(1234), eight_bit: true, smtputf8: true };
        let cases = [
            (Command::Ehlo("client.example"), "EHLO client.example\r\n"),
            (Command::Helo("client.example"), "HELO client.example\r\n"),
            (Command::StartTls, "STARTTLS\r\n"),
            (Command::Auth { mechanism: "LOGIN", initial: None }, "AUTH LOGIN\r\n"),
            (Command::Auth { mechanism: "PLAIN", initial: Some("AHUAcA==") }, "AUTH PLAIN AHUAcA==\r\n"),
            (Command::Auth { mechanism: "PLAIN", initial: Some("") }, "AUTH PLAIN =\r\n"),
            (Command::AuthResponse("dXNlcg=="), "dXNlcg==\r\n"),
            (Command::AuthResponse(""), "\r\n"),
            (Command::Mail { from: "a@b.example", params: MailParams::default() }, "MAIL FROM:<a@b.example>\r\n"),
            (Command::Mail { from: "", params: MailParams::default() }, "MAIL FROM:<>\r\n"),
            (
                Command::Mail { from: "a@b.example", params: all },
                "MAIL FROM:<a@b.example> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n",
            ),
            (Command::Rcpt { to: "c@d.example" }, "RCPT TO:<c@d.example>\r\n"),
            (Command::Data, "DATA\r\n"),
            (Command::BdatLast { size: 0 }, "BDAT 0 LAST\r\n"),
            (Command::BdatLast { size: 20481 }, "BDAT 20481 LAST\r\n"),
            (Command::Rset, "RSET\r\n"),
            (Command::Noop, "NOOP\r\n"),
            (Command::Quit, "QUIT\r\n"),
        ];
        for (cmd, want) in cases {
            assert_eq!(wire(cmd), want);
        }
    }

    #[test]
    fn cr_lf_nul_in_any_argument_is_refused_before_any_byte_is_written() {
        for bad in ["a\r@b", "a\n@b", "a@b\0", "x\r\nRCPT TO:<evil@x>"] {
            let cmds = [
                Command::Ehlo(bad),
                Command::Helo(bad),
                Command::Auth { mechanism: bad, initial: None },
                Command::Auth { mechanism: "PLAIN", initial: Some(bad) },
                Command::AuthResponse(bad),
                Command::Mail { from: bad, params: MailParams::default() },
                Command::Rcpt { to: bad },
            ];
            for cmd in cmds {
                let mut out = b"EARLIER\r\n".to_vec();
                let err = cmd.encode(&mut out).unwrap_err();
                assert!(matches!(err, CommandError::ForbiddenByte { .. }), "{cmd:?}");
                assert_eq!(out, b"EARLIER\r\n", "{cmd:?} wrote bytes");
            }
        }
    }

    #[test]
    fn empty_arguments_are_refused_where_the_grammar_needs_text() {
        assert_eq!(Command::Ehlo("").encode(&mut Vec::new()), Err(CommandError::Empty { what: "EHLO name" }));
        assert!(Command::Rcpt { to: "" }.encode(&mut Vec::new()).is_err());
    }

    #[test]
    fn auth_payloads_are_redacted_in_transcripts_and_debug() {
        let auth = Command::Auth { mechanism: "PLAIN", initial: Some("AHVzZXIAc2VjcmV0") };
        assert_eq!(auth.redacted(), "AUTH PLAIN <redacted>");
        assert!(!format!("{auth:?}").contains("AHVz"));
        assert_eq!(Command::AuthResponse("c2VjcmV0").redacted(), "<redacted>");
        assert_eq!(Command::Rcpt { to: "c@d" }.redacted(), "RCPT TO:<c@d>");
    }
}
