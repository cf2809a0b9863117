//! The preview page in a real browser (headless Chromium over WebDriver): what a person does with it, and
//! what the page must never do (run the mailing's script, load anything before it is asked to).

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fantoccini::Locator;

use crate::common::browser::{Browser, browser, page_of};
use crate::jobs_preview::{copy_dir, mbox_messages};
use crate::jobs_support::{JobDir, run_in, sample_job};

/// The sample job, copied to a temp dir and previewed.
fn sample_preview() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(sample_job().parent().unwrap(), copy.path());
    run_in(copy.path(), &["preview", "job.toml"]).expect(0);
    copy
}

async fn select_row(b: &Browser, row: u64) {
    b.wait_until(&format!("return !!document.querySelector('.row[data-row=\"{row}\"]')")).await;
    b.client.find(Locator::Css(&format!(".row[data-row=\"{row}\"]"))).await.unwrap().click().await.unwrap();
    b.wait_until(&format!("return document.getElementById('message').dataset.row === '{row}'")).await;
}

async fn tab(b: &Browser, name: &str) {
    b.client.find(Locator::Css(&format!(".tabs button[data-tab=\"{name}\"]"))).await.unwrap().click().await.unwrap();
}

/// The rows the list shows, by CSV line.
async fn listed(b: &Browser) -> Vec<u64> {
    let rows = b.eval("return [...document.querySelectorAll('.row')].map(r => Number(r.dataset.row))").await;
    rows.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn the_sample_preview_searches_selects_and_shows_a_message_as_a_mail_client_would() {
    let Some(b) = browser("the_sample_preview_searches_selects_and_shows_a_message_as_a_mail_client_would").await
    else {
        return;
    };
    let job = sample_preview();
    b.open(&page_of(job.path())).await;
    b.wait_until("return document.getElementById('count').textContent === '12 messages'").await;
    let summary = b.text("#summary").await;
    for fact in ["Campaign\nannouncement-2026-11", "Messages\n12", "Largest", "Warnings\nNone."] {
        assert!(summary.replace(' ', "\n").contains(&fact.replace(' ', "\n")), "{fact:?} in:\n{summary}");
    }
    assert_eq!(listed(&b).await, (2..=13).collect::<Vec<_>>());

    // `/` then a CSV value that only the city column holds.
    b.keys("/").await;
    b.keys("Zürich").await;
    b.wait_until("return document.getElementById('count').textContent === '1 of 12 messages'").await;
    assert_eq!(listed(&b).await, [3]);
    b.keys("\u{e00c}").await; // Escape: back to the list, the search kept
    b.keys("j").await;
    b.wait_until("return document.getElementById('message').dataset.row === '3'").await;
    b.keys("/").await; // selects the search text
    b.keys("\u{e003}\u{e00c}").await; // Backspace, Escape
    b.wait_until("return document.getElementById('count').textContent === '12 messages'").await;

    // Keyboard: the selection (row 3, kept through the search) moves down and up the whole list.
    b.keys("jj").await;
    b.wait_until("return document.getElementById('message').dataset.row === '5'").await;
    b.keys("\u{e013}").await; // ArrowUp
    b.wait_until("return document.getElementById('message').dataset.row === '4'").await;

    select_row(&b, 2).await;
    let headers = b.text("#headers").await;
    for line in [
        "From: Example Announcements <announcements@example.com>",
        "To: Ann Lee <ann.lee@example.com>",
        "Reply-To: Example Support <support@example.com>",
        "Subject: Ann Lee, your ticket for the Lisbon launch",
        "List-Unsubscribe: <https://example.com/unsubscribe/t-8f3a1c>",
        "X-Campaign: launch-2026-11",
        "Envelope recipients: ann.lee@example.com",
    ] {
        assert!(headers.lines().any(|l| l == line), "{line:?} in:\n{headers}");
    }
    for name in ["Date: ", "Message-ID: <"] {
        assert!(headers.lines().any(|l| l.starts_with(name)), "{name:?} in:\n{headers}");
    }
    // Read back by the page from the bytes, where both are RFC 2047 encoded words.
    select_row(&b, 3).await;
    let headers = b.text("#headers").await;
    for line in ["To: Bob Müller <bob@example.org>", "Subject: Bob Müller, your ticket for the Zürich launch"] {
        assert!(headers.lines().any(|l| l == line), "{line:?} in:\n{headers}");
    }
    select_row(&b, 2).await;
    tab(&b, "text").await;
    assert!(b.text("#text").await.starts_with("Dear Ann Lee,"));
    tab(&b, "source").await;
    assert!(b.text("#source").await.contains("Content-Type: application/pdf"));
    tab(&b, "attachments").await;
    let attachment = b.text("#attachments").await;
    assert!(attachment.contains("ticket-1001.pdf") && attachment.contains("application/pdf"), "{attachment}");
    let link = b.client.find(Locator::Css("#attachments a")).await.unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    let original = std::fs::read(job.path().join("files/ticket-1001.pdf")).unwrap();
    assert_eq!(std::fs::read(job.path().join("preview").join(&href)).unwrap(), original, "{href}");

    let console = b.console().await;
    assert!(console.is_empty(), "console messages: {console:#?}");
    screenshot(&b, job.path()).await;
    b.close().await;
}

/// "Save as .eml" gives a mail client the message's exact bytes (CRLF, as `send` submits them): from the
/// embedded source, or the file `--eml` wrote.
#[tokio::test(flavor = "current_thread")]
async fn save_as_eml_downloads_the_exact_message() {
    let Some(b) = browser("save_as_eml_downloads_the_exact_message").await else { return };
    let job = sample_preview();
    b.open(&page_of(job.path())).await;
    select_row(&b, 3).await;
    tab(&b, "source").await;
    let save = b.client.find(Locator::Css("#save-eml")).await.unwrap();
    assert_eq!(save.attr("download").await.unwrap().as_deref(), Some("row-000003.eml"));
    save.click().await.unwrap();
    let saved = b.downloads.path().join("row-000003.eml");
    let started = std::time::Instant::now();
    while !saved.exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "no download in {:?}", b.downloads.path());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bytes = std::fs::read(&saved).unwrap();
    let second = &mbox_messages(&job.path().join("preview"))[1];
    assert!(bytes.windows(2).any(|w| w == b"\r\n") && bytes.len() > 1000, "{} bytes", bytes.len());
    assert_eq!(bytes.trim_ascii_end(), &second[..], "the download is row 3's message, byte for byte");

    run_in(job.path(), &["preview", "job.toml", "--eml"]).expect(0);
    b.open(&page_of(job.path())).await;
    select_row(&b, 3).await;
    tab(&b, "source").await;
    let href = b.client.find(Locator::Css("#save-eml")).await.unwrap().attr("href").await.unwrap().unwrap();
    assert_eq!(href, "row-000003-bob@example.org.eml");
    assert!(job.path().join("preview").join(&href).exists(), "{href}");
    let console = b.console().await;
    assert!(console.is_empty(), "console messages: {console:#?}");
    b.close().await;
}

