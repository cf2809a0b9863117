//! The aiosmtpd listeners behave as the lab documents, checked with a bare socket (deliberately not our SMTP
//! client), so that a failure in `send_servers` is told apart from a lab problem.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;

use crate::common::lab_aiosmtpd::{Aiosmtpd, Mode, aiosmtpd};
use crate::common::unique_tag;

/// One SMTP connection, read reply by reply.
struct Wire {
    io: BufReader<TcpStream>,
}

impl Wire {
    /// Connects and returns the greeting too.
    fn open(aio: &Aiosmtpd, mode: Mode) -> (Wire, String) {
        let stream = TcpStream::connect(("127.0.0.1", aio.port(mode))).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut wire = Wire { io: BufReader::new(stream) };
        let greeting = wire.reply();
        (wire, greeting)
    }

    fn send(&mut self, bytes: &str) {
        self.io.get_mut().write_all(bytes.as_bytes()).unwrap();
    }

    /// One reply, its lines joined by `|`; `EOF` when the server closed, `RESET` when it reset.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            match self.io.read_line(&mut line) {
                Ok(0) => return "EOF".into(),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return "RESET".into(),
                Err(e) => panic!("reading a reply: {e}"),
                Ok(_) => {}
            }
            lines.push(line.trim_end().to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return lines.join("|");
            }
        }
    }

    /// Sends `commands` in one write and returns one reply per line sent.
    fn exchange(&mut self, commands: &str) -> Vec<String> {
        self.send(commands);
        commands.lines().map(|_| self.reply()).collect()
    }

    /// Sends a message's content and final dot, with `commands` behind it in the same write, and returns the
    /// dot's reply followed by one per command.
    fn message(&mut self, to: &str, commands: &str) -> Vec<String> {
        self.send(&format!(
            "From: <lab@example.test>\r\nTo: <{to}>\r\nSubject: lab\r\n\r\n..a stuffed dot\r\nbody\r\n.\r\n{commands}"
        ));
        std::iter::once("").chain(commands.lines()).map(|_| self.reply()).collect()
    }
}

fn envelope(to: &str) -> String {
    format!("MAIL FROM:<lab@example.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n")
}

const OK_354: [&str; 3] = ["250 2.1.0 OK", "250 OK", "354 End data with <CR><LF>.<CR><LF>"];

#[test]
fn accept_offers_no_pipelining_and_stores_the_message_with_its_envelope() {
    let Some(aio) = aiosmtpd("accept_offers_no_pipelining_and_stores_the_message_with_its_envelope") else { return };
    let to = format!("{}@example.test", unique_tag("lab-accept"));
    let store = aio.store(Mode::Accept);
    let (mut wire, greeting) = Wire::open(&aio, Mode::Accept);
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = wire.exchange("EHLO lab.example.test\r\n");
    assert!(ehlo[0].starts_with("250-") && !ehlo[0].contains("PIPELINING"), "{ehlo:?}");
    for (command, reply) in envelope(&to).lines().zip(OK_354) {
        assert_eq!(wire.exchange(&format!("{command}\r\n")), [reply]);
    }
    assert!(wire.message(&to, "")[0].starts_with("250 2.0.0 OK queued as "));

    let stored = store.by_rcpt(std::slice::from_ref(&to)).remove(&to).expect("stored");
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].mail_from.as_str(), stored[0].pipelined), ("lab@example.test", 0));
    let text = String::from_utf8(stored[0].bytes.clone()).unwrap();
    assert!(text.ends_with("\r\n\r\n.a stuffed dot\r\nbody\r\n"), "un-stuffed, CRLF kept: {text:?}");
}

#[test]
fn strict_dot_refuses_only_what_was_sent_behind_the_final_dot() {
    let Some(aio) = aiosmtpd("strict_dot_refuses_only_what_was_sent_behind_the_final_dot") else { return };
    let tag = unique_tag("lab-strict");
    let (to1, to2) = (format!("a-{tag}@example.test"), format!("b-{tag}@example.test"));
    let (mut wire, _) = Wire::open(&aio, Mode::StrictDot);
    assert!(wire.exchange("EHLO lab.example.test\r\n")[0].contains("|250-PIPELINING|"));
    // MAIL, RCPT and DATA pipelined together are served.
    assert_eq!(wire.exchange(&envelope(&to1)), OK_354);
    // The message is accepted; what came behind its dot is refused, command by command.
    let replies = wire.message(&to1, &format!("RSET\r\n{}", envelope(&to2)));
    assert!(replies[0].starts_with("250 2.0.0 OK queued as "), "{replies:?}");
    let refused = "503 5.5.0 Bad sequence of commands - pipelined after end of DATA";
    assert_eq!(replies[1..], [refused; 4]);
    // Sent after the dot's reply, the same commands are served.
    assert_eq!(wire.exchange(&envelope(&to2)), OK_354);
    assert!(wire.message(&to2, "")[0].starts_with("250 2.0.0 OK queued as "));
}

