//! Properties of the parsers that take hostile input (issue 11): the SMTP reply parser (whatever a server
//! sends), the address parser and CSV → recipient (whatever a CSV holds), and the job-file loader (whatever
//! a careless edit leaves). On any input they do not panic, and what they keep is bounded by what they
//! were given and by their own caps. Inputs are small and the case counts modest, so the whole file runs
//! in a few seconds.

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use mailshot::config::{JobFile, Limits, numbers};
use mailshot::jobdef::Job;
use mailshot::recipients::{ColumnSpec, CsvLimits, Entry, Mailbox, RecipientReader};
use mailshot::smtp::reply::{self, MAX_LINE, MAX_REPLY};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Picks one of `parts` per element and concatenates them: inputs made of the pieces that matter to a
/// parser (separators, quotes, controls, multi-byte characters) are far likelier to reach its corners than
/// uniform random text.
fn pieces(parts: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(parts), 0..max).prop_map(|p| p.concat())
}

// ---- SMTP replies -------------------------------------------------------------------------------------

/// Something like a reply: lines of a code (valid or not), a separator and text, with CRLF, LF, a bare CR or
/// no line end; sometimes a line near or over the caps.
fn reply_bytes() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        4 => prop::sample::select(&["250", "220", "354", "421", "450", "550", "599"][..]).prop_map(String::from),
        1 => "[0-9a-z ]{0,4}",
    ];
    let sep = prop::sample::select(&[" ", "-", "", "x", "\t"][..]);
    let text = prop_oneof![
        4 => pieces(&["2.0.0 ", "5.1.1", " Ok", "queued as X", "\u{1b}[2J", "\u{9b}", "=cmd", "é", " ", ".", "4."], 8),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => (MAX_LINE - 8..MAX_LINE + 8).prop_map(|n| "x".repeat(n)),
    ];
    let end = prop::sample::select(&["\r\n", "\r\n", "\n", "\r", ""][..]);
    let line = (code, sep, text, end).prop_map(|(c, s, t, e)| format!("{c}{s}{t}{e}").into_bytes());
    prop_oneof![
        6 => prop::collection::vec(line, 0..8).prop_map(|lines| lines.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        // A multi-line reply that runs past MAX_REPLY in lines that are each within MAX_LINE.
        1 => (1000..4000usize, 10..80usize).prop_map(|(len, n)| {
            let line = format!("250-{}\r\n", "y".repeat(len));
            line.repeat(n).into_bytes()
        }),
    ]
}

