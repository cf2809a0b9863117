//! Attachments: a rendered path, confined to the job folder, read and typed by its extension.
//!
//! Confinement is checked on the canonical path (symlinks and `..` resolved), so neither `../../etc/passwd`
//! nor a symlink pointing outside the folder can be mailed out by a CSV cell.

use std::path::{Path, PathBuf};

use crate::input::{self, InputError};

/// The largest attachment read: no message with a bigger one could be sent.
const ATTACHMENT_BYTES: u64 = 25 << 20;

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
    #[error("attachment {path:?} is outside the job folder")]
    Escapes { path: String },
    #[error("attachment {path:?} not found: {reason}")]
    Missing { path: String, reason: String },
    #[error("attachment {path:?} is not a regular file")]
    NotAFile { path: String },
    #[error("attachment {path:?} cannot be read: {reason}")]
    Read { path: String, reason: String },
    #[error("attachment {path:?} is {size} bytes, more than a whole message may be ({limit})")]
    TooLarge { path: String, size: u64, limit: u64 },
}

/// The job's folder, canonical, as the root that attachment paths must stay inside.
#[derive(Debug, Clone)]
pub struct JobFolder {
    root: PathBuf,
}

impl JobFolder {
    pub fn new(dir: &Path) -> std::io::Result<JobFolder> {
        Ok(JobFolder { root: dir.canonicalize()? })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical path of a rendered attachment path, if it names a regular file inside the folder.
    pub fn resolve(&self, rendered: &str) -> Result<PathBuf, AttachmentError> {
        let path = rendered.trim();
        if path.is_empty() {
            return Err(AttachmentError::Empty);
        }
        let owned = || path.to_owned();
        let full = self
            .root
            .join(path)
            .canonicalize()
            .map_err(|e| AttachmentError::Missing { path: owned(), reason: e.kind().to_string() })?;
        if !full.starts_with(&self.root) {
            return Err(AttachmentError::Escapes { path: owned() });
        }
        if !full.is_file() {
            return Err(AttachmentError::NotAFile { path: owned() });
        }
        Ok(full)
    }

    pub fn load(&self, rendered: &str) -> Result<Attachment, AttachmentError> {
        let full = self.resolve(rendered)?;
        let path = || rendered.trim().to_owned();
        let bytes = input::read(&full, ATTACHMENT_BYTES, "an attachment").map_err(|e| match e {
            InputError::NotRegular { .. } => AttachmentError::NotAFile { path: path() },
            InputError::TooLarge { size, limit, .. } => AttachmentError::TooLarge { path: path(), size, limit },
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
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_folder() {
        let outer = tempfile::tempdir().unwrap();
        let job = outer.path().join("job");
        std::fs::create_dir_all(job.join("files")).unwrap();
        std::fs::write(job.join("files/a b.pdf"), b"%PDF-1.4").unwrap();
        std::fs::write(outer.path().join("secret.txt"), b"no").unwrap();
        let folder = JobFolder::new(&job).unwrap();

        let a = folder.load("files/a b.pdf").unwrap();
        assert_eq!((a.file_name.as_str(), a.content_type.as_str()), ("a b.pdf", "application/pdf"));
        assert!(matches!(folder.load("../secret.txt"), Err(AttachmentError::Escapes { .. })));
        let absolute = outer.path().join("secret.txt");
        assert!(matches!(folder.load(absolute.to_str().unwrap()), Err(AttachmentError::Escapes { .. })));
        assert!(matches!(folder.load("files/none.pdf"), Err(AttachmentError::Missing { .. })));
        assert!(matches!(folder.load("files"), Err(AttachmentError::NotAFile { .. })));
        assert!(matches!(folder.load("  "), Err(AttachmentError::Empty)));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_folder_is_refused() {
        let outer = tempfile::tempdir().unwrap();
        let job = outer.path().join("job");
        std::fs::create_dir(&job).unwrap();
        std::fs::write(outer.path().join("secret.txt"), b"no").unwrap();
        std::os::unix::fs::symlink(outer.path().join("secret.txt"), job.join("link.txt")).unwrap();
        let folder = JobFolder::new(&job).unwrap();
        assert!(matches!(folder.load("link.txt"), Err(AttachmentError::Escapes { .. })));
    }
}
