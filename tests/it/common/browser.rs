//! Headless Chromium driven through WebDriver (chromedriver on a free loopback port), for the preview page.
//!
//! Under a plain `cargo test` without Chromium, a browser test is skipped with a printed reason; under
//! `MAILSHOT_REQUIRE_LAB=1` (`scripts/test`, CI) a missing browser is a failure, as a missing lab is.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Flags that keep Chromium, run as root in CI, off the network and out of the user's profile.
const FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
];

/// A WebDriver session; the driver process ends with it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// Where the browser saves downloads, without asking.
    pub downloads: tempfile::TempDir,
}

/// The browser, or `None` after printing why `test` is skipped; a panic under `MAILSHOT_REQUIRE_LAB=1`.
pub async fn browser(test: &str) -> Option<Browser> {
    let installed = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !installed {
        let reason = "Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)";
        if super::lab_env::var("MAILSHOT_REQUIRE_LAB").as_deref() == Some("1") {
            panic!("{test}: MAILSHOT_REQUIRE_LAB=1 but {reason}");
        }
        eprintln!("SKIPPED {test}: {reason}");
        return None;
    }
    Some(Browser::start().await)
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".to_owned()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        wait_for_port(port);
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let downloads = tempfile::tempdir().unwrap();
        let prefs = json!({
            "download.default_directory": downloads.path(),
            "download.prompt_for_download": false,
        });
        let capabilities = json!({
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args, "prefs": prefs },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Browser { client, driver, _profile: profile, downloads }
    }

    pub async fn open(&self, page: &Path) {
        self.client.goto(&format!("file://{}", page.display())).await.unwrap();
    }

    /// The result of `script` (a function body; `arguments` holds `args`).
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    /// Waits (up to 20 s, for a loaded CI machine) until `script` returns `true`.
    pub async fn wait_until(&self, script: &str) {
        let started = Instant::now();
        while self.eval(script).await != Value::Bool(true) {
            assert!(started.elapsed() < Duration::from_secs(20), "still not true after 20 s: {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends keys to the focused element, as a person typing.
    pub async fn keys(&self, keys: &str) {
        let active = self.client.active_element().await.unwrap();
        active.send_keys(keys).await.unwrap();
    }

    /// The console messages of every frame since the last call (chromedriver's browser log).
    pub async fn console(&self) -> Vec<Value> {
        let log = self.client.issue_cmd(BrowserLog).await.expect("the browser log");
        log.as_array().cloned().unwrap_or_default()
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's `POST /session/{id}/se/log` with `{"type": "browser"}`.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16) {
    let started = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The preview page of the job in `dir`, written by the binary.
pub fn page_of(dir: &Path) -> PathBuf {
    dir.join("preview/index.html")
}
