//! Attachment paths: confined to `attachments_dir`; the job's own files refused wherever they are.

use super::*;

const LIMIT: u64 = 25 << 20;

/// `outer/job/` with `files/a b.pdf`, a password file, a kept journal, a report; `outer/secret.txt` outside.
fn job() -> (tempfile::TempDir, PathBuf) {
    let outer = tempfile::tempdir().unwrap();
    let job = outer.path().join("job");
    for (name, text) in [
        ("files/a b.pdf", "%PDF-1.4"),
        ("notes.txt", "mine"),
        ("smtp.pw", "hunter2"),
        ("job.toml", "[smtp]"),
        ("job.journal.20260101T000000Z.jsonl", "{}"),
        ("reports/2026-11-02.csv", "row,email"),
    ] {
        std::fs::create_dir_all(job.join(name).parent().unwrap()).unwrap();
        std::fs::write(job.join(name), text).unwrap();
    }
    std::fs::write(outer.path().join("secret.txt"), b"no").unwrap();
    (outer, job)
}

fn own(job: &Path) -> OwnFiles {
    let mut own = OwnFiles::default();
    own.file(&job.join("job.toml"), "the job file");
    own.file(&job.join("smtp.pw"), "the job's password_file");
    own.file(&job.join("job.lock"), "the job's lock");
    own.named(job, "job.journal.", ".jsonl", "a journal of the job");
    own.folder(&job.join("reports"), "a report of the job");
    own
}

fn role(result: Result<Attachment, AttachmentError>) -> String {
    match result {
        Err(AttachmentError::OwnFile { role, .. }) => role,
        other => panic!("{other:?}"),
    }
}

#[test]
fn paths_stay_inside_attachments_dir() {
    let (outer, job) = job();
    let dir = AttachmentDir::new(&job, Path::new("files"), true, own(&job)).unwrap();

    let a = dir.load("files/a b.pdf", LIMIT).unwrap();
    assert_eq!((a.file_name.as_str(), a.content_type.as_str()), ("a b.pdf", "application/pdf"));
    let escapes = |r| matches!(r, Err(AttachmentError::Escapes { .. }));
    assert!(escapes(dir.load("../secret.txt", LIMIT)));
    assert!(escapes(dir.load("notes.txt", LIMIT)), "in the job folder but not in files/");
    assert!(escapes(dir.load("files/../notes.txt", LIMIT)));
    assert!(escapes(dir.load(outer.path().join("secret.txt").to_str().unwrap(), LIMIT)));
    assert!(matches!(dir.load("files/none.pdf", LIMIT), Err(AttachmentError::Missing { .. })));
    assert!(matches!(dir.load("files", LIMIT), Err(AttachmentError::NotAFile { .. })));
    assert!(matches!(dir.load("  ", LIMIT), Err(AttachmentError::Empty)));
    assert_eq!(
        dir.load("notes.txt", LIMIT).unwrap_err().to_string(),
        "attachment \"notes.txt\" is outside attachments_dir (files)"
    );
}

#[test]
fn the_jobs_own_files_are_refused_even_inside_attachments_dir() {
    let (_outer, job) = job();
    let dir = AttachmentDir::new(&job, Path::new("."), true, own(&job)).unwrap();
    assert!(dir.load("notes.txt", LIMIT).is_ok(), "attachments_dir = \".\" allows the job folder");
    assert_eq!(role(dir.load("smtp.pw", LIMIT)), "the job's password_file");
    assert_eq!(role(dir.load("./files/../job.toml", LIMIT)), "the job file");
    assert_eq!(role(dir.load("job.journal.20260101T000000Z.jsonl", LIMIT)), "a journal of the job");
    assert_eq!(role(dir.load("reports/2026-11-02.csv", LIMIT)), "a report of the job");
    let err = dir.load("smtp.pw", LIMIT).unwrap_err().to_string();
    assert_eq!(err, "attachment \"smtp.pw\" is the job's password_file: a job's own files are never attached");
}

#[test]
fn links_to_the_jobs_own_files_are_refused() {
    let (_outer, job) = job();
    std::os::unix::fs::symlink(job.join("smtp.pw"), job.join("files/pw.txt")).unwrap();
    std::fs::hard_link(job.join("smtp.pw"), job.join("files/pw-hard.txt")).unwrap();
    let dir = AttachmentDir::new(&job, Path::new("files"), true, own(&job)).unwrap();
    assert_eq!(role(dir.load("files/pw.txt", LIMIT)), "the job's password_file");
    assert_eq!(role(dir.load("files/pw-hard.txt", LIMIT)), "the job's password_file");
}

#[test]
fn a_symlink_out_of_the_folder_is_refused() {
    let (outer, job) = job();
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), job.join("files/link.txt")).unwrap();
    let dir = AttachmentDir::new(&job, Path::new("files"), true, own(&job)).unwrap();
    assert!(matches!(dir.load("files/link.txt", LIMIT), Err(AttachmentError::Escapes { .. })));
}

#[test]
fn attachments_dir_must_exist_only_when_something_is_attached() {
    let (_outer, job) = job();
    assert!(AttachmentDir::new(&job, Path::new("nowhere"), true, OwnFiles::default()).is_err());
    assert!(AttachmentDir::new(&job, Path::new("notes.txt"), true, OwnFiles::default()).is_err());
    let dir = AttachmentDir::new(&job, Path::new("nowhere"), false, OwnFiles::default()).unwrap();
    assert!(matches!(dir.load("notes.txt", LIMIT), Err(AttachmentError::Escapes { .. })));
}

#[test]
fn an_attachment_over_what_the_message_may_still_hold_is_refused_unread() {
    let (_outer, job) = job();
    let dir = AttachmentDir::new(&job, Path::new("files"), true, own(&job)).unwrap();
    assert!(dir.load("files/a b.pdf", 8).is_ok());
    let err = dir.load("files/a b.pdf", 7).unwrap_err();
    assert_eq!(
        err.to_string(),
        "attachment \"files/a b.pdf\" is 8 bytes: the message would be over [limits] message_bytes"
    );
}
