//! What a run's messages depend on: the `[message]` and `[recipients]` settings and the template files. A
//! resumed run compares them with the journal's, because resuming with other templates would send two
//! different mailings under one campaign. `[smtp]`, `[rate]` and `[retry]` may change freely.
//!
//! Two forms: one digest of everything (`fingerprint`, what journals have always kept, so an older journal
//! still compares equal), and one digest per setting and file (`digests`), so that the refusal can say which
//! input changed. The CSV's rows and the attachments' contents are in neither: a resume matches recipients by
//! key, so fixing or adding rows is allowed. Nor is `[recipients] exclude`: a suppression list decides who is
//! sent to, never what, so adding one to a running campaign (or `bounces` growing it) sends fewer messages,
//! none different.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The inputs of a job's messages, digested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub fingerprint: String,
    /// `[message] subject`, `template text`, … → `sha256:…`.
    pub digests: BTreeMap<String, String>,
}

/// The digest key of a template file (`text` or `html`).
const TEMPLATE: &str = "template ";

pub fn of(job_file: &Path) -> Result<Inputs, String> {
    let text = crate::config::read_job_file(job_file).map_err(|e| e.to_string())?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", job_file.display()))?;
    if let Some(recipients) = table.get_mut("recipients").and_then(toml::Value::as_table_mut) {
        recipients.remove("exclude");
    }
    let dir = job_file.parent().unwrap_or(Path::new("."));
    let mut hash = Sha256::new();
    let mut digests = BTreeMap::new();
    for section in ["message", "recipients"] {
        hash.update(section.as_bytes());
        if let Some(value) = table.get(section) {
            hash.update(toml::to_string(value).map_err(|e| e.to_string())?.as_bytes());
        }
        for (key, value) in table.get(section).and_then(toml::Value::as_table).into_iter().flatten() {
            digests.insert(format!("[{section}] {key}"), hex(&Sha256::digest(value.to_string().as_bytes())));
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
            digests.insert(format!("{TEMPLATE}{key}"), hex(&Sha256::digest(&bytes)));
        }
    }
    Ok(Inputs { fingerprint: hex(&hash.finalize()), digests })
}

/// The inputs that differ between a journal's run and now, in words (`the text template templates/body.txt`,
/// `[message] subject`), sorted; `job_file` gives the templates' current names.
pub fn changed(before: &BTreeMap<String, String>, now: &Inputs, job_file: &Path) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(now.digests.keys()).collect();
    keys.into_iter()
        .filter(|key| before.get(*key) != now.digests.get(*key))
        .map(|key| describe(key, job_file))
        .collect()
}

fn describe(key: &str, job_file: &Path) -> String {
    let Some(kind) = key.strip_prefix(TEMPLATE) else { return key.to_owned() };
    let named = crate::config::read_job_file(job_file)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .and_then(|t| t.get("message")?.get(kind)?.as_str().map(str::to_owned));
    match named {
        Some(path) => format!("the {kind} template {path}"),
        None => format!("the {kind} template"),
    }
}

fn hex(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &Path, subject: &str, body: &str) -> std::path::PathBuf {
        let toml = format!(
            "[smtp]\nserver = \"127.0.0.1\"\nport = 36125\nsecurity = \"none\"\n\n[message]\n\
             from = \"News <news@example.test>\"\nsubject = \"{subject}\"\ntext = \"templates/body.txt\"\n\n\
             [recipients]\ncsv = \"r.csv\"\nname = \"name\"\n"
        );
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("templates/body.txt"), body).unwrap();
        std::fs::write(dir.join("job.toml"), toml).unwrap();
        dir.join("job.toml")
    }

    /// Journals written before per-input digests keep only the overall fingerprint: it must not change, or
    /// every such campaign would be refused as changed. The value is what mailshot wrote for this job before
    /// the digests were added (commit c5f49c2).
    #[test]
    fn the_overall_fingerprint_is_the_one_older_journals_hold() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = of(&job(dir.path(), "Hi {{ name }}", "Hello {{ name }}\n")).unwrap();
        assert_eq!(inputs.fingerprint, "sha256:c11c02d345281c436a98138bd2079e1994530f692db18aa7976ced0aa8c9c8f4");
    }

    #[test]
    fn changed_names_each_input_that_differs() {
        let dir = tempfile::tempdir().unwrap();
        let before = of(&job(dir.path(), "Hi", "Hello\n")).unwrap();
        let path = job(dir.path(), "Hello", "Hello\n");
        assert_eq!(changed(&before.digests, &of(&path).unwrap(), &path), ["[message] subject"]);
        let path = job(dir.path(), "Hi", "Changed\n");
        assert_eq!(changed(&before.digests, &of(&path).unwrap(), &path), ["the text template templates/body.txt"]);
        let mut fewer = before.digests.clone();
        fewer.remove("[recipients] name");
        assert_eq!(changed(&fewer, &before, &path), ["[recipients] name"], "a key added since");
    }

    #[test]
    fn a_suppression_list_added_or_changed_is_not_a_change_of_the_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = job(dir.path(), "Hi", "Hello\n");
        let before = of(&path).unwrap();
        let toml = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, toml.replace("name = \"name\"\n", "name = \"name\"\nexclude = [\"s.csv\"]\n")).unwrap();
        assert_eq!(of(&path).unwrap(), before);
    }
}
