//! `mailshot init DIR`: a new job folder from the starter files bundled in the binary (`templates/` of the
//! source tree), ready for `check` and `preview`. It never overwrites: an existing non-empty folder is refused.
//!
//! Every commented example in the starter's `job.toml` works once uncommented (a test uncomments each): the
//! CSV has the columns they read and `files/` the attachments they name. The one value made here is the
//! `campaign`: the folder's name and today's date, so that two jobs made from the starter never share their
//! Message-IDs (which `campaign` seeds) and `{{ campaign }}` says something true.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The starter files, as (path inside the new folder, contents).
pub const FILES: &[(&str, &str)] = &[
    ("job.toml", include_str!("../templates/job.toml")),
    ("recipients.csv", include_str!("../templates/recipients.csv")),
    ("templates/message.txt", include_str!("../templates/message.txt")),
    ("templates/message.html", include_str!("../templates/message.html")),
    ("files/ticket-1001.txt", include_str!("../templates/files/ticket-1001.txt")),
    ("files/ticket-1002.txt", include_str!("../templates/files/ticket-1002.txt")),
];

/// The starter job's `campaign` line, replaced by [`campaign_line`].
const CAMPAIGN_PLACEHOLDER: &str = "campaign = \"my-mailing\"";

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
    fs::create_dir_all(dir).map_err(io(dir))?;
    let campaign = campaign_line(dir, chrono::Utc::now().date_naive());
    for (name, contents) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let contents = if *name == "job.toml" { starter_job(contents, &campaign) } else { contents.to_string() };
        let mut file = fs::File::create_new(&path).map_err(io(&path))?;
        file.write_all(contents.as_bytes()).map_err(io(&path))?;
    }
    Ok(dir.join("job.toml"))
}

/// The starter `job.toml` with its `campaign` line set, the line's comment kept in its column.
fn starter_job(text: &str, campaign: &str) -> String {
    let line = |line: &str| match (line.starts_with(CAMPAIGN_PLACEHOLDER), line.find('#')) {
        (true, Some(comment)) => {
            format!("{campaign:<width$}{}", &line[comment..], width = comment.max(campaign.len() + 1))
        }
        (true, None) => campaign.to_owned(),
        (false, _) => line.to_owned(),
    };
    text.lines().map(|l| line(l) + "\n").collect()
}

/// `campaign = "news-2026-12-02"`: the folder's name (`.` resolved; only ASCII letters, digits, `-`, `_`
/// and `.` kept, as it may end up in a header) and the date.
fn campaign_line(dir: &Path, date: chrono::NaiveDate) -> String {
    let full = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let name = full.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    let name = if name.trim_matches(['-', '.']).is_empty() { "mailing".to_owned() } else { name };
    format!("campaign = \"{name}-{}\"", date.format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_job_has_the_line_init_replaces_and_keeps_its_comment_aligned() {
        assert_eq!(FILES[0].1.matches(CAMPAIGN_PLACEHOLDER).count(), 1);
        let job = starter_job(FILES[0].1, "campaign = \"news-2026-12-02\"");
        let line = job.lines().find(|l| l.starts_with("campaign = ")).unwrap();
        let column = |line: &str| line.find('#');
        let html = job.lines().find(|l| l.starts_with("html = ")).unwrap();
        assert!(line.starts_with("campaign = \"news-2026-12-02\" "), "{line}");
        assert_eq!(column(line), column(html), "{job}");
        assert_eq!(job.lines().count(), FILES[0].1.lines().count());
    }

    #[test]
    fn the_campaign_is_the_folders_name_and_the_date_made_header_safe() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let line = |dir: &str| campaign_line(Path::new(dir), date);
        assert_eq!(line("/nonexistent/news"), "campaign = \"news-2026-12-02\"");
        assert_eq!(line("/nonexistent/Winter Sale \"26\"\n"), "campaign = \"Winter-Sale--26---2026-12-02\"");
        assert_eq!(line("/nonexistent/Zürich"), "campaign = \"Z-rich-2026-12-02\"");
        assert_eq!(line("/"), "campaign = \"mailing-2026-12-02\"");
    }
}
