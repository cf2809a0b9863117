//! Template variables against the CSV's columns, and the starter job's examples, run as a binary.

use crate::jobs_support::{JobDir, MESSAGE, SMTP, run_in, run_in_with};

/// The `error:` lines of an output, in order.
fn errors(output: &str) -> Vec<&str> {
    output.lines().filter(|l| l.starts_with("error: ")).collect()
}

/// A job whose CSV has `first_name` where the subject, the text and the HTML read `frist_name`.
fn misspelt() -> JobDir {
    let job = JobDir::new();
    let message = MESSAGE.replace("Hello {{ name }}", "Hello {{ frist_name }}");
    job.write("job.toml", format!("{SMTP}{message}[recipients]\ncsv = \"r.csv\"\n"));
    job.write("t/mail.txt", "Hi,\n\n{{ frist_name }} from {{ city }}\n{{ frist_name }} again\n");
    job.write("t/mail.html", "<p>\n{{ frist_name | upper }}</p>\n");
    job.write("r.csv", "email,first_name,city\nann@example.com,Ann,Lisbon\nbob@example.com,Bob,Oslo\n");
    job
}

const MISSPELT: &str = "\
error: job.toml:5: [message] subject: unknown variable `frist_name`: not a column of r.csv; did you mean `first_name`? (columns: `email`, `first_name`, `city`)
error: t/mail.txt:3: unknown variable `frist_name`: not a column of r.csv; did you mean `first_name`? (columns: `email`, `first_name`, `city`)
error: t/mail.html:2: unknown variable `frist_name`: not a column of r.csv; did you mean `first_name`? (columns: `email`, `first_name`, `city`)
";

#[test]
fn a_misspelt_column_is_named_in_every_template_once_with_the_columns_and_the_closest_one() {
    let job = misspelt();
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    let summary = "2 rows: 2 valid, 0 duplicates, 3 errors, 0 warnings; messages not built (fix the variables first)\n";
    assert_eq!(run.stdout, format!("{MISSPELT}{summary}"));
}

#[test]
fn send_and_preview_refuse_with_the_same_lines_as_check() {
    let job = misspelt();
    let expected: Vec<&str> = MISSPELT.lines().collect();
    let send = job.run(&["send", "--yes", "job.toml"]);
    send.expect(2).line_with(&["check found 3 error(s); nothing was sent"]);
    assert_eq!(errors(&send.stderr), expected, "{}", send.stderr);
    let preview = job.run(&["preview", "job.toml"]);
    preview
        .expect(2)
        .line_with(&["mailshot: the templates read variables the CSV does not give them", "nothing was written"]);
    assert_eq!(errors(&preview.stderr), expected, "{}", preview.stderr);
    assert!(!job.path().join("preview").exists(), "nothing is written");
    let one = job.run(&["preview", "job.toml", "--row", "2"]);
    one.expect(2);
    assert_eq!(one.stdout, "");
    // One line per problem, each naming its own file (not the CSV's, and no escaped line break between them).
    let said: Vec<String> = expected.iter().map(|l| format!("mailshot: {}", l.trim_start_matches("error: "))).collect();
    assert_eq!(one.stderr.lines().collect::<Vec<_>>(), said, "{}", one.stderr);
}

