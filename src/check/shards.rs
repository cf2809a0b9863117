//! `check --shards N`: how the recipients would split over N shards (`send --shard I/N`), with each shard's
//! part of `[rate]`, so that an uneven split or a budget that rounds to nothing is seen before sending.

use crate::job::shard::{self, Shard};
use crate::jobdef::Job;

/// Recipients per shard: the valid, first-seen rows, as `send` counts them (duplicates, suppressed and bad
/// rows go with the shard that reports them and are not sent).
pub fn sizes(job: &Job, count: u32) -> Option<Vec<u64>> {
    let mut sizes = vec![0u64; count as usize];
    for entry in job.recipients().ok()?.filter_map(Result::ok) {
        if let crate::recipients::Entry::Recipient(r) = entry {
            sizes[Shard::of_key(&r.key, count) as usize] += 1;
        }
    }
    Some(sizes)
}

/// One line per shard; `Err` names a `[rate] shard_share` that does not fit N.
pub fn lines(job: &Job, count: u32) -> Result<Vec<String>, String> {
    let sizes = sizes(job, count).ok_or("the recipients cannot be read")?;
    let line = |(index, size)| {
        let part = shard::part_of(&job.rate, Shard { index, count })?;
        let rate = part.per_second.map_or(String::new(), |r| format!(", {} messages/s", round(r)));
        let budget = part.max_per_day.map_or(String::new(), |m| format!(", {m} a day"));
        Ok(format!("shard {index}/{count}  {size} recipients{rate}{budget}"))
    };
    (0..count).zip(sizes).map(line).collect()
}

fn round(rate: f64) -> String {
    let text = format!("{rate:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
