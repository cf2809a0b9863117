//! The preview's folder: created, and cleared of what an earlier preview wrote there (only our own file
//! names), so that re-running a 100,000-message preview costs about what the first run does.

use std::fs;
use std::path::{Path, PathBuf};

use super::{PreviewError, io_error};

/// Creates the folder and clears what an earlier preview wrote there (only our own file names). A folder
/// that holds nothing else is renamed aside in one step and deleted only after the new preview is written:
/// unlinking 100,000 files first and then creating 100,000 among the just-freed inodes (which ext4's
/// allocator scans past) took 60–125 s here, against ~12 s this way (docs/benchmarks.md).
pub(super) fn prepare(dir: &Path) -> Result<Aside, PreviewError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    delete_left_aside(dir);
    let mut ours = Vec::new();
    let mut others = false;
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_ours(name) { ours.push(path) } else { others = true }
    }
    if !others
        && !ours.is_empty()
        && let Some(aside) = rename_aside(dir)
    {
        let aside = Aside(Some(aside));
        fs::create_dir(dir).map_err(io_error(dir))?;
        return Ok(aside);
    }
    for path in ours {
        fs::remove_file(&path).map_err(io_error(&path))?;
    }
    Ok(Aside(None))
}

/// Folders that a preview killed outright (SIGKILL, a power cut: no handler ran) left renamed aside, named
/// for a process that is gone and holding only our files: best effort, as they are nobody's now.
fn delete_left_aside(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str())) else { return };
    let prefix = format!(".{name}.old-");
    let Ok(entries) = fs::read_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent }) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = (i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw))
            .is_some_and(|pid| rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH));
        let path = entry.path();
        if gone && holds_only_ours(&path) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

fn holds_only_ours(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else { return false };
    entries.into_iter().all(|e| {
        e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_file()) && e.file_name().to_str().is_some_and(is_ours))
    })
}

/// A name an earlier preview wrote: `index.html`, `messages.mbox`, `row-….eml`, `row-….html` or `row-….attN-…`.
fn is_ours(name: &str) -> bool {
    let attachment = name.split_once(".att").is_some_and(|(_, n)| n.starts_with(|c: char| c.is_ascii_digit()));
    name == "index.html"
        || name == super::mbox::FILE
        || (name.starts_with("row-") && (name.ends_with(".eml") || name.ends_with(".html") || attachment))
}

/// `preview/` → `.preview.old-PID` beside it; `None` where that can't be done (then files go one by one).
/// A symlinked folder is not renamed: that would replace the user's link with a folder.
fn rename_aside(dir: &Path) -> Option<PathBuf> {
    if !fs::symlink_metadata(dir).ok()?.is_dir() {
        return None;
    }
    let name = dir.file_name()?.to_str()?;
    let aside = dir.with_file_name(format!(".{name}.old-{}", std::process::id()));
    fs::rename(dir, &aside).ok().map(|()| aside)
}

/// An earlier preview renamed aside by [`prepare`] (it held only our files): deleted by [`Aside::remove`]
/// once the new one is written, or on the way out of a preview that stopped early.
pub(super) struct Aside(Option<PathBuf>);

impl Aside {
    pub(super) fn remove(mut self) -> Result<(), PreviewError> {
        match self.0.take() {
            Some(path) => fs::remove_dir_all(&path).map_err(io_error(&path)),
            None => Ok(()),
        }
    }
}

impl Aside {
    /// After a failed write (a full disk, a read-only file): the half-written preview goes and the earlier
    /// one, if it was renamed aside, comes back whole; renaming needs no free space. Where the earlier one
    /// was cleared file by file there is nothing to bring back, and only the half-written files go (a cut
    /// `index.html` shows an empty page that looks like a preview). Best effort: the write error is the
    /// one reported.
    pub(super) fn restore(mut self, dir: &Path) {
        if let Some(earlier) = self.0.take() {
            if fs::remove_dir_all(dir).is_ok() && fs::rename(&earlier, dir).is_err() {
                // Kept aside rather than deleted by `drop`: the user's earlier preview is still there.
                let _ = fs::create_dir(dir);
            }
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else { return };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.file_name().and_then(|n| n.to_str()).is_some_and(is_ours) {
                let _ = fs::remove_file(path);
            }
        }
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_dir_all(path);
        }
    }
}
