//! `mailshot check`: each bad input is reported with its file and row/line, every problem in one run, exit 2.

use crate::jobs_support::{JobDir, MESSAGE, RECIPIENTS, SMTP};

#[test]
fn a_clean_job_exits_0_with_a_summary() {
    let job = JobDir::new();
    job.run(&["check", "job.toml"]).expect(0).line_with(&["3 rows: 3 valid, 0 duplicates, 0 errors, 0 warnings"]);
}

#[test]
fn an_unknown_key_names_the_file_and_line() {
    let job = JobDir::new();
    job.write("job.toml", format!("{SMTP}{MESSAGE}colour = \"red\"\n{RECIPIENTS}"));
    job.run(&["check", "job.toml"]).expect(2).line_with(&["error: job.toml: line 8, column 1: unknown field `colour`"]);
}

#[test]
fn an_unknown_smtp_key_is_reported_too() {
    let job = JobDir::new();
    job.write("job.toml", format!("[smtp]\nserver = \"x.example.com\"\nprot = 25\n{MESSAGE}{RECIPIENTS}"));
    job.run(&["check", "job.toml"]).expect(2).line_with(&["job.toml", "line 3", "prot"]);
}

#[test]
fn job_level_problems_are_all_reported_with_their_lines() {
    let job = JobDir::new();
    let message = MESSAGE
        .replace("News <news@example.com>", "News news@example.com")
        .replace("t/mail.txt", "t/missing.txt")
        .replace("[message]\n", "[message]\nheaders = { Bcc = \"x@example.com\" }\n");
    job.write("job.toml", format!("{SMTP}{message}{RECIPIENTS}"));
    job.write("t/mail.html", "<p>{{ name </p>");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    run.line_with(&["job.toml:4: [message] headers: `Bcc` is set by mailshot itself"]);
    run.line_with(&["job.toml:5: [message] from:", "a display name must be followed by <address>"]);
    run.line_with(&["job.toml:7: [message] text:", "missing.txt"]);
    // The CSV is still read in the same run.
    run.line_with(&["3 rows: 3 valid", "3 errors", "messages not built"]);
}

#[test]
fn template_syntax_errors_name_the_template_line() {
    let job = JobDir::new();
    job.write("t/mail.html", "<p>\n\n{{ name | }}\n");
    job.run(&["check", "job.toml"]).expect(2).line_with(&["error: ", "t/mail.html:3", "syntax error"]);
    let job = JobDir::new();
    job.write("job.toml", format!("{SMTP}{}{RECIPIENTS}", MESSAGE.replace("Hello {{ name }}", "Hello {{ name")));
    job.run(&["check", "job.toml"]).expect(2).line_with(&["job.toml:5: [message] subject: syntax error"]);
}

#[test]
fn every_bad_row_is_reported_with_its_row_and_column() {
    let job = JobDir::new();
    let mut csv =
        "\u{feff}email,name\nann@example.com,Ann\n,Empty\nnot-an-address,Bad\nragged@example.com\n".as_bytes().to_vec();
    csv.extend_from_slice(b"latin1@example.com,Andr\xe9\nANN@example.com,Ann again\nok@example.com,Ok\n");
    job.write("r.csv", csv);
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    run.line_with(&["error: ", "r.csv:3: column `email`: invalid address \"\": the address is empty"]);
    run.line_with(&["r.csv:4: column `email`: invalid address \"not-an-address\""]);
    run.line_with(&["r.csv:5: 1 fields where the header has 2"]);
    run.line_with(&["r.csv:6: column `name`: not valid UTF-8"]);
    run.line_with(&["warning: ", "r.csv:7: duplicate of row 2"]);
    run.line_with(&["7 rows: 2 valid, 1 duplicates, 4 errors, 1 warnings"]);
}

#[test]
fn duplicates_alone_are_a_warning_and_exit_0() {
    let job = JobDir::new();
    job.write("r.csv", "email,name\nann@example.com,Ann\nAnn@Example.com,Ann\n");
    job.run(&["check", "job.toml"])
        .expect(0)
        .line_with(&["r.csv:3: duplicate of row 2"])
        .line_with(&["1 valid, 1 duplicates"]);
}

#[test]
fn missing_columns_and_files_are_reported() {
    let job = JobDir::new();
    job.write("r.csv", "mail,nom\na@example.com,A\n");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2).line_with(&["r.csv:1: no column `email`"]).line_with(&["r.csv:1: no column `name`"]);
    std::fs::remove_file(job.path().join("r.csv")).unwrap();
    job.run(&["check", "job.toml"]).expect(2).line_with(&["r.csv: cannot open"]);
}

