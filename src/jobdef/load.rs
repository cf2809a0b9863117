//! From `job.toml` to a `Job`: parse, resolve paths against the job's folder, compile templates, and collect
//! every problem on the way instead of stopping at the first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use super::{Job, JobValue, Problem, RecipientsSource};
use crate::config::message::DEFAULT_ATTACHMENTS_DIR;
use crate::config::{self, JobFile, MessageSection, RecipientsSection};
use crate::message::{AttachmentDir, MessageIds, headers};
use crate::recipients::copies::{DEFAULT_MAX_COPIES, MAX_TRANSACTION_RECIPIENTS};
use crate::recipients::{ColumnSpec, CopyRules, Mailbox, Suppression};
use crate::render::{Origin, Source, Sources, Templates};

/// The job file's path and text, to turn spans into `file:line` places.
pub(super) struct JobText<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl JobText<'_> {
    fn place<T>(&self, spanned: &Spanned<T>) -> String {
        format!("{}:{}", self.path.display(), config::line_of(self.text, spanned.span().start))
    }

    fn origin<T>(&self, spanned: &Spanned<T>, key: &str) -> Origin {
        let line = config::line_of(self.text, spanned.span().start);
        Origin::Inline { file: self.path.to_owned(), line, key: key.to_owned() }
    }

    fn inline(&self, spanned: &Spanned<String>, key: &str) -> Source {
        Source { origin: self.origin(spanned, key), text: spanned.get_ref().clone() }
    }
}

/// Everything after a successful TOML parse; `problems` collects what is wrong. One list on purpose: every
/// check runs even after another failed, so that `check` names every problem at once.
pub(super) fn build(src: &JobText<'_>, file: JobFile, problems: &mut Vec<Problem>) -> Option<Job> {
    let dir = src.path.parent().unwrap_or(Path::new("")).to_owned();
    let missing = |section: &str| Problem::once(format!("{}: the [{section}] section is missing", src.path.display()));
    if file.message.is_none() {
        problems.push(missing("message"));
    }
    if file.recipients.is_none() {
        problems.push(missing("recipients"));
    }
    if let Err(e) = file.smtp.password_source() {
        problems.push(Problem::once(format!("{}: [smtp]: {e}", src.path.display())));
    }
    numbers(src, &file, problems);
    let limits =
        file.limits.check().unwrap_or_else(|errors| {
            problems.extend(errors.into_iter().map(|(at, m)| {
                Problem::once(format!("{}:{}: {m}", src.path.display(), config::line_of(src.text, at)))
            }));
            crate::config::Limits::default()
        });
    let (Some(message), Some(recipients)) = (file.message, file.recipients) else { return None };
    let suppression = Suppression::load(&exclude_paths(&dir, &recipients))
        .map_err(|errors| problems.extend(errors.iter().map(|e| Problem::once(e.to_string()))))
        .unwrap_or_default();
    let from = mailbox(src, &message.from, "[message] from", problems);
    let reply_to = message.reply_to.as_ref().map(|r| mailbox(src, r, "[message] reply_to", problems));
    let copy_rules = copy_rules(src, &message, &recipients, problems);
    let sources = sources(src, &dir, &message, limits.message_bytes, problems);
    let own = super::own::own_files(src.path, &message, &recipients, &file.smtp);
    let attachments = attachment_dir(src, &dir, &message, own, problems);
    let job_values = job_values(src, &message);
    let values = job_values.iter().map(|v| (v.name.to_owned(), v.value.clone())).collect();
    let templates = sources.and_then(|s| {
        Templates::compile(s)
            .map(|t| t.with_job_values(values))
            .map_err(|errors| problems.extend(errors.iter().map(|e| Problem::once(e.to_string()))))
            .ok()
    });
    let reply_to = match reply_to {
        Some(parsed) => Some(parsed?),
        None => None,
    };
    let from = from?;
    let (attachments, templates) = (attachments?, templates?);
    let seed = message.campaign.as_ref().map_or_else(|| absolute(src.path), |c| c.get_ref().clone());
    let ids = MessageIds::new(seed, from.domain_ascii.clone());
    Some(Job {
        path: src.path.to_owned(),
        campaign: message.campaign.as_ref().map(|c| c.get_ref().clone()),
        csv: dir.join(recipients.csv.get_ref()),
        columns: columns(&recipients, copy_rules),
        suppression: Arc::new(suppression),
        attachment_origins: message.attachments.iter().map(|a| src.origin(a, "[message] attachments")).collect(),
        smtp: file.smtp,
        rate: file.rate,
        retry: file.retry,
        limits,
        from,
        reply_to,
        attachments,
        templates,
        job_values,
        ids,
    })
}

