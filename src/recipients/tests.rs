//! CSV edge cases: BOM, ragged rows, non-UTF-8 cells, quoted newlines, duplicates, keys, header problems.

use std::path::Path;

use super::*;

fn spec() -> ColumnSpec {
    ColumnSpec { name: Some("name".into()), ..ColumnSpec::email("email") }
}

fn read(csv: &[u8], spec: &ColumnSpec) -> Vec<Result<Entry, RowError>> {
    read_with(csv, spec, limits())
}

fn limits() -> CsvLimits {
    crate::config::Limits::default().csv()
}

fn read_with(csv: &[u8], spec: &ColumnSpec, limits: CsvLimits) -> Vec<Result<Entry, RowError>> {
    RecipientReader::from_reader(csv, Path::new("r.csv"), spec, limits).map_err(|e| format!("{e:?}")).unwrap().collect()
}

fn rows(items: &[Result<Entry, RowError>]) -> Vec<String> {
    items
        .iter()
        .map(|item| match item {
            Ok(Entry::Recipient(r)) => format!("{} ok {}", r.row, r.mailbox.envelope()),
            Ok(Entry::Duplicate { row, first_row, .. }) => format!("{row} dup of {first_row}"),
            Ok(Entry::Suppressed { row, address, file }) => {
                format!("{row} suppressed {address} by {}", file.file_name().unwrap().to_string_lossy())
            }
            Err(e) => e.to_string(),
        })
        .collect()
}

#[test]
fn bom_quoted_newlines_and_line_numbers() {
    let csv = "\u{feff}email,name,note\na@example.com,Ann,\n\"b@example.com\",Bob,\"two\nlines\"\nc@example.com,,\n";
    let items = read(csv.as_bytes(), &spec());
    assert_eq!(rows(&items), ["2 ok a@example.com", "3 ok b@example.com", "5 ok c@example.com"]);
    let (Ok(Entry::Recipient(b)), Ok(Entry::Recipient(c))) = (&items[1], &items[2]) else { panic!() };
    assert_eq!((b.mailbox.name.as_deref(), b.fields[2].as_str()), (Some("Bob"), "two\nlines"));
    assert_eq!(c.mailbox.name, None);
}

#[test]
fn every_bad_row_is_reported_and_reading_goes_on() {
    let mut csv = b"email,name\na@example.com,Ann\nbroken\n".to_vec();
    csv.extend_from_slice(b"b@example.com,B\xffb\n");
    csv.extend_from_slice(b"not-an-address,C\nA@EXAMPLE.com,Ann again\nd@example.com,\"D\r\nBcc: x@example.com\"\n");
    csv.extend_from_slice(b"\"Eve\" <e@example.com>,Evelyn\ne@example.org,E\n");
    let got = rows(&read(&csv, &spec()));
    assert_eq!(
        got,
        [
            "2 ok a@example.com",
            "row 3: 1 fields where the header has 2",
            "row 4, column `name`: not valid UTF-8",
            "row 5, column `email`: invalid address \"not-an-address\": the address needs exactly one `@`",
            "6 dup of 2",
            "row 7, column `name`: control characters (CR, LF, …) are not allowed in a name (header injection)",
            "row 9, column `name`: the cell's display name \"Eve\" differs from the name column's \"Evelyn\"",
            "10 ok e@example.org",
        ]
    );
}

#[test]
fn key_column_is_the_identity_and_must_be_unique() {
    let spec = ColumnSpec { key: Some("id".into()), ..ColumnSpec::email("email") };
    let csv = b"id,email\n7,a@example.com\n7,b@example.com\n,c@example.com\n8,d@example.com\n";
    let items = read(csv, &spec);
    assert_eq!(
        rows(&items),
        [
            "2 ok a@example.com",
            "row 3: the key \"7\" was already used by row 2 for another address",
            "row 4, column `id`: the key is empty",
            "5 ok d@example.com",
        ]
    );
    let Ok(Entry::Recipient(d)) = &items[3] else { panic!() };
    assert_eq!(d.key, "8");
}

#[test]
fn without_a_key_column_the_key_is_the_folded_address() {
    let spec = ColumnSpec::email("mail");
    let items = read(b"mail\nAnn@Example.COM\n", &spec);
    let Ok(Entry::Recipient(r)) = &items[0] else { panic!() };
    assert_eq!(r.key, "ann@example.com");
}