#[test]
fn runtime_template_errors_name_row_and_template_line_and_are_not_repeated_forever() {
    let job = JobDir::new();
    job.write("t/mail.txt", "Hi\n{{ throw(message=\"no ticket\") }}\n");
    let rows: String = (0..50).map(|i| format!("p{i}@example.com,P{i}\n")).collect();
    job.write("r.csv", format!("email,name\n{rows}"));
    let run = job.run(&["check", "job.toml"]);
    run.expect(2).line_with(&["error: r.csv:2: t/mail.txt: no ticket"]);
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("error:")).count(), 5, "{}", run.stdout);
    run.line_with(&["… and 45 more errors like:", "no ticket"]).line_with(&["50 rows: 0 valid", "50 errors"]);
}

#[test]
fn header_injection_rows_are_rejected() {
    let job = JobDir::new();
    let message = MESSAGE.replace("[message]\n", "[message]\nheaders = { \"X-Ref\" = \"{{ ref }}\" }\n");
    job.write("job.toml", format!("{SMTP}{message}{RECIPIENTS}"));
    let csv = "email,name,ref\nann@example.com,Ann,ok\nbob@example.com,Bob,\"x\r\nBcc: victim@example.com\"\ncy@example.com,\"Cy\r\nBcc: victim@example.com\",ok\n";
    job.write("r.csv", csv);
    let run = job.run(&["check", "job.toml"]);
    run.expect(2).line_with(&["r.csv:3: ", "headers.X-Ref", "header injection"]);
    run.line_with(&["r.csv:5: column `name`", "header injection"]);
}

#[test]
fn attachments_missing_or_outside_the_folder_are_row_errors() {
    let job = JobDir::new();
    let message = MESSAGE.replace("[message]\n", "[message]\nattachments = [\"{{ file }}\"]\n");
    job.write("job.toml", format!("{SMTP}{message}{RECIPIENTS}"));
    job.write("files/a.pdf", "%PDF");
    job.write("r.csv", "email,name,file\na@example.com,A,files/a.pdf\nb@example.com,B,files/none.pdf\nc@example.com,C,../../etc/passwd\n");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2).line_with(&["r.csv:3: job.toml:4: [message] attachments: attachment \"files/none.pdf\" not found"]);
    run.line_with(&["r.csv:4: ", "outside attachments_dir (files)"]);
}

#[test]
fn the_sample_job_is_clean() {
    let sample = crate::jobs_support::sample_job();
    crate::jobs_support::run_in_with(sample.parent().unwrap(), &["check", "job.toml"], &[("MAILSHOT_PASSWORD", "x")])
        .expect(0)
        .line_with(&["12 rows: 12 valid, 0 duplicates, 0 errors, 0 warnings"]);
}

#[test]
fn an_ip_address_as_domain_is_refused_with_the_reason() {
    let job = JobDir::new();
    job.write("r.csv", "email,name\nann@example.com,Ann\nip@1.2.3.4,Ip\n");
    job.run(&["check", "job.toml"]).expect(2).line_with(&["r.csv:3: column `email`", "\"ip@1.2.3.4\"", "IP address"]);
}

#[test]
fn a_csv_with_only_a_header_has_no_recipients_and_exits_2() {
    let job = JobDir::new();
    for csv in ["email,name\n", "email,name\r\n\r\n\r\n", "email,name"] {
        job.write("r.csv", csv);
        job.run(&["check", "job.toml"]).expect(2).line_with(&["error: r.csv: no recipients"]);
        job.run(&["send", "job.toml", "--yes"]).expect(2).line_with(&["r.csv: no recipients"]);
        assert!(!job.path().join("job.journal.jsonl").exists(), "{csv:?}: send went as far as the journal");
    }
}

#[test]
fn a_return_path_that_renders_to_no_address_is_a_row_error() {
    let job = JobDir::new();
    let message = MESSAGE.replace("[message]\n", "[message]\nreturn_path = \"bounces+{{ name }}@example.com\"\n");
    job.write("job.toml", format!("{SMTP}{message}{RECIPIENTS}"));
    job.write("r.csv", "email,name\nann@example.com,ann\nbob@example.com,Bob Smith\n");
    job.run(&["check", "job.toml"])
        .expect(2)
        .line_with(&["r.csv:3: [message] return_path: invalid address \"bounces+Bob Smith@example.com\""])
        .line_with(&["2 rows: 1 valid"]);
}