/// Saves what the page looks like; with `MAILSHOT_UPDATE_SCREENSHOT=1`, as the README's docs/preview.png.
async fn screenshot(b: &Browser, dir: &Path) {
    select_row(b, 3).await;
    tab(b, "html").await;
    let png = b.client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let target = if std::env::var("MAILSHOT_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/preview.png")
    } else {
        dir.join("preview.png")
    };
    std::fs::write(target, png).unwrap();
}

/// A loopback listener that counts the connections made to it: a request leaving the page.
fn request_counter() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut [0; 1024]);
        }
    });
    (port, count)
}

const HOSTILE_NAME: &str = "</script><script>alert(1)</script>";

#[tokio::test(flavor = "current_thread")]
async fn hostile_rows_run_no_script_load_nothing_unasked_and_the_warnings_filter_finds_them() {
    let Some(b) = browser("hostile_rows_run_no_script_load_nothing_unasked_and_the_warnings_filter_finds_them").await
    else {
        return;
    };
    let (port, requests) = request_counter();
    let job = JobDir::new();
    job.write("t/mail.txt", "Hi {{ name }}\n");
    job.write(
        "t/mail.html",
        format!(
            "<p>Hi {{{{ name }}}}</p>{{% if pic %}}<img src=\"http://127.0.0.1:{port}/pixel.png\">{{% endif %}}\
             <script>parent.postMessage('script ran', '*')</script>\
             <img src=\"x\" onerror=\"parent.postMessage('onerror ran', '*')\">\n"
        ),
    );
    job.write(
        "job.toml",
        "[smtp]\nserver = \"smtp.example.com\"\n[message]\nfrom = \"News <news@example.com>\"\n\
         subject = \"{{ topic }}\"\ntext = \"t/mail.txt\"\nhtml = \"t/mail.html\"\n\
         list_unsubscribe = \"https://example.com/u\"\n\
         [recipients]\ncsv = \"r.csv\"\nname = \"name\"\n",
    );
    let csv = format!(
        "email,name,topic,pic\nann@example.com,Ann,News,\n\"eve@example.com\",\"{HOSTILE_NAME}\",\
         \"<img src=x onerror=alert(2)>\",yes\nbob@example.com,Bob,News,\n"
    );
    job.write("r.csv", csv);
    run_in(job.path(), &["preview", "job.toml"]).expect(0);
    b.open(&page_of(job.path())).await;
    b.wait_until("return document.getElementById('count').textContent === '3 messages'").await;
    b.eval("window.got = []; window.addEventListener('message', e => window.got.push(String(e.data))); return 0").await;

    // The warnings filter keeps only the row with a remote image (a WebDriver call fails if an alert is open).
    b.client.find(Locator::Id("only-warnings")).await.unwrap().click().await.unwrap();
    b.wait_until("return document.getElementById('count').textContent === '1 of 3 messages'").await;
    assert_eq!(listed(&b).await, [3]);
    let line = b.text(".row[data-row=\"3\"]").await;
    assert!(line.contains(HOSTILE_NAME) && line.contains("<img src=x onerror=alert(2)>"), "shown as text: {line}");
    assert!(b.text("#summary-warnings").await.contains("remote images"));

    select_row(&b, 3).await;
    assert_eq!(b.text("#subject").await, "<img src=x onerror=alert(2)>");
    assert!(b.text("#row-warnings").await.contains("remote images"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(requests.load(Ordering::SeqCst), 0, "nothing is fetched before the reader asks");
    let injected =
        "return document.querySelectorAll('script:not([type])').length + document.querySelectorAll('img').length";
    assert_eq!(b.eval(injected).await, 1, "only the page's own script; no element came from the data");

    // The toggle loads the remote image, which shows the frame could have: it still runs no script.
    b.client.find(Locator::Id("load-images")).await.unwrap().click().await.unwrap();
    for _ in 0..200 {
        if requests.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(requests.load(Ordering::SeqCst) > 0, "remote images load once asked for");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.eval("return window.got").await, serde_json::json!([]), "the HTML part ran script");
    b.close().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_100000_row_preview_opens_scrolls_and_finds_its_last_row() {
    let Some(b) = browser("a_100000_row_preview_opens_scrolls_and_finds_its_last_row").await else { return };
    let job = JobDir::new();
    let mut csv = String::from("email,name\n");
    for i in 1..=100_000 {
        csv.push_str(&format!("user{i}@example.com,User {i}\n"));
    }
    job.write("r.csv", csv);
    run_in(job.path(), &["preview", "job.toml"]).expect(0).line_with(&["wrote 100000 messages"]);
    b.open(&page_of(job.path())).await;
    b.wait_until("return document.getElementById('count').textContent === '100000 messages'").await;
    assert!(listed(&b).await.len() < 200, "only the rows in sight are in the page");
    b.eval("const l = document.getElementById('list'); l.scrollTop = l.scrollHeight; return 0").await;
    b.wait_until("return !!document.querySelector('.row[data-row=\"100001\"]')").await;
    b.keys("/").await;
    b.keys("user100000@").await;
    b.wait_until("return document.getElementById('count').textContent === '1 of 100000 messages'").await;
    b.keys("\u{e007}").await; // Enter: to the list, first match selected
    b.wait_until("return document.getElementById('message').dataset.row === '100001'").await;
    assert!(b.text("#headers").await.contains("To: User 100000 <user100000@example.com>"));
    b.close().await;
}

/// Every other way an HTML part could reach the network before the reader asks for remote images: a refresh,
/// style sheets, CSS images, frames, objects, media, prefetches, a form. None of them fetches anything.
#[tokio::test(flavor = "current_thread")]
async fn an_html_part_fetches_nothing_by_any_other_means_before_the_toggle() {
    let Some(b) = browser("an_html_part_fetches_nothing_by_any_other_means_before_the_toggle").await else { return };
    let (port, requests) = request_counter();
    let url = format!("http://127.0.0.1:{port}");
    let html = format!(
        "<meta http-equiv=\"refresh\" content=\"0;url={url}/refresh\">\
         <link rel=\"stylesheet\" href=\"{url}/sheet.css\"><link rel=\"prefetch\" href=\"{url}/prefetch\">\
         <link rel=\"preload\" as=\"image\" href=\"{url}/preload.png\">\
         <style>@import url({url}/import.css); p {{ background: url({url}/bg.png) }} \
         @font-face {{ font-family: f; src: url({url}/font.woff) }} b {{ font-family: f }}</style>\
         <p style=\"background-image: url({url}/inline.png)\">Hi <b>{{{{ name }}}}</b></p>\
         <iframe src=\"{url}/frame\"></iframe><object data=\"{url}/object\"></object><embed src=\"{url}/embed\">\
         <video poster=\"{url}/poster.png\" src=\"{url}/video.mp4\" autoplay></video><audio src=\"{url}/audio\" autoplay></audio>\
         <picture><source srcset=\"{url}/source.png\"><img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\"></picture>\
         <svg><image href=\"{url}/svg.png\"/></svg>\
         <form action=\"{url}/form\"><input type=\"image\" src=\"{url}/input.png\"></form>\n"
    );
    let job = JobDir::new();
    job.write("t/mail.txt", "Hi {{ name }}\n");
    job.write("t/mail.html", html);
    job.write(
        "job.toml",
        "[smtp]\nserver = \"smtp.example.com\"\n[message]\nfrom = \"News <news@example.com>\"\n\
         subject = \"News\"\ntext = \"t/mail.txt\"\nhtml = \"t/mail.html\"\n\
         [recipients]\ncsv = \"r.csv\"\nname = \"name\"\n",
    );
    job.write("r.csv", "email,name\nann@example.com,Ann\nbob@example.com,Bob\n");
    run_in(job.path(), &["preview", "job.toml"]).expect(0);
    b.open(&page_of(job.path())).await;
    b.wait_until("return document.getElementById('count').textContent === '2 messages'").await;
    select_row(&b, 3).await;
    select_row(&b, 2).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(requests.load(Ordering::SeqCst), 0, "a request left the page before the reader asked");
    b.close().await;
}

/// A message over the 256 KiB of source the page embeds is never offered as a cut `.eml`: without `--eml`
/// the Source tab has no save link (the source ends with where the whole message is), with `--eml` the link
/// is the file. Row 3 is small and still offers its own; selecting it after row 2 must not keep row 2's state.
#[tokio::test(flavor = "current_thread")]
async fn save_as_eml_is_not_offered_for_a_message_cut_in_the_page() {
    let Some(b) = browser("save_as_eml_is_not_offered_for_a_message_cut_in_the_page").await else { return };
    let job = JobDir::new();
    job.write("t/mail.txt", "Hi {{ name }}\n{% if name == \"Ann\" %}{% for i in range(end=7000) %}line {{ i }} of a long letter, 50 bytes each\n{% endfor %}{% endif %}");
    run_in(job.path(), &["preview", "job.toml"]).expect(0);
    b.open(&page_of(job.path())).await;
    select_row(&b, 2).await;
    tab(&b, "source").await;
    let state = "const s = document.getElementById('save-eml'); return [s.hidden, s.getAttribute('href')]";
    assert_eq!(b.eval(state).await, serde_json::json!([true, null]), "no save link for a cut message");
    assert!(b.text("#source").await.contains("more bytes: the whole message is message 1 of messages.mbox"));
    select_row(&b, 3).await;
    let shown = b.eval(state).await;
    assert_eq!(shown[0], false, "a whole message is offered");
    assert!(shown[1].as_str().unwrap().starts_with("blob:"), "{shown}");
    select_row(&b, 2).await;
    assert_eq!(b.eval(state).await, serde_json::json!([true, null]), "row 3's link is not kept for row 2");

    run_in(job.path(), &["preview", "job.toml", "--eml"]).expect(0);
    b.open(&page_of(job.path())).await;
    select_row(&b, 2).await;
    let href = "return document.getElementById('save-eml').getAttribute('href')";
    assert_eq!(b.eval(href).await, "row-000002-ann@example.com.eml");
    assert!(b.console().await.is_empty());
    b.close().await;
}
