//! A `send` job in a temp folder, the binary run against it with an otherwise empty environment, and
//! what a run leaves beside the job: the outcome reports and the journal.
//!
//! Every job carries a tag unique to the test run: it is in every recipient address and in the sender, so
//! the shared, persistent lab Maildir and Postfix log can be read for this run alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mailshot::smtp::testing::MailServer;

use crate::common::lab_env::Lab;
use crate::jobs_support::Run;

/// The variable the job names in `password_env`.
pub const PASSWORD_ENV: &str = "MAILSHOT_TEST_PASSWORD";

/// The `[smtp]` table and the password the run gets through [`PASSWORD_ENV`].
#[derive(Debug, Clone)]
pub struct Smtp {
    toml: String,
    password: Option<String>,
}

impl Smtp {
    /// A plaintext server on loopback without AUTH (the scripted server, the lab's relay port).
    pub fn plain(port: u16) -> Smtp {
        Smtp { toml: format!("server = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n"), password: None }
    }

    /// A plaintext server on loopback with AUTH, allowed over plaintext (a local relay).
    pub fn plain_auth(port: u16, user: &str, password: &str) -> Smtp {
        let auth = format!("username = \"{user}\"\npassword_env = \"{PASSWORD_ENV}\"\nallow_plaintext_auth = true");
        Smtp { password: Some(password.to_owned()), ..Smtp::plain(port).with(&auth) }
    }

    /// The scripted server of a test (`mailshot::smtp::testing::MailServer`).
    pub fn scripted(server: &MailServer) -> Smtp {
        Smtp::plain(server.port)
    }

    /// The lab's implicit-TLS port with AUTH, trusting the lab CA.
    pub fn lab_tls(lab: &Lab, password: &str) -> Smtp {
        Smtp::lab(lab, "tls", lab.tls_port, password)
    }

    /// A lab port with this `security` and AUTH, trusting the lab CA (also the wrong pairs users make).
    pub fn lab(lab: &Lab, security: &str, port: u16, password: &str) -> Smtp {
        let toml = format!(
            "server = \"localhost\"\nport = {port}\nsecurity = \"{security}\"\nusername = \"{}\"\n\
             password_env = \"{PASSWORD_ENV}\"\nca_file = \"{}\"\n",
            lab.user,
            lab.ca_file.display()
        );
        Smtp { toml, password: Some(password.to_owned()) }
    }

    /// One more `key = value` line in `[smtp]`.
    pub fn with(mut self, line: &str) -> Smtp {
        self.toml.push_str(line);
        self.toml.push('\n');
        self
    }
}

pub struct SendJob {
    dir: tempfile::TempDir,
    pub tag: String,
    pub from: String,
    /// In CSV order; row `i` (0-based) is CSV line `i + 2`, named `User i`.
    pub recipients: Vec<String>,
    password: Option<String>,
    env: Vec<(String, String)>,
}

/// `n` fresh addresses carrying `tag`.
pub fn addresses(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("r{i}-{tag}@example.test")).collect()
}

impl SendJob {
    /// A job sending `recipients` through `smtp`, from a sender unique to this job; `extra` holds more
    /// tables (`[rate]`, `[retry]`). Retries wait 0.1 s unless `extra` has its own `[retry]`.
    pub fn new(tag: &str, smtp: &Smtp, recipients: Vec<String>, extra: &str) -> SendJob {
        Self::with_from(tag, &format!("news-{tag}@example.test"), smtp, recipients, extra)
    }

    pub fn with_from(tag: &str, from: &str, smtp: &Smtp, recipients: Vec<String>, extra: &str) -> SendJob {
        let job = SendJob {
            dir: tempfile::tempdir().unwrap(),
            tag: tag.to_owned(),
            from: from.to_owned(),
            recipients,
            password: smtp.password.clone(),
            env: Vec::new(),
        };
        let retry = if extra.contains("[retry]") { "" } else { "[retry]\ninitial_delay = 0.1\nmax_delay = 0.5\n" };
        job.write(
            "job.toml",
            format!(
                "[smtp]\n{}\n[message]\nfrom = \"News <{from}>\"\nsubject = \"Hi {{{{ name }}}} ({{{{ code }}}})\"\n\
                 text = \"templates/body.txt\"\n\n[recipients]\ncsv = \"recipients.csv\"\nname = \"name\"\n\n\
                 {retry}{extra}",
                smtp.toml
            ),
        );
        job.write("templates/body.txt", "Hello {{ name }},\nyour code is {{ code }}.\n");
        let rows: String =
            job.recipients.iter().enumerate().map(|(i, r)| format!("{r},User {i},{}\n", code(tag, i))).collect();
        job.write("recipients.csv", format!("email,name,code\n{rows}"));
        job
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        crate::jobs_support::write_in(self.path(), name, contents);
    }

    /// Adds a column `name` to the recipients CSV, `value(i)` for row `i` (0-based), for templates to use.
    pub fn add_column(&self, name: &str, value: impl Fn(usize) -> String) {
        let path = self.path().join("recipients.csv");
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let mut writer = csv::Writer::from_writer(Vec::new());
        let header = reader.headers().unwrap().clone();
        writer.write_record(header.iter().chain([name])).unwrap();
        for (i, record) in reader.records().enumerate() {
            let extra = value(i);
            writer.write_record(record.unwrap().iter().chain([extra.as_str()])).unwrap();
        }
        self.write("recipients.csv", writer.into_inner().unwrap());
    }

