use super::*;
use crate::smtp::testing::{Step, expect, peer, quick_timeouts, send, transcript};

const OAUTHBEARER_LINE: &str = "AUTH OAUTHBEARER bixhPW1lcmdlQGV4YW1wbGUudGVzdCwBaG9zdD1zbXRwLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHMzY3JldC1wYTU1AQE=";

fn creds() -> Credentials {
    Credentials::new("merge@example.test", "s3cret-pa55")
}

fn caps(auth: &[&str]) -> Capabilities {
    Capabilities { auth: auth.iter().map(|s| s.to_string()).collect(), ..Capabilities::default() }
}

async fn run(mechanism: Mechanism, script: Vec<Step>) -> (Result<AuthOutcome, AuthError>, Vec<String>) {
    let (io, server) = peer(script);
    let (sink, lines) = transcript();
    let mut conn = Connection::new(io, quick_timeouts(), Some(sink));
    let result = authenticate(&mut conn, mechanism, &creds(), ("smtp.example.com", 587)).await;
    drop(conn);
    server.await.unwrap();
    let lines = lines.lock().unwrap().clone();
    (result, lines)
}

#[tokio::test]
async fn plain_sends_the_initial_response_and_the_transcript_hides_it() {
    // base64("\0merge@example.test\0s3cret-pa55")
    let (result, lines) = run(
        Mechanism::Plain,
        vec![
            expect("AUTH PLAIN AG1lcmdlQGV4YW1wbGUudGVzdABzM2NyZXQtcGE1NQ=="),
            send("235 2.7.0 Authentication successful\r\n"),
        ],
    )
    .await;
    assert_eq!(result.unwrap().mechanism, Mechanism::Plain);
    assert_eq!(lines, ["C: AUTH PLAIN <redacted>", "S: 235 2.7.0 Authentication successful"]);
}

#[tokio::test]
async fn login_answers_both_challenges() {
    let (result, lines) = run(
        Mechanism::Login,
        vec![
            expect("AUTH LOGIN"),
            send("334 VXNlcm5hbWU6\r\n"),
            expect("bWVyZ2VAZXhhbXBsZS50ZXN0"),
            send("334 UGFzc3dvcmQ6\r\n"),
            expect("czNjcmV0LXBhNTU="),
            send("235 2.7.0 Authentication successful\r\n"),
        ],
    )
    .await;
    assert_eq!(result.unwrap().reply.code(), 235);
    assert!(lines.iter().all(|l| !l.contains("czNjcmV0") && !l.contains("bWVyZ2")), "{lines:?}");
}

#[tokio::test]
async fn xoauth2_failure_is_ended_with_an_empty_line() {
    let (result, _) = run(
        Mechanism::Xoauth2,
        vec![
            expect("AUTH XOAUTH2 dXNlcj1tZXJnZUBleGFtcGxlLnRlc3QBYXV0aD1CZWFyZXIgczNjcmV0LXBhNTUBAQ=="),
            send("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
            expect(""),
            send("535 5.7.8 Username and Password not accepted\r\n"),
        ],
    )
    .await;
    // The 334's JSON is the reason: decoded into the error, so the caller can tell a token to refresh.
    let err = result.unwrap_err();
    assert!(err.is_token_rejected() && err.to_string().contains(r#"{"status":"401"}"#), "{err}");
}

#[tokio::test]
async fn oauthbearer_sends_the_gs2_message_and_answers_a_failure_with_ctrl_a() {
    // base64("n,a=merge@example.test,^Ahost=smtp.example.com^Aport=587^Aauth=Bearer s3cret-pa55^A^A")
    let (ok, lines) = run(Mechanism::OAuthBearer, vec![expect(OAUTHBEARER_LINE), send("235 2.7.0 Accepted\r\n")]).await;
    assert_eq!(ok.unwrap().mechanism, Mechanism::OAuthBearer);
    assert_eq!(lines[0], "C: AUTH OAUTHBEARER <redacted>", "the token never reaches the transcript");
    let (refused, _) = run(
        Mechanism::OAuthBearer,
        vec![
            expect(OAUTHBEARER_LINE),
            send("334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n"),
            expect("AQ=="),
            send("535 5.7.8 Authentication failed\r\n"),
        ],
    )
    .await;
    let err = refused.unwrap_err();
    assert!(err.is_token_rejected() && err.to_string().contains("invalid_token"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn an_oauth_mechanism_not_offered_falls_back_to_the_other_one() {
    assert_eq!(choose(&caps(&["XOAUTH2"]), Some(Mechanism::OAuthBearer), "u").unwrap(), Mechanism::Xoauth2);
    assert_eq!(choose(&caps(&["OAUTHBEARER"]), Some(Mechanism::Xoauth2), "u").unwrap(), Mechanism::OAuthBearer);
    assert!(choose(&caps(&["PLAIN"]), Some(Mechanism::OAuthBearer), "u").is_err());
}

#[tokio::test]
async fn refusals_are_told_apart_and_never_retried() {
    type Case = (&'static str, fn(&AuthError) -> bool, &'static str);
    let cases: [Case; 4] = [
        (
            "535 5.7.8 Error: authentication failed\r\n",
            |e| matches!(e, AuthError::Rejected { .. }),
            "username or password not accepted",
        ),
        (
            "534-5.7.9 Application-specific password required\r\n534 5.7.9 Learn more\r\n",
            |e| matches!(e, AuthError::AppPasswordRequired { .. }),
            "app password",
        ),
        ("454 4.7.0 Temporary authentication failure\r\n", |e| e.is_temporary(), "try again later"),
        ("530 5.7.0 Must issue a STARTTLS command first\r\n", |e| matches!(e, AuthError::Failed { .. }), "STARTTLS"),
    ];
    for (wire, is_expected, words) in cases {
        // The script ends after one reply: a second attempt would find the pipe closed and fail the test.
        let (result, _) =
            run(Mechanism::Plain, vec![expect("AUTH PLAIN AG1lcmdlQGV4YW1wbGUudGVzdABzM2NyZXQtcGE1NQ=="), send(wire)])
                .await;
        let err = result.unwrap_err();
        assert!(is_expected(&err), "{wire:?} gave {err:?}");
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[test]
fn the_mechanism_is_chosen_from_what_the_server_offers() {
    assert_eq!(choose(&caps(&["LOGIN", "PLAIN"]), None, "u").unwrap(), Mechanism::Plain);
    assert_eq!(choose(&caps(&["CRAM-MD5", "LOGIN"]), None, "u").unwrap(), Mechanism::Login);
    assert_eq!(choose(&caps(&["PLAIN", "LOGIN"]), Some(Mechanism::Login), "u").unwrap(), Mechanism::Login);
    assert!(matches!(
        choose(&caps(&["PLAIN"]), Some(Mechanism::Xoauth2), "u"),
        Err(AuthError::MechanismNotOffered { .. })
    ));
    assert!(matches!(choose(&caps(&["CRAM-MD5"]), None, "u"), Err(AuthError::NoCommonMechanism { .. })));
    assert!(matches!(choose(&caps(&[]), None, "u"), Err(AuthError::NotOffered { .. })));
}

#[test]
fn debug_never_shows_the_secret() {
    let shown = format!("{:?}", creds());
    assert!(shown.contains("merge@example.test") && !shown.contains("s3cret"), "{shown}");
}
