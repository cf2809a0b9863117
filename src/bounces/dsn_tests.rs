//! DSNs as real servers write them (Postfix from the lab, a headers-only delay, a provider's report without
//! the original message), and messages that look like bounces to a regular expression but are not.

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces").join(name);
    std::fs::read(path).unwrap()
}

fn dsn_of(name: &str) -> Dsn {
    match read(&fixture(name)) {
        Notice::Dsn(dsn) => dsn,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_postfix_bounce_gives_the_recipient_status_and_the_original_message_id() {
    let dsn = dsn_of("postfix-hard.eml");
    assert_eq!(dsn.id, "20261203045857.F0B7D71620C@mx.example.test");
    assert_eq!(dsn.original_message_id.as_deref(), Some("abc123@example.test"));
    assert_eq!(
        dsn.recipients,
        [RecipientStatus {
            final_recipient: Some("nobody1@bounce.example.test".into()),
            original_recipient: Some("nobody1@bounce.example.test".into()),
            action: "failed".into(),
            status: Some("5.1.1".into()),
            diagnostic: Some("X-Postfix; Mailbox does not exist (lab bounce)".into()),
        }]
    );
    assert_eq!(dsn.recipients[0].kind(), Some(BounceKind::Hard));
    assert_eq!(dsn.addressed_to, ["probe-sender-xyz@example.test"; 3], "X-Original-To, Delivered-To, To");
}

#[test]
fn a_delay_with_headers_only_is_soft_and_still_names_the_original() {
    let dsn = dsn_of("delayed-headers-only.eml");
    assert_eq!(dsn.original_message_id.as_deref(), Some("feedfacefeedfacefeedfacefeedface@example.com"));
    let r = &dsn.recipients[0];
    assert_eq!((r.final_recipient.as_deref(), r.action.as_str()), (Some("Cy@Example.com"), "delayed"));
    assert_eq!(r.status.as_deref(), Some("4.4.7"));
    assert_eq!(r.diagnostic.as_deref(), Some("smtp; 452 4.2.2 Mailbox full, try later"), "unfolded");
    assert_eq!(r.kind(), Some(BounceKind::Soft));
}

#[test]
fn a_report_without_the_original_lists_every_recipient_and_only_failures_are_bounces() {
    let dsn = dsn_of("no-original.eml");
    assert_eq!(dsn.original_message_id, None);
    assert!(dsn.id.starts_with("sha256:"), "no Message-ID: named by its bytes: {}", dsn.id);
    let got: Vec<_> = dsn.recipients.iter().map(|r| (r.final_recipient.as_deref().unwrap(), r.kind())).collect();
    assert_eq!(got, [("BOB@example.com", Some(BounceKind::Hard)), ("ann@example.com", None)]);
}

#[test]
fn auto_replies_and_other_mail_are_never_read_as_bounces() {
    assert_eq!(read(&fixture("vacation.eml")), Notice::AutoReply);
    assert_eq!(read(&fixture("reply.eml")), Notice::Other);
    assert_eq!(read(b""), Notice::Other);
    // A read receipt is a report too, of another type.
    let mdn =
        String::from_utf8(fixture("no-original.eml")).unwrap().replace("delivery-status", "disposition-notification");
    assert_eq!(read(mdn.as_bytes()), Notice::Other);
}

#[test]
fn statuses_are_classed_by_action_and_status() {
    let status = |action: &str, status: Option<&str>| {
        RecipientStatus {
            final_recipient: None,
            original_recipient: None,
            action: action.into(),
            status: status.map(Into::into),
            diagnostic: None,
        }
        .kind()
    };
    assert_eq!(status("failed", Some("5.7.1")), Some(BounceKind::Hard));
    assert_eq!(status("failed", None), Some(BounceKind::Hard));
    assert_eq!(status("failed", Some("4.4.7")), Some(BounceKind::Soft));
    assert_eq!(status("delayed", Some("4.4.1")), Some(BounceKind::Soft));
    assert_eq!(status("delivered", Some("2.0.0")), None);
    assert_eq!(status("relayed", None), None);
    assert!(is_status("5.1.1") && is_status("4.4.10") && !is_status("5.1") && !is_status("6.0.0") && !is_status("x"));
}