/// The keys of `[message]` templates read as variables, where they are set.
fn job_values(src: &JobText<'_>, m: &MessageSection) -> Vec<JobValue> {
    let (name, key) = super::variables::CAMPAIGN;
    let line = |v: &Spanned<String>| config::line_of(src.text, v.span().start);
    m.campaign.iter().map(|c| JobValue { name, key, line: line(c), value: c.get_ref().clone() }).collect()
}

/// Every number out of its range (`config::numbers`), as `job.toml:LINE: [retry] max_delay = inf: must be …`,
/// and more than one of `[rate]`'s paces.
fn numbers(src: &JobText<'_>, file: &JobFile, problems: &mut Vec<Problem>) {
    let bad = config::numbers::check(file);
    for bad in &bad {
        let place = match config::key_line(src.text, &bad.path()) {
            Some(line) => format!("{}:{line}", src.path.display()),
            None => src.path.display().to_string(),
        };
        problems.push(Problem::once(format!("{place}: {bad}")));
    }
    if let (true, Err(e)) = (bad.is_empty(), file.rate.messages_per_second()) {
        problems.push(Problem::once(format!("{}: [rate]: {e}", src.path.display())));
    }
}

/// `[message] attachments_dir`: it must be a folder when something is attached.
fn attachment_dir(
    src: &JobText<'_>,
    dir: &Path,
    m: &MessageSection,
    own: crate::message::OwnFiles,
    problems: &mut Vec<Problem>,
) -> Option<AttachmentDir> {
    let base = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let default = Path::new(DEFAULT_ATTACHMENTS_DIR);
    let path = m.attachments_dir.as_ref().map_or(default, |d| d.get_ref().as_path());
    let needed = !m.attachments.is_empty();
    AttachmentDir::new(base, path, needed, own)
        .map_err(|e| {
            let place = match (&m.attachments_dir, m.attachments.first()) {
                (Some(d), _) => src.place(d),
                (None, Some(a)) => src.place(a),
                (None, None) => src.path.display().to_string(),
            };
            let full = base.join(path);
            problems.push(Problem::once(format!(
                "{place}: [message] attachments_dir: {}: {e} (attachments must be inside it)",
                full.display()
            )))
        })
        .ok()
}

fn mailbox(src: &JobText<'_>, value: &Spanned<String>, key: &str, problems: &mut Vec<Problem>) -> Option<Mailbox> {
    Mailbox::parse(value.get_ref())
        .map_err(|e| problems.push(Problem::once(format!("{}: {key}: {:?}: {e}", src.place(value), value.get_ref()))))
        .ok()
}

