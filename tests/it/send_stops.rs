//! A reply that would fail for every recipient stops the job at once (issue 5), counted on the scripted
//! server: a refused login or a refused sender, then no retry loop, and nothing new started.

use mailshot::smtp::testing::MailServer;

use crate::common::send_job::{PASSWORD_ENV, SendJob, Smtp, addresses};
use crate::common::unique_tag;

/// A job whose every login the scripted server refuses.
fn refused_login(server: &MailServer, connections: u32) -> SendJob {
    server.reject_logins();
    let tag = unique_tag("stop-auth");
    let smtp = Smtp::scripted(server)
        .with(&format!("connections = {connections}"))
        .with("username = \"news\"")
        .with(&format!("password_env = \"{PASSWORD_ENV}\""))
        .with("allow_plaintext_auth = true");
    let mut job = SendJob::new(&tag, &smtp, addresses(&tag, 50), "");
    job.set_env(PASSWORD_ENV, "wrong");
    job
}

#[test]
fn a_refused_login_stops_the_job_after_one_try_per_connection() {
    let server = MailServer::start();
    let job = refused_login(&server, 3);
    job.send(&["--yes"]).expect(3).line_with(&["the job stopped", "535"]);
    assert!((1..=3).contains(&server.commands("AUTH")), "{} logins", server.commands("AUTH"));
    assert_eq!(server.commands("MAIL"), 0);
    assert_eq!(job.last_report().count("not sent"), 50);
}

#[test]
fn after_a_job_stopping_reply_nothing_new_is_started() {
    for _ in 0..5 {
        let server = MailServer::start();
        refused_login(&server, 3).send(&["--yes"]).expect(3);
        assert!(server.connections().0 <= 3, "{} connections for 3 workers", server.connections().0);

        let server = MailServer::start();
        let tag = unique_tag("stop-mail");
        let job = SendJob::new(&tag, &Smtp::scripted(&server).with("connections = 1"), addresses(&tag, 50), "");
        server.reject(&job.from, "553 5.7.1 Sender address rejected", u32::MAX);
        job.send(&["--yes"]).expect(3).line_with(&["the job stopped", "553"]);
        assert_eq!(server.commands("MAIL"), 1, "MAIL commands from one connection");
    }
}
