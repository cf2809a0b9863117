//! A fake SMTP server on `127.0.0.1:0` for the `send` tests: it accepts every message, records what each
//! recipient was sent and every command verb, and injects the faults the Postfix lab cannot, or not
//! countably: a delay before every reply, a sender or recipient refused a set number of times, every login
//! refused, and the connection closed right after the final dot (or a chosen reply to it); and a server's
//! limits: a cap on concurrent sessions (a `421` greeting) with a slow greeting, one MAIL FROM refused.
//!
//! Plain blocking threads (one per connection), so it runs beside a test that blocks on the binary.
//! Lock-step only: it does not offer PIPELINING, and replies to one command at a time (RFC 5321 §4.1).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How the server answers one recipient `times` times before it behaves normally again.
#[derive(Debug, Clone)]
enum Fault {
    /// This reply to MAIL FROM or RCPT TO.
    Refuse(String),
    /// No reply to the final dot: the connection is closed instead.
    CloseAfterDot,
    /// This reply to the final dot instead of 250 (a `421` then closes the connection).
    ReplyAfterDot(String),
}

#[derive(Default)]
struct State {
    delay: Duration,
    faults: HashMap<String, (Fault, u32)>,
    /// Offer AUTH and refuse every login with 535.
    refuse_auth: bool,
    /// Commands received, by verb (`MAIL`, `AUTH`, …).
    verbs: HashMap<String, u32>,
    /// Every message body whose final dot arrived, per recipient (accepted or not).
    dots: HashMap<String, Vec<Vec<u8>>>,
    /// Messages answered with 250 after the dot, per recipient.
    accepted: HashMap<String, u32>,
    /// A journal to read at each final dot, and the recipients whose committing record was not in it yet.
    journal: Option<std::path::PathBuf>,
    uncommitted_dots: Vec<String>,
    connections: u32,
    open: u32,
    max_open: u32,
    queue_id: u64,
    /// At most this many sessions at once; one more is greeted `421 4.7.0` at once and closed.
    session_cap: Option<u32>,
    /// Admitted sessions are greeted after this long (a busy or tarpitting server).
    greeting_delay: Duration,
    /// Sessions refused by the cap.
    refused_sessions: u32,
    /// MAIL FROM commands so far, over all connections, and (number, reply): that one MAIL gets the reply.
    mails: u32,
    nth_mail: Option<(u32, String)>,
}

pub struct FakeSmtp {
    pub port: u16,
    state: Arc<Mutex<State>>,
    closing: Arc<AtomicBool>,
}

impl FakeSmtp {
    pub fn start() -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let closing = Arc::new(AtomicBool::new(false));
        let (s, c) = (state.clone(), closing.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if c.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        FakeSmtp { port, state, closing }
    }

    /// Every reply (greeting included) waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// RCPT TO (or MAIL FROM) `address` is answered with `reply` (e.g. `450 4.2.0 Busy`) the next `times`
    /// times.
    pub fn refuse(&self, address: &str, reply: &str, times: u32) {
        self.state().faults.insert(address.to_owned(), (Fault::Refuse(reply.to_owned()), times));
    }

    /// At most `cap` sessions at once: one more is greeted `421 4.7.0 Too many concurrent connections` at
    /// once and closed; an admitted session is greeted after `greeting_delay`.
    pub fn cap_sessions(&self, cap: u32, greeting_delay: Duration) {
        let mut s = self.state();
        s.session_cap = Some(cap);
        s.greeting_delay = greeting_delay;
    }

    /// Sessions the cap refused so far.
    pub fn refused_sessions(&self) -> u32 {
        self.state().refused_sessions
    }

    /// The `n`-th MAIL FROM over all connections (1-based) is answered `reply`; every other one as usual.
    pub fn refuse_nth_mail(&self, n: u32, reply: &str) {
        self.state().nth_mail = Some((n, reply.to_owned()));
    }

    /// The next `times` messages to `rcpt` get `reply` to their final dot (a `421` then closes).
    pub fn reply_after_dot(&self, rcpt: &str, reply: &str, times: u32) {
        self.state().faults.insert(rcpt.to_owned(), (Fault::ReplyAfterDot(reply.to_owned()), times));
    }

