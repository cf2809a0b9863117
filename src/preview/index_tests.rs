use super::*;

const HOSTILE: &str = "</script><script>alert(1)</script><img src=x onerror=alert(2)>&amp;<!--";

fn message(row: u64, text: &str) -> Message {
    Message {
        row,
        recipient: HOSTILE.to_owned(),
        subject: HOSTILE.to_owned(),
        size: 10 + row as usize,
        warnings: vec![Warning::HttpLinks],
        fields: vec![HOSTILE.to_owned()],
        eml: Some(format!("row-{row}.eml")),
        envelope: vec![format!("r{row}@example.test"), "archive@example.test (Bcc)".to_owned()],
        text: Some(text.to_owned()),
        html: Some(HOSTILE.to_owned()),
        raw: HOSTILE.as_bytes().to_vec(),
        attachments: vec![],
    }
}

fn page(messages: &[Message]) -> String {
    let columns = ["email".to_owned()];
    let info = JobInfo { job: HOSTILE, campaign: Some(HOSTILE), columns: &columns };
    let mut page = Page::start(Vec::new(), &info).unwrap();
    for m in messages {
        page.add(m).unwrap();
    }
    page.skipped(99, HOSTILE.to_owned());
    String::from_utf8(page.finish().unwrap()).unwrap()
}

/// Every `<script` opened in the page is one we wrote: the data elements, then the one script at the end.
#[test]
fn hostile_values_cannot_open_or_close_an_element() {
    let html = page(&[message(2, "hi")]);
    let opened = html.matches("<script").count();
    assert_eq!(opened, 5, "job, rows, details, summary, the script:\n{html}");
    assert_eq!(html.matches("</script>").count(), opened, "{html}");
    assert!(!html.contains("<img") && !html.contains("<!--"), "{html}");
    let job = html.split("id=\"job-data\">").nth(1).unwrap().split("</script>").next().unwrap();
    let value: serde_json::Value = serde_json::from_str(job).unwrap();
    assert_eq!(value["job"], HOSTILE, "the escapes mean the same to a JSON parser");
}

#[test]
fn the_policy_allows_exactly_the_page_script() {
    let html = page(&[]);
    let script = html.rsplit("<script>").next().unwrap().split("</script>").next().unwrap();
    assert_eq!(script, SCRIPT);
    let policy = format!("script-src '{}';", sha256_source(script));
    assert!(html.contains(&policy), "{html}");
    assert!(html.contains("default-src 'none'"), "{html}");
}

#[test]
fn details_are_chunked_gzip_json_in_row_order() {
    let messages: Vec<Message> = (0..CHUNK as u64 + 3).map(|i| message(i + 2, &format!("text {i}"))).collect();
    let html = page(&messages);
    let chunks: Vec<&str> = html
        .split("<script type=\"text/plain\" class=\"details\">")
        .skip(1)
        .map(|c| c.split("</script>").next().unwrap())
        .collect();
    assert_eq!(chunks.len(), 2);
    let packed = base64::engine::general_purpose::STANDARD.decode(chunks[1]).unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&packed[..]), &mut json).unwrap();
    let details: serde_json::Value = serde_json::from_str(&json).unwrap();
    let texts: Vec<&str> = details.as_array().unwrap().iter().map(|d| d["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["text 256", "text 257", "text 258"]);
    assert_eq!(details[0]["envelope"], serde_json::json!(["r258@example.test", "archive@example.test (Bcc)"]));
    assert_eq!(html.matches("class=\"rows\"").count(), 2);
}

#[test]
fn the_summary_counts_sizes_warnings_and_skipped_rows() {
    let html = page(&[message(2, "a"), message(5, "b")]);
    let summary = html.split("id=\"summary-data\">").nth(1).unwrap().split("</script>").next().unwrap();
    let s: serde_json::Value = serde_json::from_str(summary).unwrap();
    assert_eq!((s["messages"].as_u64(), s["bytes"].as_u64()), (Some(2), Some(12 + 15)));
    assert_eq!(s["largest"], serde_json::json!([5, 15]));
    assert_eq!(s["warnings"]["http-links"], serde_json::json!([2, 2]));
    assert_eq!(s["skipped"], 1);
    assert_eq!(s["listed_skipped"][0][1], HOSTILE);
}

#[test]
fn a_long_source_is_cut_and_names_its_file() {
    let raw = vec![b'a'; RAW_SOURCE_BYTES + 5];
    let shown = raw_source(&raw, Some("row-2.eml"), 7);
    assert!(shown.ends_with("… 5 more bytes: the whole message is row-2.eml"), "{}", &shown[shown.len() - 60..]);
    let shown = raw_source(&raw, None, 7);
    let end = "… 5 more bytes: the whole message is message 7 of messages.mbox";
    assert!(shown.ends_with(end), "{}", &shown[shown.len() - 70..]);
    assert_eq!(raw_source(&raw[..RAW_SOURCE_BYTES], None, 7).len(), RAW_SOURCE_BYTES, "a source that fits is whole");
}
