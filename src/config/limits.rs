//! `[limits]`: how much one job may make mailshot read, build and hold. The defaults are safe for a
//! machine with little memory (a run stays well under 300 MB whatever the CSV or templates hold) and
//! generous for real mailings; each can be raised up to a documented ceiling, never to "unlimited".
//!
//! Values stay raw (`toml::Value`) until [`LimitsSection::check`], so that a bad one is reported with its key
//! and line in our words (`[limits] cell_bytes: must be …`) rather than as a serde type error.

use serde::Deserialize;
use toml::Spanned;

use crate::recipients::CsvLimits;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The most `message_bytes` may be set to (and so the largest template file ever read).
pub const MESSAGE_BYTES_CEILING: u64 = 256 * MIB;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub cell_bytes: Option<Spanned<toml::Value>>,
    pub row_bytes: Option<Spanned<toml::Value>>,
    pub columns: Option<Spanned<toml::Value>>,
    pub message_bytes: Option<Spanned<toml::Value>>,
    pub queue_messages: Option<Spanned<toml::Value>>,
    pub queue_bytes: Option<Spanned<toml::Value>>,
}

/// The limits a job runs under, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest CSV cell, in bytes; a longer one is an error for its row.
    pub cell_bytes: u64,
    /// The longest CSV record (the header too), in bytes; reading stops at a longer one.
    pub row_bytes: u64,
    /// The most columns the header may have.
    pub columns: u64,
    /// The largest message, as submitted (headers, bodies, encoded attachments); rendering stops there.
    pub message_bytes: u64,
    /// Rendered messages queued ahead of the connections; `None`: 16 per connection + 4 (`producer::queue_depth`).
    pub queue_messages: Option<u64>,
    /// The bytes of rendered messages a run holds at once (queued, being sent, waiting for a retry).
    pub queue_bytes: u64,
}

/// One key: its name, its default, its ceiling, and whether it is a size (which may be written "25 MiB").
struct Key {
    name: &'static str,
    default: Option<u64>,
    ceiling: u64,
    size: bool,
}

const KEYS: [Key; 6] = [
    Key { name: "cell_bytes", default: Some(MIB), ceiling: 64 * MIB, size: true },
    Key { name: "row_bytes", default: Some(4 * MIB), ceiling: 256 * MIB, size: true },
    Key { name: "columns", default: Some(1_000), ceiling: 100_000, size: false },
    Key { name: "message_bytes", default: Some(25 * MIB), ceiling: MESSAGE_BYTES_CEILING, size: true },
    Key { name: "queue_messages", default: None, ceiling: 100_000, size: false },
    Key { name: "queue_bytes", default: Some(64 * MIB), ceiling: 4 * GIB, size: true },
];

impl Default for Limits {
    fn default() -> Self {
        let d = |i: usize| KEYS[i].default.unwrap_or_default();
        Limits {
            cell_bytes: d(0),
            row_bytes: d(1),
            columns: d(2),
            message_bytes: d(3),
            queue_messages: None,
            queue_bytes: d(5),
        }
    }
}

impl Limits {
    /// What the CSV reader needs.
    pub fn csv(&self) -> CsvLimits {
        CsvLimits { cell_bytes: self.cell_bytes, row_bytes: self.row_bytes, columns: self.columns }
    }
}

