//! SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and XOAUTH2 (Google's
//! bearer-token profile), one attempt each time, never a loop: a refused login is final for this session
//! and its reply says why, in words (`535` → wrong username or password, `534 5.7.9` → the provider wants an
//! app password, `454` → try later). Secrets live in [`Secret`], whose `Debug` prints nothing, and go out
//! only base64-encoded inside commands that the transcript redacts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::capabilities::Capabilities;
use super::command::Command;
use super::connection::{Connection, ConnectionError};
use super::credentials::{Credentials, Mechanism};
use super::phase::Phase;
use super::reply::{Reply, Severity};
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the server does not offer AUTH, so {username} cannot log in")]
    NotOffered { username: String },
    #[error("the server offers AUTH {offered}, but mailshot speaks only PLAIN, LOGIN and XOAUTH2")]
    NoCommonMechanism { offered: String },
    #[error("AUTH {} was asked for, but the server offers only {offered:?}", mechanism.name())]
    MechanismNotOffered { mechanism: Mechanism, offered: String },
    #[error("username or password not accepted for {username}: the server said {reply}")]
    Rejected { username: String, reply: Reply },
    #[error(
        "the provider wants an app password (an application-specific password) for {username}, not the \
         account password: the server said {reply}"
    )]
    AppPasswordRequired { username: String, reply: Reply },
    #[error("temporary authentication failure, try again later: the server said {reply}")]
    Temporary { reply: Reply },
    #[error("authentication failed: the server said {reply}")]
    Failed { reply: Reply },
    /// An OAuth2 access token refused: `status` is the server's decoded JSON (`{"status":"401",…}`).
    #[error("the server refused the OAuth2 access token for {username} (AUTH {}): {status}; it said {reply}", mechanism.name())]
    TokenRejected { username: String, mechanism: Mechanism, status: String, reply: Reply },
    #[error("unexpected reply during AUTH {}: {reply}", mechanism.name())]
    Unexpected { mechanism: Mechanism, reply: Reply },
    #[error("the username, password or token contains a NUL or ^A byte, which AUTH cannot carry")]
    NulInCredentials,
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl AuthError {
    /// Worth trying again later with the same credentials (`454`, or a `4xx` such as `421`).
    pub fn is_temporary(&self) -> bool {
        matches!(self, AuthError::Temporary { .. })
    }

    /// An OAuth2 token was refused (expired, revoked): a fresh token may pass where this one did not.
    pub fn is_token_rejected(&self) -> bool {
        matches!(self, AuthError::TokenRejected { .. })
    }
}

/// Which mechanism was used and the server's final (`235`) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOutcome {
    pub mechanism: Mechanism,
    pub reply: Reply,
}

/// The forced mechanism if offered, else PLAIN, then LOGIN.
pub fn choose(caps: &Capabilities, forced: Option<Mechanism>, username: &str) -> Result<Mechanism, AuthError> {
    let offered = caps.auth.join(" ");
    if caps.auth.is_empty() {
        return Err(AuthError::NotOffered { username: username.to_owned() });
    }
    if let Some(mechanism) = forced {
        // Both OAuth2 mechanisms carry the same bearer token: either will do where only one is offered.
        let other = match mechanism {
            Mechanism::Xoauth2 => Some(Mechanism::OAuthBearer),
            Mechanism::OAuthBearer => Some(Mechanism::Xoauth2),
            _ => None,
        };
        return match caps.offers_auth(mechanism.name()) {
            true => Ok(mechanism),
            false => match other.filter(|o| caps.offers_auth(o.name())) {
                Some(other) => Ok(other),
                None => Err(AuthError::MechanismNotOffered { mechanism, offered }),
            },
        };
    }
    [Mechanism::Plain, Mechanism::Login]
        .into_iter()
        .find(|m| caps.offers_auth(m.name()))
        .ok_or(AuthError::NoCommonMechanism { offered })
}

