//! `index.html`: the review page. One self-contained file (no network, no external assets, works from
//! `file://`) with its data embedded: a list of every message, and each message's headers, parts, source
//! and attachments.
//!
//! Written as the messages are rendered: rows go out in chunks of [`CHUNK`], so memory does not grow with
//! the mailing. A chunk is two elements: the list's rows as JSON, and the messages' details as gzip+base64
//! (mail text compresses ~10×; the page inflates one chunk when a row in it is selected).
//!
//! Nothing embedded is ever markup: JSON sits in `<script type="application/json">` with `<`, `>`, `&`
//! escaped (so `</script>` in a cell cannot close it), the page's script puts values in with
//! `textContent`, and the Content-Security-Policy allows only that one script, by its hash.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};

use base64::Engine;
use flate2::{Compression, write::GzEncoder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::inspect::Attachment;
use super::warnings::Warning;

/// Rows per chunk: small enough that a selection inflates little, large enough that chunks are few.
pub const CHUNK: usize = 256;
/// The raw source embedded per message; the rest is in `messages.mbox` (and the `.eml`, with `--eml`).
pub const RAW_SOURCE_BYTES: usize = 256 * 1024;
/// Rows not in the list that the summary names (all are counted).
const LISTED_SKIPPED: usize = 1000;

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");
/// The page's fixed elements, filled in by the script.
const SKELETON: &str = include_str!("page.html");

/// The job, as the summary names it.
pub struct JobInfo<'a> {
    pub job: &'a str,
    pub campaign: Option<&'a str>,
    pub columns: &'a [String],
}

/// One message: its line in the list and its details.
pub struct Message {
    pub row: u64,
    pub recipient: String,
    pub subject: String,
    pub size: usize,
    pub warnings: Vec<Warning>,
    pub fields: Vec<String>,
    /// The `.eml` file next to the page, when `--eml` wrote one.
    pub eml: Option<String>,
    /// The `RCPT TO` addresses in order (the row's own, then its copies), a Bcc one followed by ` (Bcc)`:
    /// the only place a Bcc copy shows, since no header names it.
    pub envelope: Vec<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub raw: Vec<u8>,
    /// Each attachment with the name of the file written next to the `.eml`.
    pub attachments: Vec<(Attachment, String)>,
}

#[derive(Serialize)]
struct Detail<'a> {
    envelope: &'a [String],
    text: Option<&'a str>,
    html: Option<&'a str>,
    raw: Cow<'a, str>,
    /// `raw` is all of the message (the page can then save it as `.eml`).
    whole: bool,
    attachments: Vec<AttachmentLine<'a>>,
}

#[derive(Serialize)]
struct AttachmentLine<'a> {
    name: &'a str,
    mime: &'a str,
    size: usize,
    file: &'a str,
}

#[derive(Default, Serialize)]
struct Summary {
    messages: u64,
    bytes: u64,
    largest: Option<(u64, usize)>,
    with_warnings: u64,
    /// code → (messages, first row)
    warnings: BTreeMap<&'static str, (u64, u64)>,
    skipped: u64,
    listed_skipped: Vec<(u64, String)>,
}

pub struct Page<W: Write> {
    out: W,
    /// The current chunk's list rows and details, as JSON arrays being written.
    rows: Vec<u8>,
    details: Vec<u8>,
    in_chunk: usize,
    summary: Summary,
}

