//! Our SMTP client, from the socket up (RFC 5321, with STARTTLS RFC 3207, AUTH RFC 4954, SIZE RFC 1870,
//! 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, enhanced status codes RFC 3463).
//!
//! It knows bytes, replies, commands, TLS, AUTH and one session's conversation, and nothing about CSV,
//! templates, jobs or retry policy, so it can be lifted into its own crate unchanged. Layers, bottom up:
//! [`reply`] and [`command`] and [`data`] are pure (sans-IO) and tested byte for byte; [`connection`] owns
//! one stream's buffers and deadlines; [`connector`] runs the handshake; [`session`] sends messages, and
//! [`pipeline`] sends a stream of them at one round trip each (RFC 2920).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mailshot::smtp::{self, ClientConfig, Credentials, Delivery, Envelope};
//! let mut config = ClientConfig::new("smtp.example.com", 465);
//! config.credentials = Some(Credentials::new("me@example.com", "app-password"));
//! let mut session = smtp::connect(&config).await?;
//! let envelope = Envelope::new("me@example.com", ["you@example.org"])?;
//! match session.send(&envelope, b"Subject: hi\r\n\r\nhello\r\n").await? {
//!     Delivery::Accepted(reply) => println!("queued: {reply}"),
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
pub mod data;
pub mod envelope;
mod opening;
pub mod outcome;
pub mod pipeline;
pub mod reply;
pub mod session;
pub mod stream;
pub mod tls;
mod x509;

#[cfg(test)]
mod testing;

pub use auth::{AuthError, AuthOutcome, Credentials, Mechanism, Secret};
pub use capabilities::Capabilities;
pub use config::{ClientConfig, Direction, Phase, Security, Timeouts, TranscriptSink};
pub use connection::ConnectionError;
pub use connector::{ConnectError, TcpSession, connect, establish};
pub use envelope::{Envelope, EnvelopeError};
pub use outcome::{Committed, Delivery, Opened, Ready, Refusal, SessionError, Stage, Trial};
pub use pipeline::Message;
pub use reply::{EnhancedCode, Reply, Severity};
pub use session::{ServerInfo, Session};
pub use tls::TlsInfo;