#[test]
fn header_problems_are_all_reported_on_line_1() {
    let spec = ColumnSpec { name: Some("name".into()), key: Some("id".into()), ..ColumnSpec::email("email") };
    let Err(problems) = RecipientReader::from_reader(&b"mail,x,x\n"[..], Path::new("r.csv"), &spec, limits()) else {
        panic!("header accepted")
    };
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 4, "{text:?}");
    assert!(text[0].starts_with("r.csv:1: column `x` appears twice"), "{text:?}");
    assert!(text[1].contains("no column `email`"), "{text:?}");
    assert!(text[2].contains("no column `name`") && text[3].contains("no column `id`"), "{text:?}");
}

#[test]
fn rows_are_the_lines_an_editor_shows_with_crlf_and_blank_lines() {
    let spec = ColumnSpec::email("email");
    let csv = b"email,note\r\na@example.com,\r\n\r\nbad,\r\nb@example.com,\"x\r\ny\"\r\nc@example.com,\r\n";
    let got = rows(&read(csv, &spec));
    assert_eq!(
        got,
        [
            "2 ok a@example.com",
            "row 4, column `email`: invalid address \"bad\": the address needs exactly one `@`",
            "5 ok b@example.com",
            "7 ok c@example.com",
        ]
    );
}

#[test]
fn a_cell_over_cell_bytes_is_an_error_for_its_row_and_its_value_is_not_echoed() {
    let small = CsvLimits { cell_bytes: 100, ..limits() };
    let big = "x".repeat(101);
    let csv = format!("email,note\na@example.com,{big}\n{big}@example.com,\nb@example.com,ok\n");
    let got = rows(&read_with(csv.as_bytes(), &spec_email_only(), small));
    assert_eq!(
        got,
        [
            "row 2, column `note`: the cell is 101 bytes, more than [limits] cell_bytes (100)",
            "row 3, column `email`: the cell is 113 bytes, more than [limits] cell_bytes (100)",
            "4 ok b@example.com",
        ]
    );
    let long_address = format!("{}@example.com", "y".repeat(5000));
    let got = rows(&read_with(format!("email\n{long_address}\n").as_bytes(), &spec_email_only(), limits()));
    assert!(got[0].len() < 250 && got[0].contains("… (5012 bytes)"), "{got:?}");
}

#[test]
fn a_row_over_row_bytes_stops_reading_with_its_line() {
    let limits = CsvLimits { row_bytes: 1000, ..limits() };
    // A quote never closed: without the limit the record would run to the end of the file.
    let mut csv = b"email,note\na@example.com,fine\nb@example.com,\"open\n".to_vec();
    csv.extend(std::iter::repeat_n(b'z', 200_000));
    let got = rows(&read_with(&csv, &spec_email_only(), limits));
    assert_eq!(
        got,
        [
            "2 ok a@example.com",
            "row 3: the row is longer than [limits] row_bytes (1000 bytes); nothing after it was read"
        ]
    );
    let header = format!("email,{}\n", "h".repeat(200_000));
    let Err(problems) = RecipientReader::from_reader(header.as_bytes(), Path::new("r.csv"), &spec_email_only(), limits)
    else {
        panic!("a header of 200 kB was read")
    };
    assert_eq!(problems[0].to_string(), "r.csv:1: the header row is longer than [limits] row_bytes (1000)");
}

#[test]
fn more_columns_than_allowed_is_a_header_problem() {
    let limits = CsvLimits { columns: 3, ..limits() };
    let Err(problems) =
        RecipientReader::from_reader(&b"email,a,b,c\n"[..], Path::new("r.csv"), &spec_email_only(), limits)
    else {
        panic!("accepted")
    };
    assert_eq!(problems[0].to_string(), "r.csv:1: the header has 4 columns, more than [limits] columns (3)");
}

fn spec_email_only() -> ColumnSpec {
    ColumnSpec::email("email")
}

fn copies_spec(max: usize, fixed_bcc: Option<&str>) -> ColumnSpec {
    let fixed_bcc = fixed_bcc.map(|b| Mailbox::parse(b).unwrap());
    ColumnSpec {
        cc: Some("cc".into()),
        bcc: Some("bcc".into()),
        copy_rules: CopyRules { fixed_bcc, max },
        ..ColumnSpec::email("email")
    }
}

fn copies(item: &Result<Entry, RowError>) -> Vec<String> {
    let Ok(Entry::Recipient(r)) = item else { panic!("{item:?}") };
    r.copies.iter().map(|c| format!("{:?} {}", c.kind, c.mailbox.envelope())).collect()
}