#[test]
fn a_variable_no_row_reaches_is_reported_and_the_rows_are_still_read() {
    let job = JobDir::new();
    job.write("t/mail.txt", "{% if name == \"Zoe\" %}\n{{ discount }}{% endif %}\n");
    job.write("r.csv", "email,name\nann@example.com,Ann\nnot-an-address,Bad\n");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    assert_eq!(
        errors(&run.stdout),
        [
            "error: t/mail.txt:2: unknown variable `discount`: not a column of r.csv (columns: `email`, `name`)",
            "error: r.csv:3: column `email`: invalid address \"not-an-address\": the address needs exactly one `@`",
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn what_tera_renders_without_the_variable_is_not_refused() {
    let job = JobDir::new();
    let text = "{% if vip %}VIP {% endif %}{% if opt is defined %}{{ opt }}{% endif %}{{ nick | default(value=name) }}\
                {% set greeting = \"Hi\" %}{{ greeting }}{% for w in name | split(pat=\" \") %}{{ w }}{% endfor %}\n";
    job.write("t/mail.txt", text);
    job.run(&["check", "job.toml"]).expect(0).line_with(&["3 rows: 3 valid", "0 errors"]);
    let eml = job.run(&["preview", "job.toml", "--row", "2"]);
    eml.expect(0).line_with(&["AnnHiAnn"]);
}

#[test]
fn campaign_is_a_template_variable_and_a_column_of_that_name_is_refused() {
    let job = JobDir::new();
    let message =
        format!("{MESSAGE}campaign = \"spring-26\"\nheaders = {{ \"X-Campaign\" = \"{{{{ campaign }}}}\" }}\n");
    job.write("job.toml", format!("{SMTP}{message}[recipients]\ncsv = \"r.csv\"\n"));
    job.write("t/mail.txt", "{{ campaign }} for {{ name }}\n");
    job.write("r.csv", "email,name\nann@example.com,Ann\n");
    let eml = job.run(&["preview", "job.toml", "--row", "2"]);
    eml.expect(0).line_with(&["X-Campaign: spring-26"]).line_with(&["spring-26 for Ann"]);

    job.write("r.csv", "email,name,campaign\nann@example.com,Ann,autumn\n");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    assert_eq!(
        errors(&run.stdout),
        ["error: r.csv:1: column `campaign` has the name of [message] campaign (job.toml:8), which templates read as \
          {{ campaign }}; rename the column (or remove the key)"],
        "{}",
        run.stdout
    );

    // Without the key, a column called `campaign` is the variable, as any column is.
    job.write("job.toml", format!("{SMTP}{MESSAGE}[recipients]\ncsv = \"r.csv\"\n"));
    job.run(&["preview", "job.toml", "--row", "2"]).expect(0).line_with(&["autumn for Ann"]);
    // Without either, the error says that the key is not set.
    job.write("r.csv", "email,name\nann@example.com,Ann\n");
    let run = job.run(&["check", "job.toml"]);
    run.expect(2);
    assert_eq!(
        errors(&run.stdout),
        ["error: t/mail.txt:1: unknown variable `campaign`: not a column of r.csv, and [message] campaign is not set \
          (columns: `email`, `name`)"]
    );
}

/// The starter job's commented-out settings (`# key = value`): the line numbers and the lines.
fn commented_examples(job: &str) -> Vec<(usize, String)> {
    let example = |line: &str| {
        let rest = line.strip_prefix("# ")?;
        let (key, _) = rest.split_once(" = ")?;
        key.chars().all(|c| c.is_ascii_lowercase() || c == '_').then(|| rest.to_owned())
    };
    job.lines().enumerate().filter_map(|(i, line)| Some((i, example(line)?))).collect()
}

fn uncommented(job: &str, examples: &[(usize, String)]) -> String {
    let lines = job.lines().enumerate();
    let lines = lines.map(|(i, line)| examples.iter().find(|(at, _)| *at == i).map_or(line, |(_, ex)| ex.as_str()));
    lines.map(|line| format!("{line}\n")).collect()
}

#[test]
fn every_commented_example_of_the_starter_job_checks_alone_and_together() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["init", "news"]).expect(0);
    let folder = dir.path().join("news");
    let starter = std::fs::read_to_string(folder.join("job.toml")).unwrap();
    let examples = commented_examples(&starter);
    let keys: Vec<&str> = examples.iter().map(|(_, ex)| ex.split(' ').next().unwrap()).collect();
    assert_eq!(keys, ["reply_to", "bcc", "attachments", "attachments_dir", "headers", "list_unsubscribe"]);
    let password = [("MAILSHOT_PASSWORD", "x")];
    // (`bcc` adds `(2 copies: 0 Cc, 2 Bcc)` after `valid`.)
    let clean = ["2 rows: 2 valid", "0 duplicates, 0 errors, 0 warnings"];
    for one in examples.chunks(1).chain([&examples[..]]) {
        std::fs::write(folder.join("job.toml"), uncommented(&starter, one)).unwrap();
        let run = run_in_with(&folder, &["check", "job.toml"], &password);
        assert_eq!(run.code, 0, "with {one:?} uncommented:\n{}{}", run.stdout, run.stderr);
        run.line_with(&clean);
    }
    // All together, the messages carry what the examples promise.
    let eml = run_in(&folder, &["preview", "job.toml", "--row", "2"]);
    eml.expect(0).line_with(&["Reply-To: \"Support\" <support@example.com>"]);
    let campaign = starter.lines().find_map(|l| l.strip_prefix("campaign = \"")).unwrap().split('"').next().unwrap();
    assert!(campaign.starts_with("news-20"), "{campaign}");
    eml.line_with(&[&format!("X-Campaign: {campaign}")]);
    eml.line_with(&["List-Unsubscribe: <https://example.com/unsubscribe/t-8f3a1c>"]);
    eml.line_with(&["filename=", "ticket-1001.txt"]);
    assert!(!eml.stdout.contains("archive@"), "the fixed Bcc is in no header:\n{}", eml.stdout);
}
