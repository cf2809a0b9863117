//! The journals `status` reads: the job's one journal, or every shard's (`job.shard-I-of-N.journal.jsonl`),
//! merged into one view with a line per shard. Shards settle disjoint recipients (each key hashes to one),
//! so the totals are sums and the recipient lists a union.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{LastRunView, Latest, StatusSummary, count, last_run_text, last_run_view};
use crate::config::JobFile;
use crate::job::clock::now;
use crate::job::journal::last_day::LastDay;
use crate::job::journal::{KeyId, Replayed, key_id};
use crate::job::shard::Shard;
use crate::job::shard::layout::{self, Found};
use crate::jobdef::Job;
use crate::recipients::Entry;

/// One journal, read.
pub struct Journal {
    pub shard: Option<Shard>,
    pub path: PathBuf,
    pub replayed: Replayed,
}

/// One shard's line in `status` (and its entry in `--json`'s `shards`).
#[derive(Debug, Serialize)]
pub struct ShardView {
    pub shard: String,
    pub journal: String,
    /// In this shard's part of the CSV, not settled by its journal (`None` when the job cannot be read now).
    pub pending: Option<u64>,
    pub delivered: u64,
    pub failed: u64,
    pub deferred: u64,
    pub uncertain: u64,
    pub last_run: Option<LastRunView>,
}

/// The job's journals: the shards' when there are any (all of one shard count), else the unsharded one.
pub fn read_journals(job_file: &Path, now: DateTime<Utc>) -> Result<Vec<Journal>, String> {
    let found = layout::journals(job_file);
    let (sharded, unsharded): (Vec<Found>, Vec<Found>) = found.into_iter().partition(|f| f.shard.is_some());
    let counts: Vec<u32> = sharded.iter().filter_map(|f| f.shard.map(|s| s.count)).collect();
    if counts.iter().any(|&c| c != counts[0]) {
        let names: Vec<String> = sharded.iter().map(|f| f.path.display().to_string()).collect();
        return Err(format!(
            "journals of different shard counts beside the job ({}); keep one campaign's",
            names.join(", ")
        ));
    }
    let chosen = if sharded.is_empty() { unsharded } else { sharded };
    if chosen.is_empty() {
        let journal = crate::job::run::JobPaths::of(job_file).journal;
        return Err(format!("{}: no journal yet: this job has not been sent", journal.display()));
    }
    chosen
        .into_iter()
        .map(|f| {
            let replayed = super::read(&f.path, now).map_err(|e| crate::job::run::repair_hint(e, f.shard))?;
            Ok(Journal { replayed, shard: f.shard, path: f.path })
        })
        .collect()
}

/// Totals over every shard, and a view of each.
pub fn summarise(job_file: &Path, journals: &[Journal], latest: &HashMap<KeyId, Latest>) -> StatusSummary {
    let n = journals.first().and_then(|j| j.shard).map_or(1, |s| s.count);
    let pending = pending(job_file, n, latest);
    // Every shard, also one whose process has not run yet (its recipients are pending all the same).
    let shards: Vec<ShardView> = (0..n)
        .map(|index| {
            let journal = journals.iter().find(|j| j.shard.is_some_and(|s| s.index == index));
            view(Shard { index, count: n }, journal, pending.as_ref().map(|p| p[index as usize]))
        })
        .collect();
    let max_per_day = JobFile::load(job_file).ok().and_then(|f| f.rate.max_per_day);
    // Each shard's journals and those of campaigns with another shard count (or none): one provider's day.
    let day = journals
        .iter()
        .map(|j| LastDay::of(&j.path, &j.replayed, now()))
        .chain([LastDay::of_other_layouts(job_file, Some(n), now())])
        .fold(LastDay::default(), |a, b| LastDay { sent: a.sent + b.sent, delivered: a.delivered + b.delivered });
    let not_sent = pending.map(|p| p.iter().sum());
    let names: Vec<String> = journals.iter().map(|j| j.path.display().to_string()).collect();
    let bounced = |hard| journals.iter().flat_map(|j| j.replayed.bounces.values()).filter(|b| b.kind == hard).count();
    StatusSummary {
        journal: names.join(", "),
        delivered: count(latest, "delivered"),
        failed: count(latest, "failed"),
        deferred: count(latest, "deferred"),
        uncertain: count(latest, "uncertain"),
        bounced_hard: bounced(crate::job::journal::BounceKind::Hard) as u64,
        bounced_soft: bounced(crate::job::journal::BounceKind::Soft) as u64,
        not_sent,
        pending: not_sent,
        // The most recent run of any shard.
        last_run: journals.iter().filter_map(|j| last_run_view(&j.replayed)).max_by_key(|r| r.started),
        max_per_day,
        sent_last_24h: day.delivered,
        budget_left: max_per_day.map(|m| m.saturating_sub(day.sent)),
        shards,
    }
}

fn view(shard: Shard, journal: Option<&Journal>, pending: Option<u64>) -> ShardView {
    let own = journal.map(|j| super::latest(&j.replayed)).unwrap_or_default();
    ShardView {
        shard: shard.spec(),
        journal: journal.map_or("none yet".into(), |j| j.path.display().to_string()),
        pending,
        delivered: count(&own, "delivered"),
        failed: count(&own, "failed"),
        deferred: count(&own, "deferred"),
        uncertain: count(&own, "uncertain"),
        last_run: journal.and_then(|j| last_run_view(&j.replayed)),
    }
}

/// Per shard, its recipients in the CSV that no journal settled.
fn pending(job_file: &Path, count: u32, latest: &HashMap<KeyId, Latest>) -> Option<Vec<u64>> {
    let job = Job::load(job_file).ok()?;
    let mut by_shard = vec![0u64; count as usize];
    for entry in job.recipients().ok()?.filter_map(Result::ok) {
        let Entry::Recipient(r) = entry else { continue };
        if !latest.contains_key(&key_id(&r.key)) {
            by_shard[Shard::of_key(&r.key, count) as usize] += 1;
        }
    }
    Some(by_shard)
}

/// `shard 1/4  pending 0, delivered 25, …; last run #1 started …`.
pub fn line(s: &ShardView) -> String {
    let pending = s.pending.map_or("unknown".into(), |p| p.to_string());
    let run = s.last_run.as_ref().map_or("no run".into(), last_run_text);
    format!(
        "shard {:<5} pending {pending}, delivered {}, failed {}, deferred {}, uncertain {}; last run {run}",
        s.shard, s.delivered, s.failed, s.deferred, s.uncertain
    )
}