#[test]
fn cc_and_bcc_cells_hold_zero_or_more_addresses_then_the_fixed_bcc() {
    let csv = "email,cc,bcc\n\
        a@example.com,\"\"\"Smith, J.\"\" <j@example.com>, k@bücher.example\",b1@example.com\n\
        b@example.com,,\n";
    let items = read(csv.as_bytes(), &copies_spec(10, Some("archive@example.com")));
    assert_eq!(
        copies(&items[0]),
        ["Cc j@example.com", "Cc k@xn--bcher-kva.example", "Bcc b1@example.com", "Bcc archive@example.com"]
    );
    let Ok(Entry::Recipient(a)) = &items[0] else { panic!() };
    assert_eq!(a.copies[0].mailbox.name.as_deref(), Some("Smith, J."));
    assert_eq!(copies(&items[1]), ["Bcc archive@example.com"]);
}

#[test]
fn bad_copies_are_row_errors_naming_the_column() {
    let csv = "email,cc,bcc\n\
        a@example.com,not an address,\n\
        b@example.com,B@Example.com,\n\
        c@example.com,x@example.com,X@example.com\n\
        d@example.com,x@example.com; y@example.com,\n\
        e@example.com,\"x@example.com,y@example.com\",z@example.com\n\
        f@example.com,x@example.com,x@example.com\n";
    let items = read(csv.as_bytes(), &copies_spec(2, None));
    let errors: Vec<String> =
        items.iter().map(|i| i.as_ref().map(|_| "ok".into()).unwrap_or_else(|e| e.to_string())).collect();
    assert!(errors[0].starts_with("row 2, column `cc`: invalid address \"not an address\""), "{}", errors[0]);
    assert_eq!(errors[1], "row 3, column `cc`: B@example.com is the row's own address; it cannot be a copy too");
    assert_eq!(errors[2], "row 4, column `bcc`: X@example.com is given twice among the row's copies (Cc and Bcc)");
    assert_eq!(
        errors[3],
        "row 5, column `cc`: \"x@example.com; y@example.com\": separate the addresses of a copy with `,`"
    );
    assert_eq!(
        errors[4],
        "row 6: 3 copies (Cc and Bcc, [message] bcc included), more than [recipients] max_copies (2)"
    );
    assert_eq!(errors[5], "row 7, column `bcc`: x@example.com is given twice among the row's copies (Cc and Bcc)");
}

#[test]
fn the_fixed_bcc_may_not_be_a_rows_own_address() {
    let csv = "email,cc,bcc\narchive@example.com,,\n";
    let items = read(csv.as_bytes(), &copies_spec(10, Some("Archive@example.com")));
    let error = items[0].as_ref().unwrap_err().to_string();
    assert_eq!(error, "row 2, column `email`: Archive@example.com is the row's own address and also [message] bcc");
}

#[test]
fn rows_on_a_suppression_list_are_suppressed_before_duplicates_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("suppressed.csv");
    std::fs::write(&list, "email,reason\nBOB@Bücher.example,bounced\n").unwrap();
    let suppression = Arc::new(Suppression::load(&[list]).unwrap());
    let csv = "email,name\nann@x.test,\nbob@xn--bcher-kva.example,\nBob@bücher.example,\nann@x.test,\n";
    let reader = RecipientReader::from_reader(csv.as_bytes(), Path::new("r.csv"), &spec(), limits()).unwrap();
    let items: Vec<_> = reader.excluding(suppression).collect();
    assert_eq!(
        rows(&items),
        [
            "2 ok ann@x.test",
            "3 suppressed bob@xn--bcher-kva.example by suppressed.csv",
            "4 suppressed bob@xn--bcher-kva.example by suppressed.csv",
            "5 dup of 2",
        ]
    );
}

/// A copy given twice is named where it was written: twice in one cell is not "Cc and Bcc", and a Cc or Bcc
/// equal to `[message] bcc` is the cell's fault (the fixed Bcc has no column; `email` is not it).
#[test]
fn a_copy_given_twice_names_the_cell_and_says_where_else() {
    let csv = "email,cc,bcc\n\
        a@example.com,\"x@example.com, X@example.com\",\n\
        b@example.com,archive@example.com,\n\
        c@example.com,,Archive@example.com\n\
        d@example.com,y@example.com,y@example.com\n";
    let items = read(csv.as_bytes(), &copies_spec(10, Some("archive@example.com")));
    let errors: Vec<String> =
        items.iter().map(|i| i.as_ref().map(|_| "ok".into()).unwrap_or_else(|e| e.to_string())).collect();
    assert_eq!(errors[0], "row 2, column `cc`: X@example.com is given twice in the cell");
    assert_eq!(errors[1], "row 3, column `cc`: archive@example.com is also [message] bcc");
    assert_eq!(errors[2], "row 4, column `bcc`: Archive@example.com is also [message] bcc");
    assert_eq!(errors[3], "row 5, column `bcc`: y@example.com is given twice among the row's copies (Cc and Bcc)");
}