impl<W: Write> Page<W> {
    pub fn start(mut out: W, job: &JobInfo<'_>) -> io::Result<Page<W>> {
        let csp = format!(
            "default-src 'none'; script-src '{}'; style-src 'unsafe-inline'; img-src data: https: http:; \
             base-uri 'none'; form-action 'none'",
            sha256_source(SCRIPT)
        );
        write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n<title>mailshot preview</title>\n\
             <style>{STYLE}</style></head><body>\n{SKELETON}"
        )?;
        let meanings: BTreeMap<_, _> = Warning::ALL.iter().map(|w| (w.code(), w.meaning())).collect();
        let info = serde_json::json!({
            "job": job.job, "campaign": job.campaign, "columns": job.columns, "meanings": meanings,
        });
        json_element(&mut out, "id=\"job-data\"", &info)?;
        Ok(Page { out, rows: Vec::new(), details: Vec::new(), in_chunk: 0, summary: Summary::default() })
    }

    pub fn add(&mut self, m: &Message) -> io::Result<()> {
        self.count(m);
        let codes: Vec<&str> = m.warnings.iter().map(|w| w.code()).collect();
        let row = (m.row, &m.recipient, &m.subject, m.size, codes, &m.fields, &m.eml);
        self.in_chunk += 1;
        let opening = if self.in_chunk == 1 { b'[' } else { b',' };
        self.rows.push(opening);
        serde_json::to_writer(&mut self.rows, &row).map_err(io::Error::other)?;
        let detail = Detail {
            envelope: &m.envelope,
            text: m.text.as_deref(),
            html: m.html.as_deref(),
            raw: raw_source(&m.raw, m.eml.as_deref(), self.summary.messages),
            whole: m.raw.len() <= RAW_SOURCE_BYTES,
            attachments: (m.attachments.iter())
                .map(|(a, file)| AttachmentLine { name: &a.name, mime: &a.mime, size: a.size, file })
                .collect(),
        };
        self.details.push(opening);
        serde_json::to_writer(&mut self.details, &detail).map_err(io::Error::other)?;
        if self.in_chunk == CHUNK { self.flush_chunk() } else { Ok(()) }
    }

    /// A row that is not in the list (unusable, a duplicate, or not rendered): counted and named.
    pub fn skipped(&mut self, row: u64, message: String) {
        self.summary.skipped += 1;
        if self.summary.listed_skipped.len() < LISTED_SKIPPED {
            self.summary.listed_skipped.push((row, message));
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.flush_chunk()?;
        let summary = serde_json::to_value(&self.summary).map_err(io::Error::other)?;
        json_element(&mut self.out, "id=\"summary-data\"", &summary)?;
        write!(self.out, "<script>{SCRIPT}</script>\n</body></html>\n")?;
        Ok(self.out)
    }

    fn count(&mut self, m: &Message) {
        let s = &mut self.summary;
        s.messages += 1;
        s.bytes += m.size as u64;
        if s.largest.is_none_or(|(_, size)| m.size > size) {
            s.largest = Some((m.row, m.size));
        }
        s.with_warnings += u64::from(!m.warnings.is_empty());
        for w in &m.warnings {
            s.warnings.entry(w.code()).or_insert((0, m.row)).0 += 1;
        }
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.in_chunk == 0 {
            return Ok(());
        }
        self.in_chunk = 0;
        self.rows.push(b']');
        let rows = std::str::from_utf8(&self.rows).map_err(io::Error::other)?;
        writeln!(self.out, "<script type=\"application/json\" class=\"rows\">{}</script>", script_safe(rows))?;
        self.rows.clear();
        self.details.push(b']');
        let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
        gzip.write_all(&self.details)?;
        let packed = base64::engine::general_purpose::STANDARD.encode(gzip.finish()?);
        self.details.clear();
        writeln!(self.out, "<script type=\"text/plain\" class=\"details\">{packed}</script>")
    }
}

/// The message as text, cut at [`RAW_SOURCE_BYTES`] with a note naming where all of it is: the `.eml`, or
/// the `nth` message of `messages.mbox`.
fn raw_source<'a>(raw: &'a [u8], eml: Option<&str>, nth: u64) -> Cow<'a, str> {
    if raw.len() <= RAW_SOURCE_BYTES {
        return String::from_utf8_lossy(raw);
    }
    let more = raw.len() - RAW_SOURCE_BYTES;
    let whole = match eml {
        Some(eml) => eml.to_owned(),
        None => format!("message {nth} of {}", super::mbox::FILE),
    };
    Cow::Owned(format!(
        "{}\n… {more} more bytes: the whole message is {whole}",
        String::from_utf8_lossy(&raw[..RAW_SOURCE_BYTES])
    ))
}

/// `<script type="application/json">` holding `value`, safe to embed whatever its strings contain.
fn json_element(out: &mut impl Write, attribute: &str, value: &serde_json::Value) -> io::Result<()> {
    let json = script_safe(&value.to_string());
    writeln!(out, "<script type=\"application/json\" {attribute}>{json}</script>")
}

/// JSON that no HTML parser can end early: `<`, `>` and `&` occur only inside strings, where `\u` escapes
/// mean the same to `JSON.parse`.
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// A CSP hash source (CSP3 §2.3.1) for an inline script's exact text.
fn sha256_source(script: &str) -> String {
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())))
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
