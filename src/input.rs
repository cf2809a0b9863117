//! Opening the files a job names: the job file, the CSV, templates, attachments, `password_file`, `ca_file`.
//! Each must be a regular file, and none may block or exhaust memory on the way to finding out.
//!
//! Why this way: `open` on a FIFO blocks until a writer comes (for ever, in cron), and a device such as
//! `/dev/zero` reads without end. So the file is opened with `O_NONBLOCK` (a FIFO opens at once; for a
//! regular file the flag changes nothing on Linux) and then `fstat`ed — the type of what was opened, not of
//! what a path named a moment earlier — and only a regular file is read, never more than its caller's cap.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{}: cannot open: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{}: is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: {size} bytes, more than the {limit} bytes allowed for {what}", path.display())]
    TooLarge { path: PathBuf, size: u64, limit: u64, what: String },
    #[error("{}: cannot read: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
}

/// Opens `path` for reading if it is a regular file, without blocking; returns it with its metadata.
pub fn open(path: &Path) -> Result<(File, Metadata), InputError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| InputError::Open { path: path.to_owned(), reason: e.to_string() })?;
    let metadata = file.metadata().map_err(|e| InputError::Open { path: path.to_owned(), reason: e.to_string() })?;
    match kind(&metadata) {
        None => Ok((file, metadata)),
        Some(kind) => Err(InputError::NotRegular { path: path.to_owned(), kind }),
    }
}

/// A regular file's bytes, refused unread when it is longer than `limit` (`what` names the limit).
pub fn read(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, InputError> {
    let (file, metadata) = open(path)?;
    let too_large = |size| InputError::TooLarge { path: path.to_owned(), size, limit, what: what.to_owned() };
    if metadata.len() > limit {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow after the fstat: never read more than the limit allows.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::Read { path: path.to_owned(), reason: e.to_string() })?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// As [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64, what: &str) -> Result<String, InputError> {
    let bytes = read(path, limit, what)?;
    String::from_utf8(bytes)
        .map_err(|_| InputError::Read { path: path.to_owned(), reason: "not valid UTF-8".to_owned() })
}

/// What a file is when it is not a regular file, in words for the error.
fn kind(metadata: &Metadata) -> Option<&'static str> {
    let t = metadata.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn only_regular_files_are_opened_and_nothing_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        mkfifo(&fifo);
        std::fs::write(dir.path().join("plain.txt"), "text").unwrap();
        let started = Instant::now();
        let cases: [(&Path, Option<&str>); 4] = [
            (&fifo, Some("a FIFO")),
            (Path::new("/dev/zero"), Some("a character device")),
            (dir.path(), Some("a directory")),
            (&dir.path().join("plain.txt"), None),
        ];
        for (path, refused) in cases {
            match (read_to_string(path, 1 << 20, "a test"), refused) {
                (Ok(text), None) => assert_eq!(text, "text"),
                (Err(e), Some(kind)) => {
                    let text = e.to_string();
                    assert!(text.starts_with(&path.display().to_string()) && text.contains(kind), "{text}");
                }
                (other, _) => panic!("{}: {other:?}", path.display()),
            }
        }
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }

    #[test]
    fn a_file_over_the_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 1001]).unwrap();
        let err = read(&path, 1000, "[limits] something").unwrap_err();
        assert!(
            err.to_string().ends_with("1001 bytes, more than the 1000 bytes allowed for [limits] something"),
            "{err}"
        );
        assert!(matches!(read(Path::new("/nonexistent/x"), 10, "x"), Err(InputError::Open { .. })));
    }
}
