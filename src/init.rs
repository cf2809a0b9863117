//! `mailshot init DIR`: a new job folder from the starter files bundled in the binary (`templates/` of the
//! source tree), ready for `check` and `preview`. It never overwrites: an existing non-empty folder is refused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The starter files, as (path inside the new folder, contents).
pub const FILES: &[(&str, &str)] = &[
    ("job.toml", include_str!("../templates/job.toml")),
    ("recipients.csv", include_str!("../templates/recipients.csv")),
    ("templates/message.txt", include_str!("../templates/message.txt")),
    ("templates/message.html", include_str!("../templates/message.html")),
];

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{}: already exists and is not empty; choose a new folder", .0.display())]
    NotEmpty(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Creates `dir` with the starter files; returns the job file's path.
pub fn run(dir: &Path) -> Result<PathBuf, InitError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InitError::Io { path, source }
    };
    if dir.exists() && fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(InitError::NotEmpty(dir.to_owned()));
    }
    for (name, contents) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut file = fs::File::create_new(&path).map_err(io(&path))?;
        file.write_all(contents.as_bytes()).map_err(io(&path))?;
    }
    Ok(dir.join("job.toml"))
}
