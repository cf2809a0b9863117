//! What `send` refuses before anything goes out (exit 2, no connection, no journal): no confirmation
//! without a terminal, a job that `check` finds errors in; and `--dry-run`, which renders and sends nothing.

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;

/// (args, an edit to the valid job, exit code, a line of the output).
type Case = (&'static [&'static str], fn(&SendJob), i32, &'static [&'static str]);

const CASES: [Case; 3] = [
    (&[], |_| {}, 2, &["without a terminal", "--yes"]),
    (&["--yes"], |j| j.write("templates/body.txt", "Hello {{ nickname }}\n"), 2, &["nothing was sent"]),
    (&["--yes", "--dry-run"], |_| {}, 0, &["wrote 3 messages"]),
];

#[test]
fn nothing_reaches_the_server_without_yes_with_check_errors_or_in_a_dry_run() {
    for (args, edit, code, line) in CASES {
        let server = MailServer::start();
        let tag = unique_tag("preflight");
        let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 3), "");
        edit(&job);
        job.send(args).expect(code).line_with(line);
        assert_eq!(server.connections().0, 0, "{args:?}: the server was contacted");
        assert!(job.reports().is_empty(), "{args:?}: a report");
        // (A refused confirmation leaves an empty journal file behind: it is opened before asking.)
        let journal = std::fs::read(job.journal_path()).unwrap_or_default();
        assert!(journal.is_empty(), "{args:?}: journal records {}", String::from_utf8_lossy(&journal));
    }
}
