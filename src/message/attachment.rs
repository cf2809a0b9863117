//! Attachments: a rendered path, confined to the job's declared `attachments_dir`, never one of the job's own
//! files, read (a regular file, within a size cap) and typed by its extension.
//!
//! Why two rules: whoever edits the CSV chooses the path. Confinement is checked on the canonical path
//! (symlinks and `..` resolved), so neither `../../etc/passwd` nor a symlink out of the folder can be mailed
//! out. And the job's own files — the job file, templates, CSV, `password_file`, `ca_file`, journals, lock,
//! reports, previews — are refused wherever they are (by path, and by inode so that a hard link is caught
//! too): an `attachments_dir = "."` must not let a cell attach the password.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::input::{self, InputError};

/// One file ready to be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name the recipient sees (the file's own name; RFC 2231-encoded when not ASCII).
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("attachment path is empty")]
    Empty,
    #[error("attachment {path:?} is outside attachments_dir ({dir})")]
    Escapes { path: String, dir: String },
    #[error("attachment {path:?} is {role}: a job's own files are never attached")]
    OwnFile { path: String, role: String },
    #[error("attachment {path:?} not found: {reason}")]
    Missing { path: String, reason: String },
    #[error("attachment {path:?} is not a regular file")]
    NotAFile { path: String },
    #[error("attachment {path:?} cannot be read: {reason}")]
    Read { path: String, reason: String },
    #[error("attachment {path:?} is {size} bytes: the message would be over [limits] message_bytes")]
    TooLarge { path: String, size: u64 },
}

/// The job's own files, each with what it is (`the job's password_file`), to refuse as attachments.
#[derive(Debug, Clone, Default)]
pub struct OwnFiles {
    /// Canonical paths (or, for files that do not exist yet, canonical folder + name).
    files: Vec<(PathBuf, String)>,
    /// Folders whose whole content is the job's (reports, previews).
    folders: Vec<(PathBuf, String)>,
    /// Files in a folder by name: (folder, prefix, suffix) — journals kept by `--fresh`.
    named: Vec<(PathBuf, String, String, String)>,
    /// (device, inode) of every one of them that exists now: a hard link has another path, not another inode.
    inodes: Vec<((u64, u64), String)>,
}

impl OwnFiles {
    /// One file of the job's (it need not exist yet: a journal, a lock).
    pub fn file(&mut self, path: &Path, role: &str) {
        let full = canonical(path);
        self.note_inode(&full, role);
        self.files.push((full, role.to_owned()));
    }

    /// A folder whose every file is the job's.
    pub fn folder(&mut self, path: &Path, role: &str) {
        let full = canonical(path);
        for entry in std::fs::read_dir(&full).into_iter().flatten().flatten() {
            self.note_inode(&entry.path(), role);
        }
        self.folders.push((full, role.to_owned()));
    }

    /// The files in `dir` whose names start with `prefix` and end with `suffix`.
    pub fn named(&mut self, dir: &Path, prefix: &str, suffix: &str, role: &str) {
        let full = canonical(dir);
        let matches = |name: &str| name.starts_with(prefix) && name.ends_with(suffix);
        for entry in std::fs::read_dir(&full).into_iter().flatten().flatten() {
            if matches(&entry.file_name().to_string_lossy()) {
                self.note_inode(&entry.path(), role);
            }
        }
        self.named.push((full, prefix.to_owned(), suffix.to_owned(), role.to_owned()));
    }

    fn note_inode(&mut self, path: &Path, role: &str) {
        if let Ok(m) = std::fs::metadata(path) {
            self.inodes.push(((m.dev(), m.ino()), role.to_owned()));
        }
    }

