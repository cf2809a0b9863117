//! Reading a bounce mailbox over IMAP (`imaps://user@host:port/INBOX`), implicit TLS only.
//!
//! The IMAP protocol is async-imap's (maintained by the Delta Chat project, generic over any tokio stream),
//! so the TLS under it is ours: the same rustls connector as SMTP (`smtp::tls`), webpki roots plus the
//! job's `[smtp] ca_file`, verification that cannot be switched off. The folder is opened with EXAMINE and
//! messages fetched with `BODY.PEEK[]`: reading bounces changes nothing in the mailbox (no `\Seen` flags,
//! no messages moved), so a person or another tool can still read it. Each phase has its own deadline.

use std::fmt;
use std::time::Duration;

use futures_util::TryStreamExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::smtp::Secret;
use crate::smtp::tls;

const CONNECT: Duration = Duration::from_secs(30);
const TLS: Duration = Duration::from_secs(30);
const COMMAND: Duration = Duration::from_secs(60);
/// Between two messages of a FETCH (a large mailbox takes long in all, but never this long for one).
const FETCH_STEP: Duration = Duration::from_secs(120);

/// `imaps://user@host:port/FOLDER`: the user may be an address (`merge@example.test@host` or `%40`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub folder: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: {phase} took longer than {}s", seconds.as_secs())]
    Timeout { url: String, phase: &'static str, seconds: Duration },
    #[error("{url}: cannot connect: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("{url}: {source}")]
    Tls { url: String, source: tls::TlsError },
    #[error("{url}: {phase}: {reason}")]
    Protocol { url: String, phase: &'static str, reason: String },
}

impl ImapUrl {
    pub fn parse(text: &str) -> Result<ImapUrl, ImapError> {
        let bad = |reason: &str| ImapError::Url { url: text.to_owned(), reason: reason.to_owned() };
        let rest = match text.split_once("://") {
            Some(("imaps", rest)) => rest,
            Some(("imap", _)) => return Err(bad("plain `imap://` is refused: use `imaps://` (TLS)")),
            _ => return Err(bad("not an `imaps://user@host[:port][/folder]` URL")),
        };
        let (authority, folder) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, host_port) = authority.rsplit_once('@').ok_or_else(|| bad("no user (`imaps://user@host/…`)"))?;
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| bad("the port is not a number"))?),
            None => (host_port, 993),
        };
        let user = percent_decode(user).ok_or_else(|| bad("the user is not valid percent-encoded UTF-8"))?;
        let folder = percent_decode(folder).ok_or_else(|| bad("the folder is not valid percent-encoded UTF-8"))?;
        if user.is_empty() || host.is_empty() || user.contains(['\r', '\n']) || folder.contains(['\r', '\n']) {
            return Err(bad("an empty user or host, or a line break"));
        }
        let folder = if folder.is_empty() { "INBOX".to_owned() } else { folder };
        Ok(ImapUrl { user, host: host.to_owned(), port, folder })
    }
}

/// Shown without a password (the URL never holds one).
impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "imaps://{}@{}:{}/{}", self.user, self.host, self.port, self.folder)
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Logs in, EXAMINEs the folder and hands every message's bytes to `each`, in mailbox order.
pub async fn read_all(
    url: &ImapUrl,
    password: &Secret,
    extra_roots: &[rustls_pki_types::CertificateDer<'static>],
    mut each: impl FnMut(&[u8]),
) -> Result<u64, ImapError> {
    let name = url.to_string();
    let late = |phase, seconds| ImapError::Timeout { url: name.clone(), phase, seconds };
    let protocol = |phase| {
        let name = name.clone();
        move |e: async_imap::error::Error| ImapError::Protocol { url: name, phase, reason: e.to_string() }
    };
    let tcp = timeout(CONNECT, TcpStream::connect((url.host.as_str(), url.port)))
        .await
        .map_err(|_| late("connect", CONNECT))?
        .map_err(|source| ImapError::Connect { url: name.clone(), source })?;
    let connector = tls::connector(extra_roots).map_err(|source| ImapError::Tls { url: name.clone(), source })?;
    let stream = timeout(TLS, tls::handshake(&connector, &url.host, tcp))
        .await
        .map_err(|_| late("TLS handshake", TLS))?
        .map_err(|source| ImapError::Tls { url: name.clone(), source })?;
    let mut client = async_imap::Client::new(stream);
    let greeting = timeout(COMMAND, client.read_response()).await.map_err(|_| late("greeting", COMMAND))?;
    if !matches!(greeting, Ok(Some(_))) {
        return Err(ImapError::Protocol { url: name, phase: "greeting", reason: "no greeting".into() });
    }
    let login =
        timeout(COMMAND, client.login(&url.user, password.expose())).await.map_err(|_| late("LOGIN", COMMAND))?;
    // The error says what the server answered; the password is in neither.
    let mut session = login.map_err(|(e, _)| protocol("LOGIN")(e))?;
    let mailbox = timeout(COMMAND, session.examine(&url.folder))
        .await
        .map_err(|_| late("EXAMINE", COMMAND))?
        .map_err(protocol("EXAMINE"))?;
    let mut read = 0;
    if mailbox.exists > 0 {
        let mut messages = timeout(COMMAND, session.fetch("1:*", "BODY.PEEK[]"))
            .await
            .map_err(|_| late("FETCH", COMMAND))?
            .map_err(protocol("FETCH"))?;
        while let Some(message) = timeout(FETCH_STEP, messages.try_next())
            .await
            .map_err(|_| late("FETCH (one message)", FETCH_STEP))?
            .map_err(protocol("FETCH"))?
        {
            if let Some(body) = message.body() {
                each(body);
                read += 1;
            }
        }
    }
    let _ = timeout(COMMAND, session.logout()).await;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_user_host_port_and_folder() {
        let url = ImapUrl::parse("imaps://merge@example.test@localhost:45993/INBOX").unwrap();
        assert_eq!((url.user.as_str(), url.host.as_str(), url.port), ("merge@example.test", "localhost", 45993));
        assert_eq!(url.folder, "INBOX");
        let url = ImapUrl::parse("imaps://bounce%40example.com@imap.example.com/Bounces%2F2026").unwrap();
        assert_eq!((url.user.as_str(), url.port, url.folder.as_str()), ("bounce@example.com", 993, "Bounces/2026"));
        assert_eq!(url.to_string(), "imaps://bounce@example.com@imap.example.com:993/Bounces/2026");
        assert_eq!(ImapUrl::parse("imaps://u@h").unwrap().folder, "INBOX");
        for bad in ["imap://u@h/INBOX", "https://u@h", "imaps://h/INBOX", "imaps://u@h:x/", "imaps://u@h/a%0Db"] {
            assert!(ImapUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
