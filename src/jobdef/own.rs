//! The job's own files, which no attachment may be, wherever they are: what the job file names (itself, the
//! templates, the CSV, `password_file`, `ca_file`) and what `send` and `preview` keep beside it (journals,
//! the lock, `reports/`, `preview/`). The names beside it are `job::run::JobPaths`'s; a test keeps them equal.

use std::path::Path;

use crate::config::{MessageSection, RecipientsSection, SmtpSection};
use crate::message::OwnFiles;

pub(super) fn own_files(
    job: &Path,
    message: &MessageSection,
    recipients: &RecipientsSection,
    smtp: &SmtpSection,
) -> OwnFiles {
    let dir = match job.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let stem = job.file_stem().map_or("job".into(), |s| s.to_string_lossy().into_owned());
    let mut own = OwnFiles::default();
    own.file(job, "the job file");
    for (key, path) in [("text", &message.text), ("html", &message.html)] {
        if let Some(path) = path {
            own.file(&dir.join(path.get_ref()), &format!("the job's template ([message] {key})"));
        }
    }
    own.file(&dir.join(recipients.csv.get_ref()), "the job's recipients CSV");
    if let Some(path) = &smtp.password_file {
        own.file(&dir.join(path), "the job's password_file");
    }
    if let Some(path) = &smtp.ca_file {
        own.file(&dir.join(path), "the job's ca_file");
    }
    // Every journal: the current one, those `--fresh` kept, and what `repair` cut off (`.damaged-….txt`).
    own.named(dir, &format!("{stem}.journal."), "", "a journal of the job");
    own.file(&dir.join(format!("{stem}.lock")), "the job's lock file");
    // A shard's journals and lock (`job.shard-I-of-N.journal.jsonl`, `job.shard-I-of-N.lock`).
    own.named(dir, &format!("{stem}.shard-"), "", "a shard's journal or lock of the job");
    own.folder(&dir.join("reports"), "a report of the job (reports/)");
    // The reports `--fresh` set aside with an old campaign's journal (`reports-<UTC>/`).
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("reports-") && entry.path().is_dir() {
            own.folder(&entry.path(), "a report of the job (set aside by --fresh)");
        }
    }
    own.folder(&dir.join("preview"), "a preview of the job (preview/)");
    own
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::job::run::JobPaths;

    /// The journal, lock and reports `send` writes are the ones refused here.
    #[test]
    fn the_names_beside_the_job_are_the_ones_send_uses() {
        for job in ["job.toml", "jobs/news.toml", "/srv/x/mailing.toml"] {
            let paths = JobPaths::of(&PathBuf::from(job));
            let dir = paths.dir.clone();
            let stem = PathBuf::from(job).file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(paths.journal, dir.join(format!("{stem}.journal.jsonl")));
            assert_eq!(paths.lock, dir.join(format!("{stem}.lock")));
            assert_eq!(paths.reports, dir.join("reports"));
        }
    }
}