    /// What `full` (canonical) is, if it is one of the job's files.
    fn role_of(&self, full: &Path, metadata: &Metadata) -> Option<&str> {
        let by_path = self.files.iter().find(|(p, _)| p == full);
        let by_folder = || self.folders.iter().find(|(dir, _)| full.starts_with(dir));
        let by_name = || {
            let (parent, name) = (full.parent()?, full.file_name()?.to_string_lossy());
            let hit = |(dir, prefix, suffix, _): &&(PathBuf, String, String, String)| {
                dir == parent && name.starts_with(prefix.as_str()) && name.ends_with(suffix.as_str())
            };
            self.named.iter().find(hit).map(|(.., role)| role)
        };
        let by_inode = || self.inodes.iter().find(|(id, _)| *id == (metadata.dev(), metadata.ino())).map(|(_, r)| r);
        by_path.or_else(by_folder).map(|(_, role)| role).or_else(by_name).or_else(by_inode).map(String::as_str)
    }
}

/// A path made absolute with symlinks resolved, as far as it exists.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(full) = path.canonicalize() {
        return full;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            canonical(if parent.as_os_str().is_empty() { Path::new(".") } else { parent }).join(name)
        }
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
    }
}

/// Where attachments may come from: paths are relative to the job folder and must land in `root`.
#[derive(Debug, Clone)]
pub struct AttachmentDir {
    /// The job folder, canonical: rendered paths are relative to it.
    base: PathBuf,
    /// `attachments_dir`, canonical; `None` when the job attaches nothing (it need not exist then).
    root: Option<PathBuf>,
    /// `attachments_dir` as the job file says it, for messages.
    shown: String,
    own: OwnFiles,
}

impl AttachmentDir {
    /// `dir` (relative to `base`, or absolute) must be a folder when `needed`.
    pub fn new(base: &Path, dir: &Path, needed: bool, own: OwnFiles) -> std::io::Result<AttachmentDir> {
        let base = base.canonicalize()?;
        let root = match base.join(dir).canonicalize() {
            Ok(root) if root.is_dir() => Some(root),
            Ok(_) if needed => return Err(std::io::Error::other("not a directory")),
            Err(e) if needed => return Err(e),
            _ => None,
        };
        Ok(AttachmentDir { base, root, shown: dir.display().to_string(), own })
    }

    /// The canonical path of a rendered attachment path, if it names an allowed regular file.
    pub fn resolve(&self, rendered: &str) -> Result<PathBuf, AttachmentError> {
        let path = rendered.trim();
        if path.is_empty() {
            return Err(AttachmentError::Empty);
        }
        let owned = || path.to_owned();
        let missing = |e: std::io::Error| AttachmentError::Missing { path: owned(), reason: e.kind().to_string() };
        let full = self.base.join(path).canonicalize().map_err(missing)?;
        let metadata = std::fs::metadata(&full).map_err(missing)?;
        if let Some(role) = self.own.role_of(&full, &metadata) {
            return Err(AttachmentError::OwnFile { path: owned(), role: role.to_owned() });
        }
        if !self.root.as_ref().is_some_and(|root| full.starts_with(root)) {
            return Err(AttachmentError::Escapes { path: owned(), dir: self.shown.clone() });
        }
        if !metadata.is_file() {
            return Err(AttachmentError::NotAFile { path: owned() });
        }
        Ok(full)
    }

    /// Reads the attachment, if it is at most `max_bytes` long (what is left of the message's size limit).
    pub fn load(&self, rendered: &str, max_bytes: u64) -> Result<Attachment, AttachmentError> {
        let full = self.resolve(rendered)?;
        let path = || rendered.trim().to_owned();
        let bytes = input::read(&full, max_bytes, "an attachment").map_err(|e| match e {
            InputError::NotRegular { .. } => AttachmentError::NotAFile { path: path() },
            InputError::TooLarge { size, .. } => AttachmentError::TooLarge { path: path(), size },
            InputError::Open { reason, .. } | InputError::Read { reason, .. } => {
                AttachmentError::Read { path: path(), reason }
            }
        })?;
        let file_name = full.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let content_type = mime_guess::from_path(&full).first_or_octet_stream().essence_str().to_owned();
        Ok(Attachment { file_name, content_type, bytes })
    }
}

#[cfg(test)]
#[path = "attachment_tests.rs"]
mod tests;
