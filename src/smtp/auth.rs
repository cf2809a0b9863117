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
    #[error("unexpected reply during AUTH {}: {reply}", mechanism.name())]
    Unexpected { mechanism: Mechanism, reply: Reply },
    #[error("the username or password contains a NUL byte, which AUTH PLAIN cannot carry")]
    NulInCredentials,
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl AuthError {
    /// Worth trying again later with the same credentials (`454`, or a `4xx` such as `421`).
    pub fn is_temporary(&self) -> bool {
        matches!(self, AuthError::Temporary { .. })
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
        return match caps.offers_auth(mechanism.name()) {
            true => Ok(mechanism),
            false => Err(AuthError::MechanismNotOffered { mechanism, offered }),
        };
    }
    [Mechanism::Plain, Mechanism::Login]
        .into_iter()
        .find(|m| caps.offers_auth(m.name()))
        .ok_or(AuthError::NoCommonMechanism { offered })
}

/// One login attempt with `mechanism`.
pub async fn authenticate<S>(
    conn: &mut Connection<S>,
    mechanism: Mechanism,
    creds: &Credentials,
) -> Result<AuthOutcome, AuthError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reply = match mechanism {
        Mechanism::Plain => plain(conn, creds).await?,
        Mechanism::Login => login(conn, creds).await?,
        Mechanism::Xoauth2 => xoauth2(conn, creds).await?,
    };
    match reply.severity() {
        Severity::Positive => Ok(AuthOutcome { mechanism, reply }),
        Severity::Intermediate => Err(AuthError::Unexpected { mechanism, reply }),
        _ => Err(refused(&creds.username, reply)),
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

/// XOAUTH2: on failure the server first sends a 334 with a JSON error; an empty line gets the final reply.
async fn xoauth2<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>, creds: &Credentials) -> AuthResult {
    let initial = BASE64.encode(format!("user={}\x01auth=Bearer {}\x01\x01", creds.username, creds.secret.expose()));
    let reply = conn.command(&Command::Auth { mechanism: "XOAUTH2", initial: Some(&initial) }, Phase::Command).await?;
    if reply.code() != 334 {
        return Ok(reply);
    }
    Ok(conn.command(&Command::AuthResponse(""), Phase::Command).await?)
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