    /// Offer AUTH PLAIN LOGIN and answer every AUTH with `535 5.7.8`.
    pub fn refuse_logins(&self) {
        self.state().refuse_auth = true;
    }

    /// From now on, at each final dot, check that `journal` already holds a committing record for each
    /// recipient (the client must write it before the dot).
    pub fn watch_journal(&self, journal: &std::path::Path) {
        self.state().journal = Some(journal.to_owned());
    }

    /// Recipients whose final dot arrived before their committing record was in the watched journal.
    pub fn uncommitted_dots(&self) -> Vec<String> {
        self.state().uncommitted_dots.clone()
    }

    /// How many commands with this verb (`MAIL`, `AUTH`, `QUIT`, …) arrived, over all connections.
    pub fn commands(&self, verb: &str) -> u32 {
        self.state().verbs.get(verb).copied().unwrap_or(0)
    }

    /// The next `times` messages to `rcpt` get no reply to their final dot: the connection closes instead.
    pub fn close_after_dot(&self, rcpt: &str, times: u32) {
        self.state().faults.insert(rcpt.to_owned(), (Fault::CloseAfterDot, times));
    }

    /// Messages accepted (250 after the dot) per recipient.
    pub fn accepted(&self) -> HashMap<String, u32> {
        self.state().accepted.clone()
    }

    pub fn accepted_total(&self) -> u32 {
        self.state().accepted.values().sum()
    }

    /// Every message body whose final dot arrived for `rcpt`, in order.
    pub fn bodies(&self, rcpt: &str) -> Vec<Vec<u8>> {
        self.state().dots.get(rcpt).cloned().unwrap_or_default()
    }

    /// Final dots received, for any recipient (a message the server saw, accepted or not).
    pub fn dots_total(&self) -> usize {
        self.state().dots.values().map(Vec::len).sum()
    }

    /// (connections accepted so far, the most that were open at once).
    pub fn connections(&self) -> (u32, u32) {
        let s = self.state();
        (s.connections, s.max_open)
    }

    /// Polls until `done` holds for the accepted counts; panics after `timeout`.
    pub fn wait_until(&self, timeout: Duration, what: &str, done: impl Fn(&FakeSmtp) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < timeout, "fake SMTP server: no {what} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One connection: greeting, then one command at a time until QUIT, EOF or a fault closes it.
fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let greeting_delay = {
        let mut s = state.lock().unwrap();
        if s.session_cap.is_some_and(|cap| s.open >= cap) {
            s.refused_sessions += 1;
            drop(s);
            let _ = stream.write_all(b"421 4.7.0 Too many concurrent connections\r\n");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        s.connections += 1;
        s.open += 1;
        s.max_open = s.max_open.max(s.open);
        s.greeting_delay
    };
    let mut conn = Conn { out: stream.try_clone().unwrap(), input: BufReader::new(stream), state, rcpts: Vec::new() };
    if !greeting_delay.is_zero() {
        std::thread::sleep(greeting_delay);
    }
    let _ = conn.run();
    state.lock().unwrap().open -= 1;
}

struct Conn<'a> {
    out: TcpStream,
    input: BufReader<TcpStream>,
    state: &'a Mutex<State>,
    rcpts: Vec<String>,
}

impl Conn<'_> {
    fn run(&mut self) -> std::io::Result<()> {
        self.reply("220 fake.test ESMTP\r\n")?;
        loop {
            let line = self.line()?;
            let upper = line.to_ascii_uppercase();
            let verb = upper.split([' ', ':']).next().unwrap_or("").to_owned();
            let refuse_auth = {
                let mut s = self.state.lock().unwrap();
                *s.verbs.entry(verb.clone()).or_default() += 1;
                s.refuse_auth
            };
            if verb == "EHLO" {
                let auth = if refuse_auth { "250-AUTH PLAIN LOGIN\r\n" } else { "" };
                self.reply(&format!(
                    "250-fake.test\r\n{auth}250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"
                ))?;
            } else if verb == "AUTH" {
                self.reply("535 5.7.8 Authentication credentials invalid\r\n")?;
            } else if upper.starts_with("MAIL FROM:") {
                self.mail(address(&line))?;
            } else if upper.starts_with("RCPT TO:") {
                self.rcpt(address(&line))?;
            } else if upper == "DATA" {
                if !self.data()? {
                    return Ok(());
                }
            } else if upper == "RSET" || upper == "NOOP" {
                self.rcpts.clear();
                self.reply("250 2.0.0 Ok\r\n")?;
            } else if upper == "QUIT" {
                return self.reply("221 2.0.0 Bye\r\n");
            } else {
                self.reply("502 5.5.2 Command not recognised\r\n")?;
            }
        }
    }

