//! The lab's oauth2 listener (`scripts/lab-smtpd.py`, mode `oauth2`) and its token helper (`scripts/lab-token`):
//! AUTH XOAUTH2 and OAUTHBEARER only, over plaintext, with bearer tokens that expire a few seconds after they are
//! issued.
//!
//! Read from the environment on its own, apart from [`crate::common::lab_aiosmtpd::Aiosmtpd`], so that a lab
//! started before this listener existed still runs the other listeners' tests.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::common::lab_aiosmtpd::Store;
use crate::common::lab_env::{port, required, var};
use crate::common::send_job::Smtp;

/// The oauth2 listener, as `scripts/smtp-lab env` prints it.
#[derive(Debug, Clone)]
pub struct OAuthLab {
    pub port: u16,
    /// The one user whose tokens the listener accepts.
    pub user: String,
    /// The command line that prints a fresh token (`MAILSHOT_LAB_TOKEN_COMMAND`), for `sh -c`.
    pub token_command: String,
    /// Seconds a token is accepted after it was issued.
    pub token_lifetime: u64,
    /// The listener's folder in the aiosmtpd store.
    dir: PathBuf,
}

/// The oauth2 listener, or `None` after printing why the calling test is skipped (a panic under
/// `MAILSHOT_REQUIRE_LAB=1`).
pub fn oauth_lab(test: &str) -> Option<OAuthLab> {
    let found = (|| {
        Some(OAuthLab {
            port: port("MAILSHOT_LAB_AIOSMTPD_OAUTH2_PORT")?,
            user: var("MAILSHOT_LAB_USER")?,
            token_command: var("MAILSHOT_LAB_TOKEN_COMMAND")?,
            token_lifetime: var("MAILSHOT_LAB_TOKEN_LIFETIME")?.parse().ok()?,
            dir: PathBuf::from(var("MAILSHOT_LAB_AIOSMTPD_STORE")?).join("oauth2"),
        })
    })();
    required(test, found)
}

/// One AUTH attempt as the listener logged it (`auth.jsonl`; never the token).
#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize)]
pub struct AuthAttempt {
    pub time_ms: u64,
    pub session: u64,
    pub ehlo: Option<String>,
    /// `XOAUTH2` or `OAUTHBEARER`.
    pub mechanism: String,
    pub user: Option<String>,
    /// `accepted`, `expired`, `forged`, `wrong-user`, `future` or `malformed`.
    pub outcome: String,
    /// When the token says it was issued (unix ms): tells one token from the next.
    pub token_issued_ms: Option<u64>,
    /// OAUTHBEARER's `host=` and `port=`.
    pub host: Option<String>,
    pub port: Option<u16>,
}

impl OAuthLab {
    /// The listener's stored messages from now on.
    pub fn store(&self) -> Store {
        Store::since_now(self.dir.clone())
    }

    /// Every AUTH attempt of sessions that sent `EHLO ehlo`, oldest first (a test's own name keeps other tests
    /// out).
    pub fn auth_attempts(&self, ehlo: &str) -> Vec<AuthAttempt> {
        let text = std::fs::read_to_string(self.dir.join("auth.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<AuthAttempt>(l).unwrap_or_else(|e| panic!("auth.jsonl: {l:?}: {e}")))
            .filter(|a| a.ehlo.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(ehlo)))
            .collect()
    }

    /// The `[smtp]` table for the listener: plaintext AUTH with `auth` (`"xoauth2"` or `"oauthbearer"`), the
    /// lab's user, `helper` as `token_command`, and `ehlo` as the EHLO name (to find this job's AUTH attempts).
    pub fn smtp(&self, auth: &str, helper: &TokenHelper, ehlo: &str) -> Smtp {
        Smtp::plain(self.port)
            .with("allow_plaintext_auth = true")
            .with(&format!("username = {}", toml_string(&self.user)))
            .with(&format!("auth = {}", toml_string(auth)))
            .with(&format!("token_command = {}", toml_string(&helper.command())))
            .with(&format!("ehlo_name = {}", toml_string(ehlo)))
    }
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One test's token helper: the lab's command with files of its own, in a folder apart from the job's (so that
/// the job's folder can be searched for tokens).
pub struct TokenHelper {
    dir: tempfile::TempDir,
    base: String,
}

impl TokenHelper {
    pub fn new(lab: &OAuthLab) -> TokenHelper {
        TokenHelper { dir: tempfile::tempdir().unwrap(), base: lab.token_command.clone() }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command for `token_command`: prints a good token at each run until [`TokenHelper::go_bad`], and
    /// records each token it printed and the time of each run.
    pub fn command(&self) -> String {
        format!(
            "{} --log {} --count-file {} --bad-when-exists {}",
            self.base,
            sh_quote(&self.file("tokens")),
            sh_quote(&self.file("runs")),
            sh_quote(&self.file("revoked"))
        )
    }

    /// From now on every run prints a forged token (right shape, wrong signature).
    pub fn go_bad(&self) {
        std::fs::write(self.file("revoked"), "").unwrap();
    }

    /// Every token printed so far.
    pub fn tokens(&self) -> Vec<String> {
        lines(&self.file("tokens"))
    }

    /// The time of each run so far (unix ms).
    pub fn runs(&self) -> Vec<u64> {
        lines(&self.file("runs")).iter().map(|l| l.parse().unwrap()).collect()
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

fn sh_quote(path: &Path) -> String {
    let s = path.to_str().unwrap();
    assert!(!s.contains('\''), "{s}");
    format!("'{s}'")
}

/// Now, in unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What would give `token` away: the token, its signature alone, and the base64 SASL messages that carry it
/// (XOAUTH2's, and OAUTHBEARER's as sent to `port` on 127.0.0.1).
pub fn giveaways(token: &str, user: &str, port: u16) -> Vec<String> {
    let signature = token.rsplit('-').next().unwrap().to_owned();
    let xoauth2 = base64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes());
    let oauthbearer =
        base64(format!("n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01").as_bytes());
    vec![token.to_owned(), signature, xoauth2, oauthbearer]
}

#[test]
fn base64_matches_rfc_4648_test_vectors() {
    let vectors =
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
    for (plain, encoded) in vectors {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
