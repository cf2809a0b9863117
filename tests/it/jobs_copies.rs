//! Cc and Bcc per row (issue 20) without a server: `check` names every bad copy by file, row and column and
//! counts the good ones; `preview --row` prints the message as sent (a Cc header, no Bcc), and the review
//! page lists the envelope recipients with the Bcc ones marked.

use std::io::Read;

use base64::Engine;

use crate::jobs_support::{JobDir, MESSAGE, RECIPIENTS, SMTP};

/// The standard job with `cc` and `bcc` columns, `max_copies` and `[message] bcc` as given.
fn job(csv: &str, recipients_extra: &str, message_extra: &str) -> JobDir {
    let job = JobDir::new();
    let message = MESSAGE.replace("[message]\n", &format!("[message]\n{message_extra}"));
    let recipients = format!("{RECIPIENTS}cc = \"cc\"\nbcc = \"bcc\"\n{recipients_extra}");
    job.write("job.toml", format!("{SMTP}{message}{recipients}"));
    job.write("r.csv", csv);
    job
}

#[test]
fn check_counts_the_copies_of_valid_rows() {
    let csv = "email,name,cc,bcc\n\
        ann@example.com,Ann,\"\"\"Lee, Bo\"\" <bo@example.com>, cy@bücher.example\",\n\
        dan@example.com,Dan,,eve@example.com\n";
    let job = job(csv, "", "bcc = \"archive@example.com\"\n");
    job.run(&["check", "job.toml"]).expect(0).line_with(&["2 rows: 2 valid (5 copies: 2 Cc, 3 Bcc), 0 duplicates"]);
}

#[test]
fn check_names_each_bad_copy_by_row_and_column() {
    let csv = "email,name,cc,bcc\n\
        ann@example.com,Ann,not an address,\n\
        bob@example.com,Bob,BOB@example.com,\n\
        cy@example.com,Cy,x@example.com,X@example.com\n\
        dan@example.com,Dan,x@example.com; y@example.com,\n\
        eve@example.com,Eve,\"a@example.com, b@example.com\",c@example.com\n\
        fay@example.com,Fay,bo@example.com,\n";
    let job = job(csv, "max_copies = 2\n", "");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    run.line_with(&["error: r.csv:2: column `cc`: invalid address \"not an address\""]);
    run.line_with(&["error: r.csv:3: column `cc`: BOB@example.com is the row's own address; it cannot be a copy too"]);
    run.line_with(&["error: r.csv:4: column `bcc`: X@example.com is given twice among the row's copies"]);
    run.line_with(&["error: r.csv:5: column `cc`: \"x@example.com; y@example.com\": separate the addresses"]);
    run.line_with(&[
        "error: r.csv:6: 3 copies (Cc and Bcc, [message] bcc included), more than [recipients] max_copies (2)",
    ]);
    run.line_with(&["6 rows: 1 valid (1 copies: 1 Cc, 0 Bcc), 0 duplicates, 5 errors"]);
}

#[test]
fn check_refuses_a_bad_fixed_bcc_and_max_copies_over_99() {
    let job = job("email,name,cc,bcc\nann@example.com,Ann,,\n", "max_copies = 100\n", "bcc = \"archive\"\n");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    run.line_with(&["job.toml:4: [message] bcc: \"archive\": the address needs exactly one `@`"]);
    run.line_with(&["job.toml:14: [recipients] max_copies = 100: must be at most 99", "100 recipients"]);
    let job = job_with_columns_missing();
    job.run(&["check", "job.toml"]).expect(2).line_with(&["no column `cc` (the Cc column)"]);
}

fn job_with_columns_missing() -> JobDir {
    job("email,name\nann@example.com,Ann\n", "", "")
}

#[test]
fn preview_row_prints_the_cc_header_and_no_bcc_and_the_page_marks_bcc_in_the_envelope() {
    let csv = "email,name,cc,bcc\nann@example.com,Ann,\"\"\"Lee, Bo\"\" <bo@example.com>\",hidden@example.com\n";
    let job = job(csv, "", "bcc = \"archive@example.com\"\n");
    let run = job.run(&["preview", "job.toml", "--row", "2"]);
    run.expect(0);
    assert!(run.stdout.contains("Cc: \"Lee, Bo\" <bo@example.com>\r\n"), "{}", run.stdout);
    // No Bcc header and no Bcc address anywhere. (Not "no `bcc` anywhere": a hexadecimal MIME boundary or
    // Message-ID holds those three letters about once in a hundred runs.)
    let lower = run.stdout.to_ascii_lowercase();
    let bcc_header = lower.lines().any(|line| line.starts_with("bcc:"));
    assert!(!bcc_header && !lower.contains("hidden@") && !lower.contains("archive@"), "{}", run.stdout);

    job.run(&["preview", "job.toml"]).expect(0);
    let page = std::fs::read_to_string(job.path().join("preview/index.html")).unwrap();
    let packed = page.split("class=\"details\">").nth(1).unwrap().split("</script>").next().unwrap();
    let gzip = base64::engine::general_purpose::STANDARD.decode(packed).unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gzip[..]).read_to_string(&mut json).unwrap();
    let details: serde_json::Value = serde_json::from_str(&json).unwrap();
    let want = ["ann@example.com", "bo@example.com", "hidden@example.com (Bcc)", "archive@example.com (Bcc)"];
    assert_eq!(details[0]["envelope"], serde_json::json!(want));
}
