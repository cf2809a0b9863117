//! Our SMTP client, from the socket up (RFC 5321, with STARTTLS RFC 3207, AUTH RFC 4954, SIZE RFC 1870,
//! 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, enhanced status codes RFC 3463).
//!
//! It knows bytes, replies, commands, TLS, AUTH and one session's conversation, and nothing about CSV,
//! templates, jobs or retry policy, so it can be lifted into its own crate unchanged. Layers, bottom up:
//! [`reply`], [`command`], [`data`] and [`transaction`] are pure (sans-IO) and tested byte for byte;
//! [`connection`] owns one stream's buffers and deadlines; [`connector`] runs the handshake; [`session`] is
//! the state machine that sends messages over it, a stream of them at one round trip each (RFC 2920).
//!
//! ```text
//! connect ─► TCP ─► [TLS] ─► 220 ─► EHLO ─► [STARTTLS ─► TLS ─► EHLO] ─► [AUTH] ─► Session
//! Session: open(message) ─► MAIL RCPT DATA ─► 354 ─► commit(body, next) ─► . [RSET MAIL RCPT DATA] ─► …
//!          each message ─► Delivery: Accepted | Rejected{stage, reply} (RSET, go on) | Refused (never offered)
//!                       or SessionError (the session is gone; uncertain if it went after the final dot)
//! ```
//!
//! Dependencies point one way (`scripts/import-cycles` finds no circle): `credentials`, `phase`, `reply`,
//! `command`, `data`, `envelope`, `stream` at the bottom; `capabilities`, `tls`, then `transcript` (its
//! [`Learned`] facts are replies, TLS parameters and capabilities); `config` and `connection` above them;
//! `auth` and `delivery`, then `transaction` (its plans end in a delivery's `Stage` or `Refusal`); `session`;
//! `connector`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mailshot::smtp::{self, ClientConfig, Credentials, Delivery, Envelope};
//! let mut config = ClientConfig::new("smtp.example.com", 465);
//! config.credentials = Some(Credentials::new("me@example.com", "app-password"));
//! let mut session = smtp::connect(&config).await?;
//! let envelope = Envelope::new("me@example.com", ["you@example.org"])?;
//! match session.send(&envelope, b"Subject: hi\r\n\r\nhello\r\n").await? {
//!     Delivery::Accepted { reply, .. } => println!("queued: {reply}"),
//!     other => println!("not delivered: {other:?}"),
//! }
//! session.quit().await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod capabilities;
pub mod command;
pub mod config;
pub mod connection;
pub mod connector;
pub mod credentials;
pub mod data;
pub mod delivery;
pub mod envelope;
pub mod phase;
pub mod reply;
pub mod session;
pub mod stream;
pub mod tls;
pub mod transaction;
pub mod transcript;
mod x509;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use auth::{AuthError, AuthOutcome};
pub use capabilities::Capabilities;
pub use config::{ClientConfig, Pipelining, Security};
pub use connection::ConnectionError;
pub use connector::{ConnectError, Connector, TcpSession, connect, establish};
pub use credentials::{Credentials, Mechanism, Secret};
pub use delivery::{Committed, Delivery, Opened, Ready, Refusal, RejectedCopy, SessionError, Stage, Trial};
pub use envelope::{Envelope, EnvelopeError};
pub use phase::{Phase, Timeouts};
pub use reply::{EnhancedCode, Reply, Severity};
pub use session::{ServerInfo, Session, Windowed};
pub use tls::{HandshakeCause, TlsError, TlsInfo};
pub use transaction::Message;
pub use transcript::{Direction, HintSink, Learned, LearnedSink, TranscriptSink};
