//! Where bounce reports are read from: a Maildir (`cur/` and `new/`), an mbox file, or an IMAP folder
//! (`imaps://user@host:port/INBOX`, read by `imap`). Each yields the raw bytes of one message at a time.

use std::io::BufReader;
use std::path::PathBuf;

use mail_parser::mailbox::{maildir, mbox};

/// A `--from` argument, recognised by its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Maildir(PathBuf),
    Mbox(PathBuf),
    Imap(super::imap::ImapUrl),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {reason}")]
    Path { path: String, reason: String },
    #[error(transparent)]
    Imap(#[from] super::imap::ImapError),
}

impl Source {
    /// `imaps://…` is IMAP; a folder holding `cur/` and `new/` is a Maildir; a regular file is an mbox.
    pub fn parse(arg: &str) -> Result<Source, SourceError> {
        let bad = |reason: &str| SourceError::Path { path: arg.to_owned(), reason: reason.to_owned() };
        if arg.contains("://") {
            return Ok(Source::Imap(super::imap::ImapUrl::parse(arg)?));
        }
        let path = PathBuf::from(arg);
        let metadata = std::fs::metadata(&path).map_err(|e| bad(&format!("cannot read: {e}")))?;
        if metadata.is_dir() {
            return match path.join("cur").is_dir() && path.join("new").is_dir() {
                true => Ok(Source::Maildir(path)),
                false => Err(bad("a folder without cur/ and new/ (not a Maildir)")),
            };
        }
        match metadata.is_file() {
            true => Ok(Source::Mbox(path)),
            false => Err(bad("neither a Maildir folder nor an mbox file")),
        }
    }

    /// What the summary calls it (an IMAP URL holds no password).
    pub fn describe(&self) -> String {
        match self {
            Source::Maildir(p) | Source::Mbox(p) => p.display().to_string(),
            Source::Imap(url) => url.to_string(),
        }
    }
}

/// Each message's bytes, or why one could not be read.
pub type Messages = Box<dyn Iterator<Item = Result<Vec<u8>, SourceError>>>;

/// The messages of a local mailbox, one at a time (a Maildir file is read whole; an mbox is streamed).
pub fn local_messages(source: &Source) -> Result<Messages, SourceError> {
    let io = |path: &PathBuf| {
        let path = path.display().to_string();
        move |e: std::io::Error| SourceError::Path { path: path.clone(), reason: e.to_string() }
    };
    match source {
        Source::Maildir(path) => {
            let messages = maildir::MessageIterator::new(path).map_err(io(path))?;
            let err = io(path);
            Ok(Box::new(messages.map(move |m| m.map(maildir::Message::unwrap_contents).map_err(&err))))
        }
        Source::Mbox(path) => {
            let file = crate::input::open(path)
                .map_err(|e| SourceError::Path { path: path.display().to_string(), reason: e.to_string() })?;
            let err = io(path);
            let messages = mbox::MessageIterator::new(BufReader::new(file.0));
            Ok(Box::new(messages.map(move |m| m.map(mbox::Message::unwrap_contents).map_err(&err))))
        }
        Source::Imap(_) => unreachable!("an IMAP folder is read by `imap::read_all`"),
    }
}