#[test]
fn session_cap_greets_the_session_over_the_cap_with_421() {
    let Some(aio) = aiosmtpd("session_cap_greets_the_session_over_the_cap_with_421") else { return };
    let _serial = Mode::SessionCap.serial();
    let open: Vec<_> = (0..aio.session_cap).map(|_| Wire::open(&aio, Mode::SessionCap)).collect();
    assert!(open.iter().all(|(_, greeting)| greeting.starts_with("220 ")));
    let (mut over, greeting) = Wire::open(&aio, Mode::SessionCap);
    assert_eq!(greeting, "421 4.7.0 Too many concurrent connections");
    assert_eq!(over.reply(), "EOF");
    drop(open);
    std::thread::sleep(Duration::from_millis(200));
    assert!(Wire::open(&aio, Mode::SessionCap).1.starts_with("220 "), "a closed session frees its place");
}

#[test]
fn per_session_cap_closes_at_the_mail_after_the_cap() {
    let Some(aio) = aiosmtpd("per_session_cap_closes_at_the_mail_after_the_cap") else { return };
    let _serial = Mode::PerSessionCap.serial();
    let tag = unique_tag("lab-persession");
    let (mut wire, _) = Wire::open(&aio, Mode::PerSessionCap);
    wire.exchange("EHLO lab.example.test\r\n");
    for i in 0..aio.messages_per_session {
        let to = format!("{i}-{tag}@example.test");
        assert_eq!(wire.exchange(&envelope(&to)), OK_354);
        assert!(wire.message(&to, "")[0].starts_with("250 2.0.0"));
    }
    // The 421 ends the session: what was pipelined behind the MAIL gets no reply.
    let replies = wire.exchange(&envelope(&format!("over-{tag}@example.test")));
    assert_eq!(replies, ["421 4.7.0 Too many messages in this session", "EOF", "EOF"]);
}

#[test]
fn size_at_mail_offers_size_without_a_limit_and_refuses_a_larger_size_at_mail() {
    let Some(aio) = aiosmtpd("size_at_mail_offers_size_without_a_limit_and_refuses_a_larger_size_at_mail") else {
        return;
    };
    let (mut wire, _) = Wire::open(&aio, Mode::SizeAtMail);
    let ehlo = wire.exchange("EHLO lab.example.test\r\n").remove(0);
    assert!(ehlo.split('|').any(|l| l == "250-SIZE"), "{ehlo}");
    let limit = aio.size_limit;
    let over = wire.exchange(&format!("MAIL FROM:<lab@example.test> SIZE={}\r\n", limit + 1));
    assert_eq!(over, ["552 5.3.4 Message size exceeds fixed maximum message size"]);
    assert_eq!(wire.exchange(&format!("MAIL FROM:<lab@example.test> SIZE={limit}\r\n")), ["250 2.1.0 OK"]);
}

#[test]
fn greeting_554_answers_503_until_quit() {
    let Some(aio) = aiosmtpd("greeting_554_answers_503_until_quit") else { return };
    let (mut wire, greeting) = Wire::open(&aio, Mode::Greeting554);
    assert_eq!(greeting, "554 5.7.1 No SMTP service here");
    let replies = wire.exchange("EHLO lab.example.test\r\nMAIL FROM:<lab@example.test>\r\nQUIT\r\n");
    assert!(replies[..2].iter().all(|r| r.starts_with("503 5.5.1")), "{replies:?}");
    assert_eq!((replies[2].as_str(), wire.reply().as_str()), ("221 2.0.0 Bye", "EOF"));
}

#[test]
fn flaky_setup_runs_its_cycle_of_five_per_ehlo_name() {
    let Some(aio) = aiosmtpd("flaky_setup_runs_its_cycle_of_five_per_ehlo_name") else { return };
    let _serial = Mode::FlakySetup.serial();
    let ehlo = format!("EHLO {}.example.test\r\n", unique_tag("lab-flaky"));
    let login = base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0{}", aio.user, aio.password));
    let auth = format!("AUTH PLAIN {login}\r\n");
    let expected =
        [("250", "235"), ("451 4.3.2", ""), ("250", "RESET"), ("250", "235"), ("250", "454 4.7.0"), ("250", "235")];
    for (n, (at_ehlo, at_auth)) in expected.into_iter().enumerate() {
        let (mut wire, _) = Wire::open(&aio, Mode::FlakySetup);
        let ehlo_reply = wire.exchange(&ehlo).remove(0);
        assert!(ehlo_reply.starts_with(at_ehlo), "connection {}: EHLO: {ehlo_reply}", n + 1);
        if !at_auth.is_empty() {
            let auth_reply = wire.exchange(&auth).remove(0);
            assert!(auth_reply.starts_with(at_auth), "connection {}: AUTH: {auth_reply}", n + 1);
        }
    }
}