    fn mail(&mut self, from: String) -> std::io::Result<()> {
        self.rcpts.clear();
        let fault = {
            let mut s = self.state.lock().unwrap();
            s.mails += 1;
            match &s.nth_mail {
                Some((n, reply)) if *n == s.mails => Some(Fault::Refuse(reply.clone())),
                _ => take_fault(&mut s, &from, false),
            }
        };
        match fault {
            Some(Fault::Refuse(reply)) => self.reply(&format!("{reply}\r\n")),
            _ => self.reply("250 2.1.0 Ok\r\n"),
        }
    }

    fn rcpt(&mut self, rcpt: String) -> std::io::Result<()> {
        let fault = take_fault(&mut self.state.lock().unwrap(), &rcpt, false);
        match fault {
            Some(Fault::Refuse(reply)) => self.reply(&format!("{reply}\r\n")),
            _ => {
                self.rcpts.push(rcpt);
                self.reply("250 2.1.5 Ok\r\n")
            }
        }
    }

    /// The message through its final dot; false when a fault closed the connection.
    fn data(&mut self) -> std::io::Result<bool> {
        if self.rcpts.is_empty() {
            self.reply("554 5.5.1 No valid recipients\r\n")?;
            return Ok(true);
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>\r\n")?;
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.input.read_until(b'\n', &mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == b".\r\n" {
                break;
            }
            body.extend_from_slice(&line);
        }
        let mut s = self.state.lock().unwrap();
        if let Some(journal) = &s.journal {
            let text = std::fs::read_to_string(journal).unwrap_or_default();
            let missing = self.rcpts.iter().filter(|r| !text.contains(&format!(r#""t":"committing","key":"{r}""#)));
            let missing: Vec<String> = missing.cloned().collect();
            s.uncommitted_dots.extend(missing);
        }
        let mut close = false;
        let mut instead = None;
        for rcpt in &self.rcpts {
            s.dots.entry(rcpt.clone()).or_default().push(body.clone());
            match take_fault(&mut s, rcpt, true) {
                Some(Fault::CloseAfterDot) => close = true,
                Some(Fault::ReplyAfterDot(reply)) => instead = Some(reply),
                _ => {}
            }
        }
        if let Some(reply) = instead {
            drop(s);
            self.rcpts.clear();
            self.reply(&format!("{reply}\r\n"))?;
            if reply.starts_with("421") {
                let _ = self.out.shutdown(Shutdown::Both);
                return Ok(false);
            }
            return Ok(true);
        }
        if close {
            drop(s);
            let _ = self.out.shutdown(Shutdown::Both);
            return Ok(false);
        }
        for rcpt in self.rcpts.drain(..) {
            *s.accepted.entry(rcpt).or_default() += 1;
        }
        s.queue_id += 1;
        let reply = format!("250 2.0.0 Ok: queued as FAKE{}\r\n", s.queue_id);
        drop(s);
        self.reply(&reply)?;
        Ok(true)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn reply(&mut self, text: &str) -> std::io::Result<()> {
        let delay = self.state.lock().unwrap().delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.out.write_all(text.as_bytes())
    }
}

/// The fault for `address` at this stage (`at_dot`: after the final dot, else at MAIL or RCPT), if one is
/// still armed; counts it down.
fn take_fault(s: &mut State, address: &str, at_dot: bool) -> Option<Fault> {
    let (fault, times) = s.faults.get_mut(address)?;
    if *times == 0 || matches!(fault, Fault::CloseAfterDot | Fault::ReplyAfterDot(_)) != at_dot {
        return None;
    }
    *times -= 1;
    Some(fault.clone())
}

/// `RCPT TO:<a@b> PARAMS` → `a@b`.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(8, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}
