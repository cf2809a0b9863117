//! Sharding: one campaign split over N processes (Kubernetes Indexed Jobs, Slurm arrays, systemd template
//! units), each an ordinary run over the recipients whose key hashes to its index. The scheduler starts and
//! restarts the processes; mailshot only decides, the same way everywhere, which recipient is whose.
//!
//! The function is fixed and documented so that it never changes under a running campaign: the first 8 bytes
//! of SHA-256 over the recipient's key (the `key` column, or the lower-case envelope address: what the journal
//! is keyed by), read big-endian as a u64, modulo N. Not `std`'s `DefaultHasher`, whose output may change
//! between Rust releases. By key, not by row: rows added later move nobody.

pub mod layout;

use sha2::{Digest, Sha256};

use crate::config::rate::RateSection;
use crate::recipients::{Entry, RowError};

/// `MAILSHOT_SHARD=I/N`: the same as `--shard I/N`.
pub const SHARD_ENV: &str = "MAILSHOT_SHARD";
/// The index a Kubernetes Indexed Job gives each pod; `--shards N` reads it.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The most shards a campaign may have: far more than any sending setup needs (every shard reads the whole
/// CSV), and low enough that the per-shard tables (`check --shards`, `status`, the rate's split) stay small.
/// A count above it is a typo, refused before anything is allocated for it.
pub const MAX_SHARDS: u32 = 100_000;

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("{source_name} {value:?}: expected I/N with 0 <= I < N (e.g. 0/4)")]
    Malformed { source_name: String, value: String },
    #[error("{source_name} {value:?}: the shard count must be at least 1")]
    ZeroCount { source_name: String, value: String },
    #[error("{source_name} {value:?}: the index must be below the shard count (0 to {last})", last = count - 1)]
    IndexTooLarge { source_name: String, value: String, count: u32 },
    #[error("{source_name} {value:?}: at most {MAX_SHARDS} shards")]
    TooMany { source_name: String, value: String },
    #[error("--shards {count}: {INDEX_ENV} is not set (Kubernetes sets it in an Indexed Job; else use --shard I/N)")]
    MissingIndex { count: u32 },
    #[error("--shards {count}: {INDEX_ENV} {value:?} is not a whole number from 0 to {last}", last = count - 1)]
    BadIndex { count: u32, value: String },
    #[error("--shard {flag} and {SHARD_ENV}={env} disagree; give one of them")]
    Conflict { flag: String, env: String },
}

