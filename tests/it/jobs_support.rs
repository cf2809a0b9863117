//! Helpers for the job tests: a job folder in a fresh temp dir, and the binary run hermetically inside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A job folder in its own temp dir; dropped with the test.
pub struct JobDir {
    pub dir: tempfile::TempDir,
}

pub const SMTP: &str = "[smtp]\nserver = \"smtp.example.com\"\n";

/// A small valid job: text + html templates, three recipients.
pub const MESSAGE: &str = r#"[message]
from = "News <news@example.com>"
subject = "Hello {{ name }}"
text = "t/mail.txt"
html = "t/mail.html"
"#;

pub const RECIPIENTS: &str = "[recipients]\ncsv = \"r.csv\"\nname = \"name\"\n";

impl JobDir {
    pub fn new() -> JobDir {
        let job = JobDir { dir: tempfile::tempdir().unwrap() };
        job.write("t/mail.txt", "Hi {{ name }}\n");
        job.write("t/mail.html", "<p>Hi {{ name }}</p>\n");
        job.write("r.csv", "email,name\nann@example.com,Ann\nbob@example.com,Bob\ncy@example.com,Cy\n");
        job.write("job.toml", format!("{SMTP}{MESSAGE}{RECIPIENTS}"));
        job
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        write_in(self.path(), name, contents);
    }

    /// Runs `mailshot ARGS` in the job folder with an empty environment.
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), args)
    }
}

/// The memory a run on hostile input may use (RLIMIT_DATA: heap and other private writable mappings).
pub const HOSTILE_MEMORY_KIB: u64 = 300 * 1024;

/// As [`run_in`], for hostile input: the run must end within `limit` (it is killed and the test fails
/// otherwise) and within [`HOSTILE_MEMORY_KIB`] of memory (past it an allocation fails and the run aborts,
/// which `Run::expect` reports as a crash). Returns the run and how long it took.
pub fn run_within(dir: &Path, args: &[&str], limit: Duration) -> (Run, Duration) {
    let started = Instant::now();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -d {HOSTILE_MEMORY_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_mailshot"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(output) => (Run::from(output.unwrap()), started.elapsed()),
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            panic!("mailshot {args:?} did not end within {limit:?} (killed)");
        }
    }
}

pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    run_in_with(dir, args, &[])
}

/// As [`run_in`], with these variables set (e.g. the `password_env` that `check` wants set).
pub fn run_in_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailshot"));
    let output = command.args(args).current_dir(dir).env_clear().envs(env.iter().copied()).output().unwrap();
    Run::from(output)
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o
                .status
                .code()
                .unwrap_or_else(|| panic!("killed by {:?}; stderr:\n{}", o.status, String::from_utf8_lossy(&o.stderr))),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            raw_stdout: o.stdout,
        }
    }
}

impl Run {
    /// Asserts the exit code and that nothing panicked.
    pub fn expect(&self, code: i32) -> &Run {
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        assert_eq!(self.code, code, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts that some output line contains every one of `parts`.
    pub fn line_with(&self, parts: &[&str]) -> &Run {
        let all = format!("{}{}", self.stdout, self.stderr);
        assert!(all.lines().any(|l| parts.iter().all(|p| l.contains(p))), "no line with {parts:?} in:\n{all}");
        self
    }
}

/// The repository's sample job.
pub fn sample_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/announcement/job.toml")
}

/// Writes `dir/name`, creating the folders on the way.
pub fn write_in(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}
