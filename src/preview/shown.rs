//! What the page shows of one message: its line in the list, its warnings, its parts and source, and its
//! attachments read back from its bytes (`inspect`), with the names of the files `writer` puts beside the
//! page.

use super::{index, inspect, warnings};
use crate::recipients::{CopyKind, Recipient};
use crate::render::Rendered;

/// The page's view of `r`'s message; `eml` names its `.eml` file (written with `--eml`).
pub fn shown(
    r: &Recipient,
    bytes: Vec<u8>,
    rendered: &Rendered,
    warnings: Vec<warnings::Warning>,
    eml: bool,
) -> index::Message {
    let stem = format!("row-{:06}-{}", r.row, safe(&r.mailbox.envelope()));
    // Only a message built with attachments is multipart/mixed (`message::Draft`); the others have none to
    // read back, and are not parsed at all.
    let found = if rendered.attachments.is_empty() { Vec::new() } else { inspect::attachments(&bytes) };
    let attachments = (found.into_iter().enumerate())
        .map(|(i, attachment)| {
            let file = format!("{stem}.att{}-{}", i + 1, safe(&attachment.name));
            (attachment, file)
        })
        .collect();
    index::Message {
        row: r.row,
        recipient: display(r),
        subject: rendered.subject.clone(),
        size: bytes.len(),
        warnings,
        fields: r.fields.clone(),
        eml: eml.then(|| format!("{stem}.eml")),
        envelope: envelope(r),
        text: rendered.text.clone(),
        html: rendered.html.clone(),
        raw: bytes,
        attachments,
    }
}

/// The row's envelope recipients as the page lists them, hidden copies marked.
fn envelope(r: &Recipient) -> Vec<String> {
    let copies = r.copies.iter().map(|c| match c.kind {
        CopyKind::Cc => c.mailbox.envelope(),
        CopyKind::Bcc => format!("{} (Bcc)", c.mailbox.envelope()),
    });
    std::iter::once(r.mailbox.envelope()).chain(copies).collect()
}

/// A file-name-safe form of an address: ASCII letters, digits, `@`, `.`, `-`; anything else `_`.
fn safe(address: &str) -> String {
    address.chars().take(80).map(|c| if c.is_ascii_alphanumeric() || "@.-".contains(c) { c } else { '_' }).collect()
}

fn display(r: &Recipient) -> String {
    match &r.mailbox.name {
        Some(name) => format!("{name} <{}>", r.mailbox.header_address()),
        None => r.mailbox.header_address(),
    }
}
