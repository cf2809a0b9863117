//! What a run's messages depend on, as one digest: the `[message]` and `[recipients]` settings and the
//! template files. A resumed run compares it with the journal's, because resuming with other templates
//! would send two different mailings under one campaign. `[smtp]`, `[rate]` and `[retry]` may change freely.

use std::path::Path;

use sha2::{Digest, Sha256};

pub fn of(job_file: &Path) -> Result<String, String> {
    let text = crate::config::read_job_file(job_file).map_err(|e| e.to_string())?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", job_file.display()))?;
    let dir = job_file.parent().unwrap_or(Path::new("."));
    let mut hash = Sha256::new();
    for section in ["message", "recipients"] {
        hash.update(section.as_bytes());
        if let Some(value) = table.get(section) {
            hash.update(toml::to_string(value).map_err(|e| e.to_string())?.as_bytes());
        }
    }
    let message = table.get("message").and_then(toml::Value::as_table);
    for key in ["text", "html"] {
        if let Some(path) = message.and_then(|m| m.get(key)).and_then(toml::Value::as_str) {
            let full = dir.join(path);
            let bytes = crate::input::read(&full, crate::config::limits::MESSAGE_BYTES_CEILING, "a template")
                .map_err(|e| e.to_string())?;
            hash.update(key.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
        }
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}