/// Reads the template files and gathers the inline templates; `None` when a file is missing or no body is set.
fn sources(
    src: &JobText<'_>,
    dir: &Path,
    m: &MessageSection,
    max_bytes: u64,
    problems: &mut Vec<Problem>,
) -> Option<Sources> {
    let before = problems.len();
    if m.text.is_none() && m.html.is_none() {
        problems.push(Problem::once(format!("{}: [message] needs `text`, `html` or both", src.place(&m.subject))));
    }
    let mut file = |key: &str, path: &Spanned<PathBuf>| {
        let full = dir.join(path.get_ref());
        crate::input::read_to_string(&full, max_bytes, "a template ([limits] message_bytes)")
            .map(|text| Source { origin: Origin::File(full.clone()), text })
            .map_err(|e| problems.push(Problem::once(format!("{}: {key}: {e}", src.place(path)))))
            .ok()
    };
    let text = m.text.as_ref().map(|p| file("[message] text", p));
    let html = m.html.as_ref().map(|p| file("[message] html", p));
    for (name, value) in &m.headers {
        if let Err(e) = headers::check_header_name(name) {
            problems.push(Problem::once(format!("{}: [message] headers: {e}", src.place(value))));
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(Sources {
        subject: src.inline(&m.subject, "[message] subject"),
        text: text.flatten(),
        html: html.flatten(),
        attachments: m.attachments.iter().map(|a| src.inline(a, "[message] attachments")).collect(),
        headers: m.headers.iter().map(|(n, v)| (n.clone(), src.inline(v, &format!("[message] headers.{n}")))).collect(),
        list_unsubscribe: m.list_unsubscribe.as_ref().map(|u| src.inline(u, "[message] list_unsubscribe")),
        return_path: m.return_path.as_ref().map(|u| src.inline(u, "[message] return_path")),
    })
}

/// Where the CSV is, which columns matter and the limits to read it under, as soon as `[recipients]` parsed.
pub(super) fn recipients_of(path: &Path, file: &JobFile) -> Option<RecipientsSource> {
    let r = file.recipients.as_ref()?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let csv = dir.join(r.csv.get_ref());
    let suppression = Arc::new(Suppression::load(&exclude_paths(dir, r)).unwrap_or_default());
    let fixed_bcc = file.message.as_ref().and_then(|m| Mailbox::parse(m.bcc.as_ref()?.get_ref()).ok());
    let max = r.max_copies.as_ref().map_or(DEFAULT_MAX_COPIES, |m| *m.get_ref() as usize);
    let columns = columns(r, CopyRules { fixed_bcc, max });
    Some(RecipientsSource { csv, columns, limits: file.limits.check().unwrap_or_default(), suppression })
}

/// `[recipients] exclude`, each relative to the job's folder.
fn exclude_paths(dir: &Path, r: &RecipientsSection) -> Vec<PathBuf> {
    r.exclude.iter().map(|p| dir.join(p.get_ref())).collect()
}

/// `[message] bcc` and `[recipients] max_copies`, each checked; the default in place of a bad value.
fn copy_rules(src: &JobText<'_>, m: &MessageSection, r: &RecipientsSection, problems: &mut Vec<Problem>) -> CopyRules {
    let fixed_bcc = m.bcc.as_ref().and_then(|b| mailbox(src, b, "[message] bcc", problems));
    let most = (MAX_TRANSACTION_RECIPIENTS - 1) as u64;
    let max = match &r.max_copies {
        None => DEFAULT_MAX_COPIES,
        Some(max) if *max.get_ref() <= most => *max.get_ref() as usize,
        Some(max) => {
            problems.push(Problem::once(format!(
                "{}: [recipients] max_copies = {}: must be at most {most} (with the row's own address, at most \
                 {MAX_TRANSACTION_RECIPIENTS} recipients in one transaction, the common provider limit)",
                src.place(max),
                max.get_ref()
            )));
            DEFAULT_MAX_COPIES
        }
    };
    CopyRules { fixed_bcc, max }
}

fn columns(r: &RecipientsSection, copy_rules: CopyRules) -> ColumnSpec {
    let column = |c: &Option<Spanned<String>>| c.as_ref().map(|c| c.get_ref().clone());
    ColumnSpec {
        email: r.email_column().to_owned(),
        name: column(&r.name),
        key: column(&r.key),
        cc: column(&r.cc),
        bcc: column(&r.bcc),
        copy_rules,
    }
}

/// The default Message-ID seed: the job file's absolute path (stable across runs, distinct between jobs).
fn absolute(path: &Path) -> String {
    path.canonicalize().unwrap_or_else(|_| path.to_owned()).to_string_lossy().into_owned()
}