    /// More `key = value` lines at the top of `[table]` (`message` or `recipients`) in `job.toml`.
    pub fn add_settings(&self, table: &str, lines: &str) {
        let path = self.path().join("job.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let head = format!("[{table}]\n");
        assert!(text.contains(&head), "no [{table}] in {text}");
        self.write("job.toml", text.replacen(&head, &format!("{head}{lines}\n"), 1));
    }

    /// Sets a variable for every later run (e.g. `MAILSHOT_NOW`).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// `mailshot send job.toml ARGS` in the job folder: no terminal, stdin closed, only PATH and the job's
    /// own variables set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailshot"));
        command.arg("send").arg("job.toml").args(args).current_dir(self.path()).env_clear().stdin(Stdio::null());
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        if let Some(password) = &self.password {
            command.env(PASSWORD_ENV, password);
        }
        command.envs(self.env.iter().map(|(n, v)| (n, v)));
        command
    }

    /// Runs `send` to its end.
    pub fn send(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Runs `send` with stdout and stderr into one file, as a terminal or cron's mail shows them: the exit
    /// code and the lines in the order they were written.
    pub fn send_interleaved(&self, args: &[&str]) -> (i32, String) {
        use std::io::{Read, Seek};
        let mut file = tempfile::tempfile().unwrap();
        let mut command = self.command(args);
        command.stdout(file.try_clone().unwrap()).stderr(file.try_clone().unwrap());
        let status = command.status().unwrap();
        let mut text = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        (status.code().expect("an exit code"), text)
    }

    /// Runs `send` on a terminal (a pty made by util-linux `script`) and answers its question with `answer`:
    /// the exit code and everything the terminal showed.
    pub fn send_on_a_terminal(&self, args: &[&str], answer: &str) -> (i32, String) {
        use std::io::Write;
        let line = std::iter::once(env!("CARGO_BIN_EXE_mailshot").to_owned())
            .chain(["send", "job.toml"].iter().chain(args).map(|a| (*a).to_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let command = self.command(&[]);
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).current_dir(self.path()).env_clear();
        script.envs(command.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))));
        let mut child = script.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
        (output.status.code().expect("an exit code"), text)
    }

    /// Starts `send` with its output piped (for [`Child::wait_with_output`]).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// Starts `send` with its output discarded (for a run that will be killed).
    pub fn spawn_quietly(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
    }

    /// The reports, oldest first.
    pub fn reports(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.path().join("reports")) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
        paths.sort();
        paths
    }

    /// The newest report, one row per CSV recipient.
    pub fn last_report(&self) -> Report {
        Report::read(self.reports().last().expect("a report"))
    }

    pub fn journal_path(&self) -> PathBuf {
        self.path().join("job.journal.jsonl")
    }

    /// The journal read through the run's own fold (`Replayed`, as a resume and `status` read it); `None`
    /// before the first run has created it.
    pub fn replayed(&self) -> Option<mailshot::job::journal::Replayed> {
        let file = std::fs::File::open(self.journal_path()).ok()?;
        let replayed = mailshot::job::journal::Replayed::read(file, chrono::Utc::now(), &self.journal_path());
        Some(replayed.unwrap_or_else(|e| panic!("{e}")))
    }

    /// Every journal line, each of which must be a whole JSON object.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.journal_path()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line {l:?}: {e}"))).collect()
    }

    /// The subject and the two body lines recipient `i` must get.
    pub fn personalised(&self, i: usize) -> (String, [String; 2]) {
        let code = code(&self.tag, i);
        (format!("Hi User {i} ({code})"), [format!("Hello User {i},"), format!("your code is {code}.")])
    }
}

fn code(tag: &str, i: usize) -> String {
    format!("{tag}-{i:04}")
}

/// One row of an outcome report.
#[derive(Debug, Clone)]
pub struct Row {
    pub row: u64,
    pub email: String,
    pub status: String,
    pub code: Option<u16>,
    pub enhanced: String,
    pub reply: String,
    pub attempts: u32,
    pub message_id: String,
    /// The copies (Cc/Bcc) the server rejected although the message went out.
    pub copies: String,
}

#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub rows: Vec<Row>,
}

pub const REPORT_HEADER: &str =
    "row,email,status,code,enhanced_code,reply,attempts,message_id,first_attempt,last_attempt,copies";

impl Report {
    pub fn read(path: &Path) -> Report {
        let mut reader = csv::Reader::from_path(path).unwrap();
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>().join(","), REPORT_HEADER);
        let rows = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                Row {
                    row: r[0].parse().unwrap(),
                    email: r[1].to_owned(),
                    status: r[2].to_owned(),
                    code: r[3].parse().ok(),
                    enhanced: r[4].to_owned(),
                    reply: r[5].to_owned(),
                    attempts: r[6].parse().unwrap(),
                    message_id: r[7].to_owned(),
                    copies: r[10].to_owned(),
                }
            })
            .collect();
        Report { path: path.to_owned(), rows }
    }

    /// Rows by email; every email appears once.
    pub fn by_email(&self) -> HashMap<String, Row> {
        let mut map = HashMap::new();
        for row in &self.rows {
            assert!(map.insert(row.email.clone(), row.clone()).is_none(), "{} twice in {:?}", row.email, self.path);
        }
        map
    }

    /// Rows per status.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for row in &self.rows {
            *counts.entry(row.status.clone()).or_default() += 1;
        }
        counts
    }

    pub fn count(&self, status: &str) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }

    pub fn emails_with(&self, status: &str) -> Vec<String> {
        self.rows.iter().filter(|r| r.status == status).map(|r| r.email.clone()).collect()
    }
}

/// The summary table's count for `name` (`delivered`, `failed`, …) from a run's stdout.
pub fn summary_count(stdout: &str, name: &str) -> u64 {
    let start = stdout.find("summary\n").unwrap_or_else(|| panic!("no summary in {stdout:?}"));
    stdout[start..]
        .lines()
        .find_map(|l| l.trim().strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` count in {stdout:?}"))
}