impl Shard {
    /// Which of `count` shards a key belongs to (see the module doc for the function).
    pub fn of_key(key: &str, count: u32) -> u32 {
        let digest = Sha256::digest(key.as_bytes());
        let first: [u8; 8] = digest[..8].try_into().expect("SHA-256 has 32 bytes");
        (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
    }

    pub fn contains(&self, key: &str) -> bool {
        Shard::of_key(key, self.count) == self.index
    }

    /// Whether a CSV record is this shard's to settle: a recipient (or its duplicate, or its suppressed row)
    /// by its key; a row that cannot be read has no key and is shard 0's, so that exactly one shard reports it.
    pub fn takes(&self, entry: &Result<Entry, RowError>) -> bool {
        match entry {
            Ok(Entry::Recipient(r)) => self.contains(&r.key),
            Ok(Entry::Duplicate { address, .. } | Entry::Suppressed { address, .. }) => self.contains(address),
            Err(_) => self.index == 0,
        }
    }

    /// `shard-I-of-N`: in the shard's journal, lock and report folder names.
    pub fn tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// `I/N`, as typed.
    pub fn spec(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    /// Parses `I/N`; `source_name` names where it came from (a flag or a variable) in the error.
    pub fn parse(value: &str, source_name: &str) -> Result<Shard, ShardError> {
        let (source_name, value_owned) = (source_name.to_owned(), value.to_owned());
        let malformed = || ShardError::Malformed { source_name: source_name.clone(), value: value_owned.clone() };
        let (i, n) = value.trim().split_once('/').ok_or_else(malformed)?;
        let index: u32 = i.trim().parse().map_err(|_| malformed())?;
        let count: u32 = n.trim().parse().map_err(|_| malformed())?;
        Shard::checked(index, count, &source_name, value)
    }

    fn checked(index: u32, count: u32, source_name: &str, value: &str) -> Result<Shard, ShardError> {
        let (source_name, value) = (source_name.to_owned(), value.to_owned());
        match (index, count) {
            (_, 0) => Err(ShardError::ZeroCount { source_name, value }),
            (_, n) if n > MAX_SHARDS => Err(ShardError::TooMany { source_name, value }),
            (i, n) if i >= n => Err(ShardError::IndexTooLarge { source_name, value, count: n }),
            _ => Ok(Shard { index, count }),
        }
    }
}

/// The shard this process runs, from `--shard I/N`, `--shards N` (with `JOB_COMPLETION_INDEX`) and
/// `MAILSHOT_SHARD`; `env` looks a variable up (the process's environment, or a table in tests). A flag and
/// the variable may both be given only when they agree.
pub fn resolve(
    flag: Option<&str>,
    shards: Option<u32>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Shard>, ShardError> {
    let from_env = env(SHARD_ENV).filter(|v| !v.trim().is_empty());
    let from_env = from_env.map(|v| Shard::parse(&v, SHARD_ENV).map(|s| (s, v))).transpose()?;
    let from_flag = match (flag, shards) {
        (Some(spec), _) => Some(Shard::parse(spec, "--shard")?),
        (None, Some(count)) => Some(from_index(count, env(INDEX_ENV))?),
        (None, None) => None,
    };
    match (from_flag, from_env) {
        (Some(flag), Some((env, text))) if flag != env => Err(ShardError::Conflict { flag: flag.spec(), env: text }),
        (Some(flag), _) => Ok(Some(flag)),
        (None, env) => Ok(env.map(|(shard, _)| shard)),
    }
}

fn from_index(count: u32, index: Option<String>) -> Result<Shard, ShardError> {
    let source_name = INDEX_ENV.to_owned();
    let index = index.ok_or(ShardError::MissingIndex { count })?;
    let value = format!("{}/{count}", index.trim());
    match index.trim().parse::<u32>() {
        Ok(i) => Shard::checked(i, count, &source_name, &value),
        Err(_) => Err(ShardError::BadIndex { count, value: index }),
    }
}

/// `total` split over `weights` so that the parts add up to `total` exactly: each gets the floor of its
/// share, and what the floors leave goes one each to the largest fractional parts, ties to the lower index
/// (with equal weights: shard i gets floor + 1 for i < total mod N).
pub fn split(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let left = total.saturating_sub(parts.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &i in order.iter().cycle().take(left as usize) {
        parts[i] += 1;
    }
    parts
}

/// The shards' weights from `shard_share` (equal when absent), relative to the largest, so that the sum of
/// huge weights does not overflow to infinity (which would give every shard a rate of 0).
fn weights(rate: &RateSection, count: u32) -> Result<Vec<f64>, String> {
    let n = count as usize;
    match &rate.shard_share {
        None => Ok(vec![1.0; n]),
        Some(w) if w.len() != n => {
            Err(format!("[rate] shard_share has {} weight(s) for {n} shards: give one per shard", w.len()))
        }
        Some(w) if w.iter().any(|x| !x.is_finite() || *x <= 0.0) => {
            Err("[rate] shard_share: every weight must be a positive number".into())
        }
        Some(w) => {
            let largest = w.iter().copied().fold(0.0, f64::max);
            Ok(w.iter().map(|x| x / largest).collect())
        }
    }
}

/// This shard's part of what is left of the campaign's daily budget (`left` of `max_per_day`, once other
/// campaigns' sends of the day are counted), split as [`part_of`] splits the whole.
pub fn budget_part(rate: &RateSection, shard: Shard, left: u64) -> Result<u64, String> {
    Ok(split(left, &weights(rate, shard.count)?)[shard.index as usize])
}

/// This shard's part of the campaign's `[rate]`: the rate and `max_per_day` split by `shard_share` (equal
/// parts when absent), the budget by [`split`] so that the parts add up to the campaign's.
pub fn part_of(rate: &RateSection, shard: Shard) -> Result<RateSection, String> {
    let weights = weights(rate, shard.count)?;
    let fraction = weights[shard.index as usize] / weights.iter().sum::<f64>();
    let per_second = rate.messages_per_second().map_err(|e| format!("[rate]: {e}"))?.map(|r| r * fraction);
    let parts = rate.max_per_day.map(|max| (max, split(max, &weights)));
    // The same split every day: a shard whose part is 0 would never send its recipients. Refused for every
    // shard of the campaign, so that none of them starts a campaign that cannot finish.
    if let Some((max, parts)) = parts.as_ref().filter(|(max, _)| *max > 0)
        && let Some(starved) = parts.iter().position(|&p| p == 0)
    {
        let spec = Shard { index: starved as u32, count: shard.count }.spec();
        return Err(format!(
            "[rate] max_per_day = {max} leaves shard {spec} nothing a day{}: it would never send its recipients. \
             Raise max_per_day, use fewer shards, or give that shard a larger weight",
            if rate.shard_share.is_some() { " with this shard_share" } else { "" }
        ));
    }
    let max_per_day = parts.map(|(_, parts)| parts[shard.index as usize]);
    Ok(RateSection { per_second, per_minute: None, per_hour: None, max_per_day, ..rate.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: a change of the function would move recipients of running campaigns to other shards. The
    /// numbers were computed outside Rust, from the documented definition (Python's hashlib:
    /// `int.from_bytes(sha256(key).digest()[:8], "big") % n`).
    #[test]
    fn keys_stay_in_their_shards() {
        let pinned = [("ada@example.test", 4, 1), ("bob@example.test", 4, 3), ("cy@example.test", 4, 0)];
        for (key, count, shard) in pinned {
            assert_eq!(Shard::of_key(key, count), shard, "{key} of {count}");
        }
        assert_eq!(Shard::of_key("customer-00017", 10), 7);
        assert_eq!(Shard::of_key("anything", 1), 0);
    }

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(Shard::parse("1/4", "--shard"), Ok(Shard { index: 1, count: 4 }));
        assert!(matches!(Shard::parse("4/4", "--shard"), Err(ShardError::IndexTooLarge { count: 4, .. })));
        assert!(matches!(Shard::parse("0/0", "--shard"), Err(ShardError::ZeroCount { .. })));
        assert_eq!(Shard::parse("0/100000", "--shard"), Ok(Shard { index: 0, count: MAX_SHARDS }));
        assert!(matches!(Shard::parse("0/100001", "--shard"), Err(ShardError::TooMany { .. })));
        for bad in ["1", "a/4", "1/", "-1/4", "1/4/5"] {
            assert!(matches!(Shard::parse(bad, "--shard"), Err(ShardError::Malformed { .. })), "{bad}");
        }
    }

    #[test]
    fn flag_variable_and_index_combine_only_when_they_agree() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        let two_of_four = Some(Shard { index: 2, count: 4 });
        assert_eq!(resolve(None, Some(4), env(&[(INDEX_ENV, "2")])), Ok(two_of_four));
        assert_eq!(resolve(None, None, env(&[(SHARD_ENV, "2/4")])), Ok(two_of_four));
        assert_eq!(resolve(Some("2/4"), None, env(&[(SHARD_ENV, "2/4")])), Ok(two_of_four));
        assert_eq!(resolve(None, None, env(&[])), Ok(None));
        assert!(matches!(resolve(Some("1/4"), None, env(&[(SHARD_ENV, "2/4")])), Err(ShardError::Conflict { .. })));
        assert_eq!(resolve(None, Some(4), env(&[])), Err(ShardError::MissingIndex { count: 4 }));
        assert!(matches!(resolve(None, Some(4), env(&[(INDEX_ENV, "x")])), Err(ShardError::BadIndex { .. })));
        assert!(matches!(resolve(None, Some(4), env(&[(INDEX_ENV, "4")])), Err(ShardError::IndexTooLarge { .. })));
        assert!(matches!(resolve(None, Some(0), env(&[(INDEX_ENV, "0")])), Err(ShardError::ZeroCount { .. })));
    }

    /// What a scheduler or a shell may hand over: whitespace and a newline are trimmed, a sign is read as
    /// the number it signs (the same shard), and anything else that is not ASCII digits is refused: never
    /// taken for another shard. An empty or blank MAILSHOT_SHARD is as if unset.
    #[test]
    fn hostile_index_and_shard_values_are_refused_or_mean_the_same_shard() {
        let with = |name: &'static str, value: &'static str| move |n: &str| (n == name).then(|| value.to_owned());
        let two = Ok(Some(Shard { index: 2, count: 4 }));
        for same in [" 2", "2\n", "+2", "02"] {
            assert_eq!(resolve(None, Some(4), with(INDEX_ENV, same)), two, "{same:?}");
        }
        for bad in ["", " ", "٢", "２", "-0", "2.0", "0x2", "2 3", "99999999999", "1e1"] {
            let got = resolve(None, Some(4), with(INDEX_ENV, bad));
            assert!(
                matches!(got, Err(ShardError::BadIndex { .. }) | Err(ShardError::IndexTooLarge { .. })),
                "{bad:?}: {got:?}"
            );
        }
        assert_eq!(resolve(None, None, with(SHARD_ENV, " 2 / 4 \n")), two);
        assert_eq!(resolve(None, None, with(SHARD_ENV, "  ")), Ok(None));
        for bad in ["٢/4", "2/٤", "2/4/", "/4", "2/", "2/-4", "2/4294967296", "2／4"] {
            assert!(resolve(None, None, with(SHARD_ENV, bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shard_limits_add_up_to_the_campaigns() {
        let rate = RateSection { per_minute: Some(600.0), max_per_day: Some(1001), ..RateSection::default() };
        let parts: Vec<RateSection> = (0..4).map(|index| part_of(&rate, Shard { index, count: 4 }).unwrap()).collect();
        let per_second: f64 = parts.iter().map(|p| p.per_second.unwrap()).sum();
        assert!((per_second - 10.0).abs() < 1e-9, "{per_second}");
        let budgets: Vec<u64> = parts.iter().map(|p| p.max_per_day.unwrap()).collect();
        assert_eq!(budgets, [251, 250, 250, 250]);
        let uneven = RateSection { shard_share: Some(vec![2.0, 1.0, 1.0]), ..rate.clone() };
        let first = part_of(&uneven, Shard { index: 0, count: 3 }).unwrap();
        assert_eq!((first.per_second, first.max_per_day), (Some(5.0), Some(501)));
        assert!(part_of(&uneven, Shard { index: 0, count: 4 }).unwrap_err().contains("3 weight(s) for 4 shards"));
        let zero = RateSection { shard_share: Some(vec![1.0, 0.0]), ..rate };
        assert!(part_of(&zero, Shard { index: 0, count: 2 }).unwrap_err().contains("positive"));
    }

    /// Weights so large that their sum overflows still share the rate (not 0 messages/s for everyone); a
    /// budget that leaves some shard nothing a day is refused, since that shard would never send.
    #[test]
    fn huge_weights_still_share_and_a_shard_with_no_budget_is_refused() {
        let rate = RateSection { per_second: Some(10.0), max_per_day: Some(1000), ..RateSection::default() };
        let huge = RateSection { shard_share: Some(vec![1e308, 1e308]), ..rate.clone() };
        let part = part_of(&huge, Shard { index: 1, count: 2 }).unwrap();
        assert_eq!((part.per_second, part.max_per_day), (Some(5.0), Some(500)));
        let three = RateSection { max_per_day: Some(3), ..rate.clone() };
        for index in 0..4 {
            let refused = part_of(&three, Shard { index, count: 4 }).unwrap_err();
            assert!(refused.contains("max_per_day = 3 leaves shard 3/4 nothing a day"), "{refused}");
        }
        let tiny = RateSection { shard_share: Some(vec![1e-7, 1.0]), ..rate };
        let refused = part_of(&tiny, Shard { index: 1, count: 2 }).unwrap_err();
        assert!(refused.contains("leaves shard 0/2 nothing a day"), "{refused}");
    }

    #[test]
    fn splits_add_up_exactly() {
        assert_eq!(split(10, &[1.0; 4]), [3, 3, 2, 2]);
        assert_eq!(split(3, &[1.0; 4]), [1, 1, 1, 0]);
        assert_eq!(split(1000, &[2.0, 1.0, 1.0]), [500, 250, 250]);
        assert_eq!(split(7, &[0.5, 0.25, 0.25]), [3, 2, 2]);
        for total in [0, 1, 999, 1_000_003] {
            for weights in [vec![1.0; 7], vec![3.0, 1.0, 0.5]] {
                assert_eq!(split(total, &weights).iter().sum::<u64>(), total, "{total} over {weights:?}");
            }
        }
    }
}
