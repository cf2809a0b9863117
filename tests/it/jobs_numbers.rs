//! Every number in the job file is checked by `check` (issue 11, observation 7): finite, positive where it is
//! a duration or a count, below its ceiling; the key and its line are named, exit 2; `send` refuses the job
//! before anything goes out.

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{SendJob, Smtp, addresses};
use crate::common::unique_tag;
use crate::jobs_support::{JobDir, MESSAGE, RECIPIENTS};

const SMTP: &str = "[smtp]\nserver = \"smtp.example.com\"\n";

#[test]
fn every_bad_number_is_named_with_its_key_and_line() {
    let cases = [
        ("[retry]\nmax_delay = 1e300\n", 12, "[retry] max_delay = 1e300: must be a number of seconds from 0.001"),
        ("[retry]\nmax_delay = inf\n", 12, "[retry] max_delay = inf"),
        ("[retry]\ninitial_delay = nan\n", 12, "[retry] initial_delay = NaN"),
        ("[retry]\nattempts = 0\n", 12, "[retry] attempts = 0: must be a whole number from 1 to 100"),
        ("[rate]\nper_second = 0\n", 12, "[rate] per_second = 0.0: must be a rate"),
        ("[rate]\nper_hour = inf\n", 12, "[rate] per_hour = inf"),
        ("[rate]\nburst = 0\n", 12, "[rate] burst = 0"),
        ("[rate]\nmax_per_day = 0\n", 12, "[rate] max_per_day = 0"),
        ("[smtp.timeouts]\ncommand = 0\n", 12, "[smtp] timeouts.command = 0.0: must be a number of seconds"),
        ("[smtp.timeouts]\ndata_end = -1\n", 12, "[smtp] timeouts.data_end = -1.0"),
        ("[smtp.timeouts]\ngreeting = nan\n", 12, "[smtp] timeouts.greeting = NaN"),
    ];
    for (table, line, message) in cases {
        let job = JobDir::new();
        job.write("job.toml", format!("{SMTP}{MESSAGE}{RECIPIENTS}{table}"));
        let run = job.run(&["check", "job.toml"]);
        run.expect(2).line_with(&[&format!("error: job.toml:{line}: {message}")]);
    }
    // Keys of [smtp] itself, on their own lines, all reported in one run.
    let job = JobDir::new();
    let smtp = "[smtp]\nserver = \"smtp.example.com\"\nport = 0\nconnections = 1000\nmax_messages_per_connection = 0\n\
                timeouts = { connect = 1e300 }\n";
    job.write("job.toml", format!("{smtp}{MESSAGE}{RECIPIENTS}"));
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    run.line_with(&["error: job.toml:3: [smtp] port = 0: must be a whole number from 1 to 65535"]);
    run.line_with(&["error: job.toml:4: [smtp] connections = 1000: must be a whole number from 1 to 100"]);
    run.line_with(&["error: job.toml:5: [smtp] max_messages_per_connection = 0"]);
    run.line_with(&["error: job.toml:6: [smtp] timeouts.connect = 1e300"]);
}

#[test]
fn two_paces_are_an_error_for_check_too() {
    let job = JobDir::new();
    job.write("job.toml", format!("{SMTP}{MESSAGE}{RECIPIENTS}[rate]\nper_second = 1\nper_minute = 10\n"));
    job.run(&["check", "job.toml"])
        .expect(2)
        .line_with(&["[rate]", "set only one of per_second, per_minute, per_hour"]);
}

/// The job of observation 7: `max_delay = 1e300` and a 450 reply used to panic a worker and hang the run.
/// Now `send` refuses the job (exit 2) and nothing reaches the server; flags are checked as the file is.
#[test]
fn send_refuses_a_bad_number_before_anything_is_sent() {
    let server = MailServer::start();
    let tag = unique_tag("numbers");
    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 3), "[retry]\nmax_delay = 1e300\n");
    server.reject(&job.recipients[0], "450 4.2.0 Busy", 1);
    job.send(&["--yes"]).expect(2).line_with(&["[retry] max_delay = 1e300"]);
    assert_eq!(server.connections().0, 0, "nothing may be sent");

    let job = SendJob::new(&tag, &Smtp::scripted(&server), addresses(&tag, 3), "");
    job.send(&["--yes", "--rate", "inf"]).expect(2).line_with(&["--rate inf: must be a rate"]);
    job.send(&["--yes", "--connections", "0"]).expect(2).line_with(&["--connections 0: must be a whole number"]);
    assert_eq!(server.connections().0, 0, "nothing may be sent");
}