impl LimitsSection {
    /// Every value checked; the problems as (byte offset in the job file, message naming the key).
    pub fn check(&self) -> Result<Limits, Vec<(usize, String)>> {
        let given = [
            &self.cell_bytes,
            &self.row_bytes,
            &self.columns,
            &self.message_bytes,
            &self.queue_messages,
            &self.queue_bytes,
        ];
        let mut values = [None; 6];
        let mut problems = Vec::new();
        for (i, (key, value)) in KEYS.iter().zip(given).enumerate() {
            let Some(value) = value else {
                values[i] = key.default;
                continue;
            };
            match key.parse(value.get_ref()) {
                Ok(n) => values[i] = Some(n),
                Err(message) => problems.push((value.span().start, format!("[limits] {}: {message}", key.name))),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let v = |i: usize| values[i].unwrap_or_default();
        Ok(Limits {
            cell_bytes: v(0),
            row_bytes: v(1),
            columns: v(2),
            message_bytes: v(3),
            queue_messages: values[4],
            queue_bytes: v(5),
        })
    }
}

impl Key {
    fn parse(&self, value: &toml::Value) -> Result<u64, String> {
        let n = match value {
            toml::Value::Integer(n) => u64::try_from(*n).ok(),
            toml::Value::String(s) if self.size => size(s),
            _ => None,
        };
        match n {
            Some(n) if (1..=self.ceiling).contains(&n) => Ok(n),
            _ => Err(format!("must be {}; got {value}", self.expected())),
        }
    }

    fn expected(&self) -> String {
        if self.size {
            format!(
                "a whole number of bytes from 1 to {} ({}), or a size such as \"25 MiB\"",
                self.ceiling,
                human(self.ceiling)
            )
        } else {
            format!("a whole number from 1 to {}", self.ceiling)
        }
    }
}

/// `"25 MiB"`, `"64KiB"`, `"1 MB"`, `"100 B"` → bytes (1 kB = 1000, 1 KiB = 1024).
fn size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => KIB,
        "mb" => 1_000_000,
        "mib" => MIB,
        "gb" => 1_000_000_000,
        "gib" => GIB,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b % KIB == 0 => format!("{} KiB", b / KIB),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::JobFile;

    fn check(table: &str) -> Result<Limits, Vec<String>> {
        let text = format!("[smtp]\nserver = \"x.example\"\n[limits]\n{table}");
        let file = JobFile::parse(Path::new("job.toml"), &text).map_err(|e| vec![e.to_string()])?;
        file.limits
            .check()
            .map_err(|ps| ps.into_iter().map(|(at, m)| format!("{}: {m}", crate::config::line_of(&text, at))).collect())
    }

    #[test]
    fn defaults_are_documented_values() {
        let l = check("").unwrap();
        assert_eq!(l, Limits::default());
        assert_eq!((l.cell_bytes, l.row_bytes, l.columns), (MIB, 4 * MIB, 1_000));
        assert_eq!((l.message_bytes, l.queue_messages, l.queue_bytes), (25 * MIB, None, 64 * MIB));
    }

    #[test]
    fn sizes_may_be_written_with_units() {
        let l = check("cell_bytes = \"64 KiB\"\nmessage_bytes = \"10MB\"\nqueue_bytes = 1000\nqueue_messages = 8\n");
        let l = l.unwrap();
        assert_eq!(
            (l.cell_bytes, l.message_bytes, l.queue_bytes, l.queue_messages),
            (65_536, 10_000_000, 1000, Some(8))
        );
    }

    #[test]
    fn every_bad_value_is_refused_with_its_key_and_line() {
        let bad = [
            "cell_bytes = 0",
            "cell_bytes = -1",
            "row_bytes = 1e300",
            "row_bytes = inf",
            "columns = nan",
            "columns = 100001",
            "columns = \"10\"",
            "message_bytes = \"1 TiB\"",
            "message_bytes = \"300 MiB\"",
            "queue_messages = 1.5",
            "queue_bytes = true",
            "queue_bytes = \"5 GiB\"",
        ];
        for line in bad {
            let errors = check(line).unwrap_err();
            let key = line.split(' ').next().unwrap();
            assert_eq!(errors.len(), 1, "{line}: {errors:?}");
            assert!(errors[0].starts_with(&format!("4: [limits] {key}: must be ")), "{line}: {errors:?}");
        }
        let errors = check("cell_bytes = 0\ncolumns = 0\n").unwrap_err();
        assert_eq!(errors.len(), 2, "every problem at once: {errors:?}");
        assert!(check("colums = 5").unwrap_err()[0].contains("unknown field `colums`"));
    }
}