/// One login attempt with `mechanism`. `server` (host, port) goes into OAUTHBEARER's message (RFC 7628).
pub async fn authenticate<S>(
    conn: &mut Connection<S>,
    mechanism: Mechanism,
    creds: &Credentials,
    server: (&str, u16),
) -> Result<AuthOutcome, AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (reply, status) = match mechanism {
        Mechanism::Plain => (plain(conn, creds).await?, None),
        Mechanism::Login => (login(conn, creds).await?, None),
        Mechanism::Xoauth2 | Mechanism::OAuthBearer => bearer(conn, mechanism, creds, server).await?,
    };
    match (reply.severity(), status) {
        (Severity::Positive, _) => Ok(AuthOutcome { mechanism, reply }),
        (Severity::Intermediate, _) => Err(AuthError::Unexpected { mechanism, reply }),
        (_, Some(status)) => {
            Err(AuthError::TokenRejected { username: creds.username.clone(), mechanism, status, reply })
        }
        (_, None) => Err(refused(&creds.username, reply)),
    }
}

/// RFC 4616: `\0username\0password` as the initial response.
async fn plain<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>, creds: &Credentials) -> AuthResult {
    let (user, pass) = (&creds.username, creds.secret.expose());
    if user.contains('\0') || pass.contains('\0') {
        return Err(AuthError::NulInCredentials);
    }
    let initial = BASE64.encode(format!("\0{user}\0{pass}"));
    let auth = Command::Auth { mechanism: "PLAIN", initial: Some(&initial) };
    Ok(conn.command(&auth, Phase::Command).await?)
}

/// LOGIN: two 334 challenges (`Username:`, `Password:`), each answered with a base64 line.
async fn login<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>, creds: &Credentials) -> AuthResult {
    let mut reply = conn.command(&Command::Auth { mechanism: "LOGIN", initial: None }, Phase::Command).await?;
    for answer in [creds.username.as_str(), creds.secret.expose()] {
        if reply.code() != 334 {
            return Ok(reply);
        }
        let line = BASE64.encode(answer);
        reply = conn.command(&Command::AuthResponse(&line), Phase::Command).await?;
    }
    Ok(reply)
}

/// XOAUTH2 and OAUTHBEARER (RFC 7628): the token in the initial response. On failure the server first sends
/// a 334 with a base64 JSON error; the client answers (an empty line for XOAUTH2, `%x01` for OAUTHBEARER)
/// and gets the final reply. Returns that reply and the decoded error, if one came (never the token).
async fn bearer<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    mechanism: Mechanism,
    creds: &Credentials,
    (host, port): (&str, u16),
) -> Result<(Reply, Option<String>), AuthError> {
    let (user, token) = (&creds.username, creds.secret.expose());
    if [user.as_str(), token, host].iter().any(|s| s.contains(['\x01', '\0'])) {
        return Err(AuthError::NulInCredentials);
    }
    let message = match mechanism {
        Mechanism::OAuthBearer => {
            // The GS2 header's authzid escapes `=` and `,` (RFC 5801 §4).
            let authzid = user.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
        }
        _ => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
    };
    let initial = BASE64.encode(message);
    let auth = Command::Auth { mechanism: mechanism.name(), initial: Some(&initial) };
    let reply = conn.command(&auth, Phase::Command).await?;
    if reply.code() != 334 {
        return Ok((reply, None));
    }
    let status = decoded_status(&reply);
    let answer = if mechanism == Mechanism::OAuthBearer { "AQ==" } else { "" };
    let last = conn.command(&Command::AuthResponse(answer), Phase::Command).await?;
    Ok((last, Some(status)))
}

/// The 334's base64 JSON, decoded (control characters dropped), or the line as it came.
fn decoded_status(reply: &Reply) -> String {
    let line = reply.lines().join("");
    let decoded = BASE64.decode(line.trim()).ok().and_then(|bytes| String::from_utf8(bytes).ok());
    let text = decoded.unwrap_or(line);
    text.chars().filter(|c| !c.is_control()).take(512).collect()
}

type AuthResult = Result<Reply, AuthError>;

/// Turns a negative reply into the error a person can act on.
fn refused(username: &str, reply: Reply) -> AuthError {
    let username = username.to_owned();
    let enhanced = reply.enhanced().map(|e| (e.class, e.subject, e.detail));
    match (reply.code(), enhanced) {
        (535, _) => AuthError::Rejected { username, reply },
        (534, Some((5, 7, 9))) => AuthError::AppPasswordRequired { username, reply },
        (code, _) if code / 100 == 4 => AuthError::Temporary { reply },
        _ => AuthError::Failed { reply },
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
