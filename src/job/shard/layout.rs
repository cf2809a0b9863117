//! The journals a job folder holds, by layout: `job.journal.jsonl` (unsharded) and
//! `job.shard-I-of-N.journal.jsonl` (shard I of N). A campaign has one layout: a run with another one would
//! send recipients that another shard's journal already settled, so it is refused unless `--fresh`.
//! Journals `--fresh` set aside (`….journal.<UTC>.jsonl`) are not current and are not listed.

use std::path::{Path, PathBuf};

use super::Shard;

/// A current journal beside the job, and the shard it belongs to (`None`: an unsharded run's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub shard: Option<Shard>,
}

/// Every current journal of the job whose file is `job_file`, sorted by shard.
pub fn journals(job_file: &Path) -> Vec<Found> {
    let mut found: Vec<Found> = scan(job_file).into_iter().filter_map(|(f, current)| current.then_some(f)).collect();
    found.sort_by_key(|f| f.shard.map(|s| (s.count, s.index)));
    found
}

/// The journals of another layout than `shard`'s (another N, or sharded against unsharded).
pub fn conflicting(job_file: &Path, shard: Option<Shard>) -> Vec<Found> {
    let count = shard.map(|s| s.count);
    journals(job_file).into_iter().filter(|f| f.shard.map(|s| s.count) != count).collect()
}

/// The refusal naming the journals of the other layout.
pub fn refusal(found: &[Found], shard: Option<Shard>) -> String {
    let names: Vec<String> = found.iter().map(|f| f.path.display().to_string()).collect();
    let theirs = match found[0].shard {
        Some(s) => format!("{} shards", s.count),
        None => "one unsharded run".to_owned(),
    };
    let ours = match shard {
        Some(s) => format!("as shard {} (of {})", s.spec(), s.count),
        None => "unsharded".to_owned(),
    };
    format!(
        "this campaign was sent as {theirs} ({}); running it {ours} would send again recipients those journals \
         settled. Nothing was sent. Run with the same shard count, or start a new campaign with --fresh (the old \
         journals are kept, renamed)",
        names.join(", ")
    )
}

/// Every journal of the job, current or set aside by `--fresh` (`….journal.<UTC>.jsonl`), by layout: what
/// the daily budget counts across campaigns of different shard counts.
pub fn journals_with_set_aside(job_file: &Path) -> Vec<Found> {
    scan(job_file).into_iter().map(|(f, _)| f).collect()
}

/// Every journal beside the job, and whether it is current (not set aside by `--fresh`).
fn scan(job_file: &Path) -> Vec<(Found, bool)> {
    let (dir, stem) = dir_and_stem(job_file);
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let (shard, current) = layout_of(&entry.file_name().to_string_lossy(), &stem)?;
            Some((Found { path: entry.path(), shard }, current))
        })
        .collect()
}

/// `stem[.shard-I-of-N].journal[.<UTC>].jsonl`: the shard (`None`: an unsharded run's), and whether the
/// journal is current (`stem[.shard-I-of-N].journal.jsonl`) rather than set aside.
fn layout_of(name: &str, stem: &str) -> Option<(Option<Shard>, bool)> {
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    let (shard, rest) = match rest.strip_prefix("shard-") {
        Some(tagged) => {
            let (tag, rest) = tagged.split_once('.')?;
            let (i, n) = tag.split_once("-of-")?;
            let shard = Shard { index: i.parse().ok()?, count: n.parse().ok()? };
            (Some(shard).filter(|s| s.index < s.count)?.into(), rest)
        }
        None => (None, rest),
    };
    let rest = rest.strip_prefix("journal.")?;
    (rest == "jsonl" || rest.ends_with(".jsonl")).then_some((shard, rest == "jsonl"))
}

fn dir_and_stem(job_file: &Path) -> (PathBuf, String) {
    let dir = match job_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let stem = job_file.file_stem().map_or("job".into(), |s| s.to_string_lossy().into_owned());
    (dir, stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_journals_are_found_by_layout_and_set_aside_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "job.journal.jsonl",
            "job.shard-1-of-4.journal.jsonl",
            "job.shard-0-of-4.journal.jsonl",
            "job.shard-0-of-4.journal.20261203T070000Z.jsonl",
            "job.shard-5-of-4.journal.jsonl",
            "other.shard-0-of-2.journal.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let job = dir.path().join("job.toml");
        let shards: Vec<Option<Shard>> = journals(&job).into_iter().map(|f| f.shard).collect();
        let of4 = |index| Some(Shard { index, count: 4 });
        assert_eq!(shards, [None, of4(0), of4(1)]);
        assert_eq!(conflicting(&job, of4(2)).len(), 1, "the unsharded journal");
        assert_eq!(conflicting(&job, None).len(), 2, "the two shard journals");
        let of2 = Some(Shard { index: 0, count: 2 });
        assert!(refusal(&conflicting(&job, of2), of2).contains("job.journal.jsonl"));
        let mut all: Vec<(String, Option<Shard>)> = journals_with_set_aside(&job)
            .into_iter()
            .map(|f| (f.path.file_name().unwrap().to_string_lossy().into_owned(), f.shard))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = [
            ("job.journal.jsonl", None),
            ("job.shard-0-of-4.journal.20261203T070000Z.jsonl", of4(0)),
            ("job.shard-0-of-4.journal.jsonl", of4(0)),
            ("job.shard-1-of-4.journal.jsonl", of4(1)),
        ];
        assert_eq!(all, expected.map(|(n, s)| (n.to_owned(), s)));
    }
}
