//! Wiring: turn parsed flags into work and the work's outcome into an exit code.

use std::io::{self, Write};
use std::process::ExitCode;

use chrono::Utc;

use crate::check::{self, Reporter};
use crate::cli::{CheckArgs, Cli, Command, InitArgs, ManArgs, PreviewArgs};
use crate::jobdef::Job;
use crate::output::{err_line, out_line};
use crate::{exit_codes, init, preview, shell};

pub fn run(cli: Cli) -> ExitCode {
    match &cli.command {
        Command::Check(args) => check(args),
        Command::Preview(args) => preview(args),
        Command::Init(args) => init(args),
        // A dry run is a preview: the exact messages, written to files; nothing is sent, no journal.
        Command::Send(args) if args.dry_run => {
            let limit = args.limit;
            preview(&PreviewArgs { job: args.job.clone(), out: None, limit, row: None, open: false, eml: false })
        }
        Command::Send(args) => ExitCode::from(crate::job::run::send(args)),
        Command::Status(args) => ExitCode::from(crate::job::status::run(args)),
        Command::Repair(args) => ExitCode::from(crate::job::repair::run(args)),
        Command::Probe(args) => crate::probe::run(args),
        Command::Bounces(args) => ExitCode::from(crate::bounces::run(args)),
        Command::Completions(args) => {
            shell::print(&shell::completions(args.shell));
            status(true)
        }
        Command::Man(args) => man(args),
    }
}

fn status(clean: bool) -> ExitCode {
    ExitCode::from(if clean { exit_codes::SUCCESS } else { exit_codes::INPUT_ERROR })
}

/// Problems and the summary go to stdout: they are the command's output. Warnings alone still exit 0.
/// `--shards N` adds a line per shard once the job is clean.
fn check(args: &CheckArgs) -> ExitCode {
    let summary = check::run(&args.job, io::stdout().lock(), Utc::now());
    let (Some(count), true) = (args.shards, summary.is_clean()) else { return status(summary.is_clean()) };
    match Job::load(&args.job)
        .map_err(|_| "the job cannot be read".to_owned())
        .and_then(|job| check::shards::lines(&job, count))
    {
        Ok(lines) => {
            lines.iter().for_each(|line| out_line(line));
            status(true)
        }
        Err(e) => {
            err_line(&format!("mailshot: {}: {e}", args.job.display()));
            status(false)
        }
    }
}

fn preview(args: &PreviewArgs) -> ExitCode {
    let job = match Job::load(&args.job) {
        Ok(job) => job,
        Err(failure) => {
            let mut reporter = Reporter::new(io::stderr().lock());
            failure.problems.into_iter().for_each(|p| reporter.report(p));
            let _ = reporter.finish();
            err_line(&format!(
                "mailshot: the job has errors; run `mailshot check {}` for all of them",
                args.job.display()
            ));
            return status(false);
        }
    };
    match args.row {
        Some(row) => preview_row(&job, row),
        None => preview_all(&job, args),
    }
}

fn preview_row(job: &Job, row: u64) -> ExitCode {
    match preview::one_row(job, row, Utc::now()) {
        // A reader that stopped early (`| head`) is not a failure; a full disk is.
        Ok(bytes) => match io::stdout().lock().write_all(&bytes) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                err_line(&format!("mailshot: cannot write the message to stdout: {e}"));
                status(false)
            }
            _ => status(true),
        },
        // Problems with the job's variables or its CSV name their own file and line, one per line.
        Err(preview::PreviewError::Recipients(problems)) => {
            problems.lines().for_each(|problem| err_line(&format!("mailshot: {problem}")));
            status(false)
        }
        Err(e) => {
            err_line(&format!("mailshot: {}: {e}", job.csv.display()));
            status(false)
        }
    }
}

fn preview_all(job: &Job, args: &PreviewArgs) -> ExitCode {
    let options = preview::Options { out: args.out.clone(), limit: args.limit, eml: args.eml };
    let mut reporter = Reporter::new(io::stderr().lock());
    let result = preview::write_all(job, &options, Utc::now(), &mut reporter);
    let errors = reporter.errors;
    let _ = reporter.finish();
    match result {
        Ok(w) => {
            let page = w.dir.join("index.html");
            out_line(&format!("wrote {} messages ({} bytes) to {}", w.messages, w.bytes, page.display()));
            if let Some(Err(instead)) = args.open.then(|| preview::open_in_browser(&page)) {
                out_line(&instead);
            }
            status(errors == 0)
        }
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            match e {
                preview::PreviewError::Interrupted(code) => ExitCode::from(code),
                _ => status(false),
            }
        }
    }
}

fn init(args: &InitArgs) -> ExitCode {
    match init::run(&args.dir) {
        Ok(job) => {
            out_line(&format!("created {}; next: mailshot check {0}, then mailshot preview {0}", job.display()));
            status(true)
        }
        Err(e) => {
            err_line(&format!("mailshot: {e}"));
            status(false)
        }
    }
}

/// `mailshot man`: the top page on stdout, or every page written into `--dir`.
fn man(args: &ManArgs) -> ExitCode {
    let Some(dir) = &args.dir else {
        return match shell::man_page() {
            Ok(page) => {
                shell::print(&page);
                status(true)
            }
            Err(e) => {
                err_line(&format!("mailshot: cannot render the manual page: {e}"));
                status(false)
            }
        };
    };
    match shell::write_man_pages(dir) {
        Ok(names) => {
            names.iter().for_each(|name| out_line(&dir.join(name).display().to_string()));
            status(true)
        }
        Err(_) if dir.exists() && !dir.is_dir() => {
            err_line(&format!(
                "mailshot: {}: not a folder; --dir names the folder to write the pages into",
                dir.display()
            ));
            status(false)
        }
        Err(e) => {
            err_line(&format!("mailshot: {}: {e}", dir.display()));
            status(false)
        }
    }
}
