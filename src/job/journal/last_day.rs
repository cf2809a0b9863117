//! What the last 24 hours cost the provider's daily limit: this journal's sends plus those of the journals
//! `--fresh` set aside beside it (a new campaign does not reset the provider's count). `send` caps a run by
//! it, its prompt says it, and `status` tells the budget left.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::Replayed;

/// Counts over this journal and the ones set aside beside it, each read once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastDay {
    /// Messages sent (attempts with a final dot): what a daily budget counts.
    pub sent: u64,
    /// Recipients delivered: what `status` says was sent.
    pub delivered: u64,
}

impl LastDay {
    /// `journal` is the job's current journal file, `replayed` its fold at `now`.
    pub fn of(journal: &Path, replayed: &Replayed, now: DateTime<Utc>) -> LastDay {
        let mut day = LastDay { sent: replayed.sent_last_24h, delivered: replayed.delivered_last_24h };
        for kept in set_aside_journals(journal, now) {
            day.sent += kept.sent_last_24h;
            day.delivered += kept.delivered_last_24h;
        }
        day
    }
}

impl LastDay {
    /// What the journals of layouts other than `count`'s sent (another shard count, or unsharded against
    /// sharded; current or set aside by `--fresh`): a campaign with a new shard count spends the same
    /// provider's daily count as the one before it.
    pub fn of_other_layouts(job_file: &Path, count: Option<u32>, now: DateTime<Utc>) -> LastDay {
        let others = crate::job::shard::layout::journals_with_set_aside(job_file)
            .into_iter()
            .filter(|f| f.shard.map(|s| s.count) != count);
        let mut day = LastDay::default();
        for found in others {
            let Ok(file) = std::fs::File::open(&found.path) else { continue };
            if let Ok(replayed) = Replayed::read(file, now, &found.path) {
                day.sent += replayed.sent_last_24h;
                day.delivered += replayed.delivered_last_24h;
            }
        }
        day
    }
}

/// The journals `--fresh` kept beside `journal` (`job.journal.<time>.jsonl`), replayed; unreadable ones are
/// left out (they were set aside, not damaged by us).
fn set_aside_journals(journal: &Path, now: DateTime<Utc>) -> impl Iterator<Item = Replayed> {
    let dir = match journal.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    let current = journal.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = current.trim_end_matches("jsonl").to_owned();
    let kept = std::fs::read_dir(dir).into_iter().flatten().flatten().filter(move |entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name != current && name.starts_with(&prefix) && name.ends_with(".jsonl")
    });
    kept.filter_map(|entry| std::fs::File::open(entry.path()).ok().map(|f| (entry.path(), f)))
        .filter_map(move |(path, file)| Replayed::read(file, now, &path).ok())
}