/// Checks one parse of `buf` against the parser's contract and caps.
fn reply_contract(buf: &[u8]) -> Result<Option<usize>, TestCaseError> {
    match reply::parse(buf) {
        Ok(Some((reply, used))) => {
            prop_assert!(used > 0 && used <= buf.len() && used <= MAX_REPLY, "consumed {used} of {}", buf.len());
            prop_assert_eq!(buf[used - 1], b'\n');
            prop_assert!((200..=559).contains(&reply.code()));
            // Every line came from at most MAX_LINE bytes; lossy UTF-8 may triple an invalid byte, no more.
            prop_assert!(reply.lines().all(|l| l.len() <= 3 * MAX_LINE));
            let kept: usize = reply.lines().map(str::len).sum();
            prop_assert!(kept <= 3 * used, "kept {kept} bytes from {used}");
            let again = reply::parse(&buf[..used]).unwrap();
            prop_assert_eq!(again, Some((reply, used)), "a reply is delimited by its own bytes");
            Ok(Some(used))
        }
        // "Need more" only while under both caps: a server cannot make the buffer grow without end.
        Ok(None) => {
            prop_assert!(buf.len() < MAX_REPLY, "need more at {} bytes", buf.len());
            let last_line = buf.len() - buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            prop_assert!(last_line < MAX_LINE, "need more inside a line of {last_line} bytes");
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// No panic; the caps hold; and a prefix never answers differently from the whole, except "need more":
    /// a reply once parsed stays the same reply, an error stays an error however many bytes follow.
    #[test]
    fn the_reply_parser_keeps_its_contract_on_any_bytes(buf in reply_bytes(), cut in any::<prop::sample::Index>()) {
        reply_contract(&buf)?;
        let prefix = &buf[..cut.index(buf.len() + 1)];
        reply_contract(prefix)?;
        match (reply::parse(prefix), reply::parse(&buf)) {
            (Ok(None), _) => {}
            (Ok(Some(part)), whole) => prop_assert_eq!(Ok(Some(part)), whole),
            (Err(_), whole) => prop_assert!(whole.is_err(), "{:?}", whole),
        }
    }
}

// ---- Addresses ---------------------------------------------------------------------------------------

const ADDRESS_PIECES: &[&str] = &[
    "ann",
    "B",
    "o'neil",
    "+tag",
    "=",
    "-",
    ".",
    "..",
    "@",
    "@",
    "example",
    ".com",
    ".test",
    "xn--",
    "bücher",
    "ö",
    "ß",
    "\u{200d}",
    "한",
    "[1.2.3.4]",
    "1.2.3.4",
    "<",
    ">",
    "\"",
    "\\",
    ",",
    ";",
    ":",
    "(",
    ")",
    " ",
    "\t",
    "\r",
    "\n",
    "\u{0}",
    "\u{1b}",
    "\u{85}",
    "Lee, Ann",
    "\"Lee, Ann\"",
    "-x-",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// A cell shaped like an address (`local@domain`, perhaps with a display name), from parts that are valid,
/// nearly valid or not; then perhaps one piece dropped in anywhere.
fn address_cell() -> impl Strategy<Value = String> {
    let atom = pieces(&["ann", "b", "o'neil", "+tag", "=", "-", "x", "ö", "ß", "한", "_", "9"], 4);
    let local = prop::collection::vec(atom, 1..3).prop_map(|atoms| atoms.join("."));
    let label = prop_oneof![
        6 => prop::sample::select(&["example", "com", "test", "xn--bcher-kva", "bücher", "a-b", "1", "ß", "한국", "EXAMPLE"][..]),
        1 => prop::sample::select(&["-x", "x-", "xn--", "ab--c", "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"][..]),
    ];
    let domain = prop::collection::vec(label, 1..4).prop_map(|labels| labels.join("."));
    let name = prop::sample::select(&["", "Ann ", "\"Lee, Ann\" ", "Lee, Ann ", "\"a\\\"b\" ", "Zoë ", "=1+1 "][..]);
    let shaped = (name, local, domain, any::<bool>()).prop_map(|(name, local, domain, brackets)| {
        match (name.is_empty(), brackets) {
            (true, false) => format!("{local}@{domain}"),
            _ => format!("{name}<{local}@{domain}>"),
        }
    });
    let mutation = (prop::sample::select(ADDRESS_PIECES), any::<prop::sample::Index>(), prop::bool::weighted(0.25));
    (shaped, mutation).prop_map(|(cell, (piece, at, mutate))| {
        if !mutate {
            return cell;
        }
        let mut at = at.index(cell.len() + 1);
        while !cell.is_char_boundary(at) {
            at -= 1;
        }
        format!("{}{piece}{}", &cell[..at], &cell[at..])
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// No panic on any cell; an accepted address is a clean envelope address within RFC 5321's sizes that
    /// parses again to itself.
    #[test]
    fn the_address_parser_accepts_only_clean_bounded_addresses(
        cell in prop_oneof![4 => address_cell(), 1 => pieces(ADDRESS_PIECES, 12), 1 => any::<String>()]
    ) {
        let Ok(mailbox) = Mailbox::parse(&cell) else { return Ok(()) };
        let envelope = mailbox.envelope();
        prop_assert_eq!(envelope.matches('@').count(), 1, "{}", envelope);
        prop_assert!(!envelope.chars().any(|c| c.is_control() || c.is_whitespace() || "<>\"".contains(c)));
        prop_assert!(mailbox.local.len() <= 64 && envelope.len() <= 254, "{}", envelope);
        prop_assert!(mailbox.domain_ascii.is_ascii() && mailbox.domain_ascii.contains('.'));
        prop_assert_eq!(mailbox.domain_ascii.to_ascii_lowercase(), mailbox.domain_ascii.clone());
        if let Some(name) = &mailbox.name {
            prop_assert!(!name.chars().any(char::is_control) && name.len() <= cell.len());
        }
        let again = Mailbox::parse(&envelope);
        prop_assert!(again.is_ok(), "{} does not parse again: {:?}", envelope, again);
        let again = again.unwrap();
        prop_assert_eq!(again.envelope(), envelope);
        prop_assert_eq!(again.dedup_key(), mailbox.dedup_key());
    }
}

// ---- CSV → recipients --------------------------------------------------------------------------------

const CELL_PIECES: &[&str] = &[
    "ann@example.com",
    "Bob <bob@example.com>",
    "\"Lee, Ann\" <lee@example.com>",
    "x@y",
    "k1",
    "k2",
    "Ann",
    ",",
    "\"",
    "\"\"",
    "\n",
    "\r\n",
    "\r",
    " ",
    "\u{feff}",
    "é",
    "=1+1",
    "\u{1b}",
];

/// One cell in CSV quoting (always valid CSV, whatever it holds).
fn quoted(cell: &str) -> String {
    format!("\"{}\"", cell.replace('"', "\"\""))
}

/// A CSV: a header (the configured columns, or not quite) and rows: mostly three quoted cells (an address,
/// a name, a key), some raw pieces (unbalanced quotes, ragged rows, CR, BOM), sometimes bytes that are not
/// UTF-8; LF or CRLF line ends.
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        4 => prop::sample::select(&["email,name,key", "\u{feff}email,name,key"][..]),
        1 => prop::sample::select(&["email,key", "mail,name", ""][..]),
    ];
    let name = prop_oneof![
        4 => Just(""),
        1 => prop::sample::select(&["Ann", "Bob", "Lee, Ann", "a\nb", "Zoë", "=x", "a\u{1b}b"][..]),
    ];
    let key = prop::sample::select(&["k1", "k2", "k3", "", "K1", " "][..]);
    let row = prop_oneof![
        4 => (address_cell(), name, key).prop_map(|(a, n, k)| format!("{},{},{}", quoted(&a), quoted(n), quoted(k))),
        1 => pieces(CELL_PIECES, 10),
    ];
    let rows = prop::collection::vec(row, 0..12);
    let end = prop::sample::select(&["\n", "\r\n"][..]);
    let junk = prop::collection::vec(prop_oneof![Just(0xffu8), Just(0xc3u8), Just(b'"'), Just(b'\n')], 0..3);
    (header, rows, end, junk).prop_map(|(header, rows, end, junk)| {
        let mut csv = format!("{header}{end}{}", rows.join(end)).into_bytes();
        csv.extend(junk);
        csv
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// No panic; the reader ends, with at most one item per line; rows come in file order; every recipient
    /// has a field per column, none over `[limits] cell_bytes`, a non-empty key and an address that parses
    /// again; and all the fields kept add up to no more than the file (no amplification: memory is bounded
    /// by the input).
    #[test]
    fn csv_rows_become_recipients_without_panic_or_amplification(
        csv in csv_bytes(),
        keyed in any::<bool>(),
        small in any::<bool>(),
    ) {
        let spec = ColumnSpec {
            name: Some("name".into()),
            key: keyed.then(|| "key".into()),
            ..ColumnSpec::email("email")
        };
        // The default [limits], or small ones that these inputs reach.
        let limits = match small {
            false => Limits::default().csv(),
            true => CsvLimits { cell_bytes: 24, row_bytes: 96, columns: 3 },
        };
        let Ok(reader) = RecipientReader::from_reader(Cursor::new(&csv), Path::new("r.csv"), &spec, limits) else {
            return Ok(());
        };
        let columns = reader.columns().names.len();
        // The csv crate ends a record at LF, CRLF or a bare CR.
        let lines = csv.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
        let (mut items, mut last_row, mut kept) = (0, 0, 0);
        for item in reader.take(lines + 1) {
            items += 1;
            let row = match &item {
                Ok(Entry::Recipient(r)) => {
                    prop_assert_eq!(r.fields.len(), columns);
                    prop_assert!(r.fields.iter().all(|f| f.len() as u64 <= limits.cell_bytes), "{:?}", r.fields);
                    prop_assert!(!r.key.is_empty());
                    prop_assert!(Mailbox::parse(&r.mailbox.envelope()).is_ok(), "{}", r.mailbox.envelope());
                    kept += r.fields.iter().map(String::len).sum::<usize>();
                    r.row
                }
                Ok(Entry::Duplicate { row, first_row, .. }) => {
                    prop_assert!(first_row < row);
                    *row
                }
                Ok(Entry::Suppressed { row, .. }) => panic!("no list was given, yet row {row} was suppressed"),
                Err(e) => e.row,
            };
            prop_assert!(row >= last_row && row >= 1, "row {} after {}", row, last_row);
            last_row = row;
        }
        prop_assert!(items <= lines, "{} items from {} lines", items, lines);
        prop_assert!(kept <= csv.len(), "kept {} bytes of fields from {} bytes", kept, csv.len());
    }
}

// ---- The job file ------------------------------------------------------------------------------------

/// Numbers as TOML can write them: in range (mostly, so that files also pass `check`) and out, every kind
/// `check` must refuse, and the edges.
const GOOD_NUMBERS: &[&str] = &["1", "2", "30", "100", "1000", "0.001", "0.5", "86400", "20.25"];
const BAD_NUMBERS: &[&str] = &[
    "0",
    "101",
    "1001",
    "65535",
    "100000",
    "100001",
    "4294967295",
    "-1",
    "0.0",
    "-0.0",
    "0.0009",
    "86400.5",
    "1e300",
    "-1e300",
    "1e-300",
    "inf",
    "-inf",
    "nan",
    "2.5",
];

fn number() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => prop::sample::select(GOOD_NUMBERS), 1 => prop::sample::select(BAD_NUMBERS)]
}
const SMTP_KEYS: &[&str] = &["port", "connections", "max_messages_per_connection", "password_command_timeout"];
const TIMEOUT_KEYS: &[&str] = &["connect", "tls", "greeting", "command", "data", "data_block", "data_end"];
const RATE_KEYS: &[&str] = &["per_second", "per_minute", "per_hour", "burst", "max_per_day"];
const RETRY_KEYS: &[&str] = &["attempts", "initial_delay", "max_delay"];

/// `key = number` lines for some of `keys`, each key at most once.
fn numbers_for(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::btree_map(prop::sample::select(keys), number(), 0..4)
        .prop_map(|map| map.iter().map(|(k, v)| format!("{k} = {v}\n")).collect())
}

/// Job files as a careless edit leaves them: a valid job with numbers of every kind in `[smtp]`, its
/// timeouts, `[rate]` and `[retry]`, and sometimes a line that does not belong (wrong place, unknown key,
/// broken TOML) spliced in anywhere.
fn job_text() -> impl Strategy<Value = String> {
    let timeouts = prop::collection::btree_map(prop::sample::select(TIMEOUT_KEYS), number(), 0..3).prop_map(|map| {
        match map.is_empty() {
            true => String::new(),
            false => {
                let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("timeouts = {{ {} }}\n", pairs.join(", "))
            }
        }
    });
    let junk = prop_oneof![
        2 => (prop::sample::select(&["colour", "port", "subject", "burst"][..]), number())
            .prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop::sample::select(&["[smtp]", "[rate]", "[smtp", "[[retry]]", "x = \"{{\"", "= 1"][..]).prop_map(String::from),
        1 => pieces(&["=", "\"", "[", "]", "{", "}", "#", " ", "x", "\\", "é", "\u{0}"], 6),
    ];
    let junk = prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(junk, 1..3)];
    let sections = (numbers_for(SMTP_KEYS), timeouts, numbers_for(RATE_KEYS), numbers_for(RETRY_KEYS));
    (sections, junk, any::<prop::sample::Index>()).prop_map(|((smtp, timeouts, rate, retry), junk, at)| {
        let text = format!(
            "[smtp]\nserver = \"smtp.example.com\"\n{smtp}{timeouts}[message]\nfrom = \"a@example.com\"\n\
             subject = \"Hi {{{{ name }}}}\"\ntext = \"t.txt\"\n[recipients]\ncsv = \"r.csv\"\n\
             [rate]\n{rate}[retry]\n{retry}"
        );
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let at = at.index(lines.len() + 1);
        lines.splice(at..at, junk);
        lines.join("\n") + "\n"
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// No panic parsing; errors are one bounded line; and a file whose numbers pass `check` turns into
    /// durations and paces without panicking, all within the documented ceilings.
    #[test]
    fn the_job_file_parses_without_panic_and_checked_numbers_are_safe(text in job_text()) {
        let file = match JobFile::parse(Path::new("job.toml"), &text) {
            Ok(file) => file,
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.contains('\n') && message.len() <= 2 * text.len() + 512, "{}", message);
                return Ok(());
            }
        };
        if !numbers::check(&file).is_empty() {
            return Ok(());
        }
        let day = Duration::from_secs(86_400);
        let (initial, max) = (file.retry.initial(), file.retry.max());
        prop_assert!(initial <= day && max <= day);
        for attempt in 1..=file.retry.attempts() {
            prop_assert!(mailshot::job::policy::backoff(attempt, initial, max) <= max.mul_f64(1.25));
        }
        let t = file.smtp.timeouts.to_smtp();
        prop_assert!([t.connect, t.tls, t.greeting, t.command, t.data, t.data_block, t.data_end]
            .iter()
            .all(|d| *d >= Duration::from_millis(1) && *d <= day));
        prop_assert!(file.smtp.command_timeout() <= day);
        if let Ok(Some(rate)) = file.rate.messages_per_second() {
            let pace = mailshot::config::rate::Pace::per_second(rate, file.rate.burst());
            prop_assert!(pace.interval <= day && pace.burst >= 1);
        }
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// The whole loader (`check`'s and `send`'s first step), on a folder with the files the job names: no
    /// panic, and every problem is one line that names the job file.
    #[test]
    fn loading_a_job_reports_problems_as_lines_and_never_panics(text in job_text()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.txt"), "Hi {{ name }}\n").unwrap();
        std::fs::write(dir.path().join("r.csv"), "email,name\nann@example.com,Ann\n").unwrap();
        let path = dir.path().join("job.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(failure) = Job::load(&path) {
            prop_assert!(!failure.problems.is_empty());
            for problem in &failure.problems {
                prop_assert!(!problem.message.contains('\n'), "{}", problem.message);
                prop_assert!(problem.message.contains("job.toml") || problem.message.contains("t.txt"), "{}", problem.message);
            }
        }
    }
}
