//! `[message]`: what each recipient receives. Values that are templates stay strings here; they are compiled
//! once by `render` and rendered per recipient. Spans are kept so that a later problem can name its line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Where attachments must be unless `attachments_dir` says otherwise.
pub const DEFAULT_ATTACHMENTS_DIR: &str = "files";
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSection {
    /// `Name <address>` or a bare address; the same for every message (envelope sender too).
    pub from: Spanned<String>,
    /// Optional `Reply-To`, same syntax as `from`.
    pub reply_to: Option<Spanned<String>>,
    /// Optional fixed Bcc on every message (an archive mailbox): in the envelope only, never in a header.
    pub bcc: Option<Spanned<String>>,
    /// Inline Tera template, not autoescaped.
    pub subject: Spanned<String>,
    /// Tera file for the `text/plain` part, relative to the job file.
    pub text: Option<Spanned<PathBuf>>,
    /// Tera file for the `text/html` part, relative to the job file; always autoescaped.
    pub html: Option<Spanned<PathBuf>>,
    /// Inline Tera templates giving file paths (relative to the job file), rendered per recipient; each must
    /// land inside `attachments_dir`.
    #[serde(default)]
    pub attachments: Vec<Spanned<String>>,
    /// The folder attachments must be in, relative to the job file; default `files`.
    pub attachments_dir: Option<Spanned<PathBuf>>,
    /// Extra headers; each value is an inline Tera template, not autoescaped.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Inline Tera template giving an `https:` (one-click, RFC 8058) or `mailto:` URL.
    pub list_unsubscribe: Option<Spanned<String>>,
    /// Inline Tera template giving a per-recipient envelope sender (VERP), e.g.
    /// `bounces+{{ mailshot.recipient_token }}@example.com`; default the `from` address.
    pub return_path: Option<Spanned<String>>,
    /// Seeds the Message-IDs; default: the job file's absolute path.
    pub campaign: Option<Spanned<String>>,
}
