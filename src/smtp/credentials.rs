//! Who logs in and with what: a username, a [`Secret`] whose `Debug` prints nothing, and the SASL mechanism.
//! Plain data below both the configuration and AUTH.

use std::fmt;

/// A password or token. Only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A username and its password (or, for XOAUTH2, its access token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: Secret,
}

impl Credentials {
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials { username: username.into(), secret: Secret::new(secret) }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("secret", &self.secret).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    /// Google's bearer-token mechanism (also Microsoft 365's).
    Xoauth2,
    /// RFC 7628's bearer-token mechanism.
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Carries an OAuth2 access token (which expires) rather than a password.
    pub fn is_oauth(self) -> bool {
        matches!(self, Mechanism::Xoauth2 | Mechanism::OAuthBearer)
    }
}
