//! The preview's second thread: writing — the page's JSON and gzip, the mbox, the attachment and `.eml`
//! files — runs beside the rendering and reading back (`shown`), in row order. On two cores a preview then
//! takes about as long as the slower half, not the sum (issue 14: a 100,000-row preview within 2× of
//! `check`, which renders alone).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};

use chrono::{DateTime, Utc};

use super::{PreviewError, index, io_error, mbox};

/// What the rendering half hands over, in row order.
pub enum Item {
    Message(Box<index::Message>),
    /// A row left out of the list, with the problem `check` would report.
    Skipped {
        row: u64,
        problem: String,
    },
}

/// Where a preview goes and what shapes it.
pub struct Target<'a> {
    pub dir: &'a Path,
    pub job: index::JobInfo<'a>,
    pub sender: String,
    pub date: DateTime<Utc>,
}

/// Messages and bytes written.
#[derive(Debug, Default)]
pub struct Totals {
    pub messages: u64,
    pub bytes: u64,
}

struct Files {
    index: PathBuf,
    mbox: PathBuf,
}

/// Opens the page and the mbox, then writes every item received, in order, until the sender hangs up.
/// Never writes to stderr: the rendering thread holds it locked (its `Reporter`).
/// Each batch goes back through `spent` once written, to be freed by the thread that allocated it: glibc's
/// `free` of another thread's memory contends for that thread's arena, which cost more than the split won.
pub fn write(
    target: &Target<'_>,
    batches: Receiver<Vec<Item>>,
    spent: Sender<Vec<Item>>,
) -> Result<Totals, PreviewError> {
    let files = Files { index: target.dir.join("index.html"), mbox: target.dir.join(mbox::FILE) };
    let file = BufWriter::new(File::create(&files.index).map_err(io_error(&files.index))?);
    let mut page = index::Page::start(file, &target.job).map_err(io_error(&files.index))?;
    let file = BufWriter::new(File::create(&files.mbox).map_err(io_error(&files.mbox))?);
    let mut mbox = mbox::Mbox::new(file, &target.sender, target.date);
    let mut totals = Totals::default();
    for batch in batches {
        for item in &batch {
            let message = match item {
                Item::Message(message) => message,
                Item::Skipped { row, problem } => {
                    page.skipped(*row, problem.clone());
                    continue;
                }
            };
            mbox.add(&message.raw).map_err(io_error(&files.mbox))?;
            files_of(target.dir, message)?;
            page.add(message).map_err(io_error(&files.index))?;
            totals.messages += 1;
            totals.bytes += message.size as u64;
        }
        let _ = spent.send(batch);
    }
    page.finish().and_then(|mut f| f.flush()).map_err(io_error(&files.index))?;
    mbox.finish().flush().map_err(io_error(&files.mbox))?;
    Ok(totals)
}

/// The message's `.eml` (with `--eml`) and its attachments, under the names `shown` gave them.
fn files_of(dir: &Path, message: &index::Message) -> Result<(), PreviewError> {
    if let Some(eml) = &message.eml {
        fs::write(dir.join(eml), &message.raw).map_err(io_error(&dir.join(eml)))?;
    }
    for (attachment, file) in &message.attachments {
        fs::write(dir.join(file), &attachment.bytes).map_err(io_error(&dir.join(file)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// The renderer learns the writer is gone from its next send, and the error names the file.
    #[test]
    fn a_writer_that_cannot_write_hangs_up_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let columns = ["email".to_owned()];
        let job = index::JobInfo { job: "job.toml", campaign: None, columns: &columns };
        let target = Target { dir: &missing, job, sender: "a@example.com".to_owned(), date: Utc::now() };
        let (items, batches) = mpsc::sync_channel(1);
        let (spent, _) = mpsc::channel();
        let written = std::thread::scope(|scope| scope.spawn(|| write(&target, batches, spent)).join().unwrap());
        let error = written.unwrap_err().to_string();
        assert!(error.contains("missing/index.html"), "{error}");
        assert!(items.send(Vec::new()).is_err(), "the renderer's next send fails, so it stops");
    }
}
