//! [`Step::Serve`](super::Step::Serve): one connection answered by a [`Mailbox`]'s rules, a flight at a time.
//!
//! A flight is whatever the client's writes brought before the server answers (RFC 2920 §3.2): every whole
//! line that has arrived is answered in order and the replies go out in one write, so a pipelining client
//! gets one round trip per group and a lock-step one a round trip per command. Commands that came in the
//! same flight behind a final dot are what a Haraka-like mailbox refuses.

use super::conn::Conn;
use super::mailbox::Mailbox;

/// One connection: greeting, then flight after flight until QUIT, EOF or a fault closes it.
pub(super) async fn serve(conn: &mut Conn, mailbox: &Mailbox) -> Result<(), String> {
    let Some(_admitted) = mailbox.admit() else {
        return conn.write(b"421 4.7.0 Too many concurrent connections\r\n").await;
    };
    tokio::time::sleep(mailbox.greeting_delay()).await;
    let mut session = Session {
        mailbox,
        rcpts: Vec::new(),
        body: None,
        chunk_left: 0,
        discard: false,
        replies: String::new(),
        close: false,
    };
    session.replies.push_str("220 fake.test ESMTP\r\n");
    loop {
        session.flush(conn).await?;
        if session.close {
            return Ok(());
        }
        match conn.flight().await? {
            Some(lines) => session.flight(lines),
            None if session.body.is_some() => return Err("the client closed the connection in DATA".into()),
            None => return Ok(()),
        }
    }
}

/// One connection's transaction state and the replies not yet written.
struct Session<'a> {
    mailbox: &'a Mailbox,
    rcpts: Vec<String>,
    /// The message data so far, between the 354 and the final dot, or of a BDAT chunk.
    body: Option<Vec<u8>>,
    /// Bytes of the BDAT chunk still to come (0: not in a chunk).
    chunk_left: usize,
    /// The chunk's command was refused: its bytes are read and dropped, with no reply of their own.
    discard: bool,
    replies: String,
    close: bool,
}

impl Session<'_> {
    /// Answers every line of one flight in order.
    fn flight(&mut self, lines: Vec<Vec<u8>>) {
        let (mut verbs, mut behind_dot) = (Vec::new(), false);
        let mut lines: std::collections::VecDeque<Vec<u8>> = lines.into();
        while let Some(mut line) = lines.pop_front() {
            if self.close {
                break;
            }
            if self.chunk_left > 0 {
                // A chunk is counted in bytes; whatever follows its last byte is the next command.
                if line.len() > self.chunk_left {
                    lines.push_front(line.split_off(self.chunk_left));
                }
                self.chunk_left -= line.len();
                self.body.as_mut().expect("in a chunk").extend_from_slice(&line);
                if self.chunk_left == 0 {
                    self.end_of_chunk();
                    behind_dot = true;
                }
                continue;
            }
            if let Some(body) = &mut self.body {
                if line == b".\r\n" {
                    verbs.push(".".to_owned());
                    self.dot();
                    behind_dot = true;
                } else {
                    body.extend_from_slice(&line);
                }
                continue;
            }
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned();
            let verb = line.to_ascii_uppercase().split([' ', ':']).next().unwrap_or("").to_owned();
            if self.mailbox.count(&verb, behind_dot) {
                self.replies.push_str(super::PIPELINED_AFTER_DOT);
                if let Some(size) = bdat_last(&line.to_ascii_uppercase()).filter(|&n| n > 0) {
                    // RFC 3030 §4: a refused chunk's bytes are still read, and dropped.
                    (self.body, self.chunk_left, self.discard) = (Some(Vec::new()), size, true);
                }
            } else {
                self.command(&line, &verb);
            }
            verbs.push(verb);
        }
        if !verbs.is_empty() {
            self.mailbox.record_flight(verbs);
        }
    }

    fn command(&mut self, line: &str, verb: &str) {
        let upper = line.to_ascii_uppercase();
        let reply = if verb == "EHLO" {
            self.mailbox.ehlo_reply()
        } else if verb == "AUTH" {
            "535 5.7.8 Authentication credentials invalid\r\n".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            self.rcpts.clear();
            self.mailbox.mail_reply(&address(line))
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(line);
            let refusal = self.mailbox.rcpt_rejection(&rcpt);
            refusal.unwrap_or_else(|| {
                self.rcpts.push(rcpt);
                "250 2.1.5 Ok\r\n".to_owned()
            })
        } else if let Some(size) = bdat_last(&upper).filter(|_| self.mailbox.offers_chunking()) {
            (self.body, self.chunk_left) = (Some(Vec::new()), size);
            if size == 0 {
                self.end_of_chunk();
            }
            String::new() // answered at the chunk's end
        } else if upper == "DATA" && self.rcpts.is_empty() {
            "554 5.5.1 No valid recipients\r\n".to_owned()
        } else if upper == "DATA" {
            self.body = Some(Vec::new());
            "354 End data with <CR><LF>.<CR><LF>\r\n".to_owned()
        } else if upper == "RSET" || upper == "NOOP" {
            self.rcpts.clear();
            "250 2.0.0 Ok\r\n".to_owned()
        } else if upper == "QUIT" {
            self.close = true;
            "221 2.0.0 Bye\r\n".to_owned()
        } else {
            "502 5.5.2 Command not recognised\r\n".to_owned()
        };
        self.replies.push_str(&reply);
    }

    /// The last byte of a `BDAT … LAST` chunk: answered as a final dot is, or refused without recipients.
    fn end_of_chunk(&mut self) {
        if std::mem::take(&mut self.discard) {
            self.body = None;
        } else if self.rcpts.is_empty() {
            self.body = None;
            self.replies.push_str("554 5.5.1 No valid recipients\r\n");
        } else {
            self.dot();
        }
    }

    fn dot(&mut self) {
        let body = self.body.take().expect("in DATA");
        let (reply, close) = self.mailbox.final_dot(std::mem::take(&mut self.rcpts), body);
        self.replies.push_str(reply.as_deref().unwrap_or(""));
        self.close = close;
    }

    /// Writes the replies gathered so far in one write, after the mailbox's delay.
    async fn flush(&mut self, conn: &mut Conn) -> Result<(), String> {
        if self.replies.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(self.mailbox.delay()).await;
        conn.write(std::mem::take(&mut self.replies).as_bytes()).await
    }
}

/// `BDAT 123 LAST` → 123 (a chunk that is not the last one is not offered by this server).
fn bdat_last(upper: &str) -> Option<usize> {
    let mut words = upper.split(' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("BDAT"), Some(size), Some("LAST"), None) => size.parse().ok(),
        _ => None,
    }
}

/// `RCPT TO:<a@b> PARAMS` → `a@b`.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(8, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}
