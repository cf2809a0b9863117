//! The run's sessions as a whole, and what the run learns about the server's limits while it sends.
//!
//! Workers own their sessions; the pool only counts them (a [`Lease`] per open session) and keeps the limits
//! that every worker obeys once one of them ran into it:
//! - **concurrent sessions**: a server that refuses a new session (a `421` greeting, a reset, a 4xx) while
//!   `k` of ours are open is taken to allow `k`, for [`CAP_HOLD`]; workers beyond it wait for a session to
//!   close instead of hammering the server, and the run goes on with fewer connections;
//! - **messages per session**: a 4xx (or `421`) to MAIL FROM on a session that already carried `n` messages
//!   makes `n` this run's `max_messages_per_connection`;
//! - **pipelining past the dot**: a session that saw commands behind a final dot refused
//!   ([`TcpSession::pipelining_rejected`]) makes every later session stop at the dot.
//!
//! Each lesson is logged once as it is learned and reported at the end with the job key that would make
//! the next run start right.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::policy::one_line;
use crate::config::smtp::TokenSource;
use crate::smtp::{self, ConnectError, Credentials, Pipelining, Reply, Secret, TcpSession};

/// How long a learned cap on concurrent sessions holds before a worker tries one more session.
pub const CAP_HOLD: Duration = Duration::from_secs(60);

pub struct Pool {
    connector: smtp::Connector,
    /// OAuth2: fresh tokens for new sessions (`token_command`); `None` logs in with the configured secret.
    tokens: Option<Tokens>,
    open: Arc<AtomicUsize>,
    /// Sessions in their handshake: a refusal met meanwhile is not one met "alone".
    opening: AtomicUsize,
    /// Sessions opened so far in the run: a worker's failures in a row only count while this stands still.
    opened: AtomicUsize,
    most_open: AtomicUsize,
    ever_connected: AtomicBool,
    closed: Notify,
    per_session: AtomicU32,
    learned: Mutex<Learned>,
}

#[derive(Default)]
struct Learned {
    /// At most this many sessions at once, until the instant, and the refusal that said so.
    sessions: Option<(usize, Instant, String)>,
    /// The lowest cap on concurrent sessions ever learned in the run, and the refusal: for the log (once)
    /// and the summary, which outlive the hold.
    lowest_cap: Option<(usize, String)>,
    /// The reply that ended a session after this many messages.
    per_session: Option<(u32, String)>,
    /// The reply that refused commands pipelined behind a dot.
    past_dot: Option<String>,
}

impl Pool {
    pub fn new(connector: smtp::Connector, max_per_session: u32) -> Pool {
        Pool {
            connector,
            tokens: None,
            open: Arc::new(AtomicUsize::new(0)),
            opening: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
            most_open: AtomicUsize::new(0),
            ever_connected: AtomicBool::new(false),
            closed: Notify::new(),
            per_session: AtomicU32::new(max_per_session.max(1)),
            learned: Mutex::new(Learned::default()),
        }
    }

    /// New sessions log in with tokens from `source`, starting with `first` (fetched when the job was
    /// loaded).
    pub fn with_tokens(mut self, source: TokenSource, first: Secret) -> Pool {
        let current = tokio::sync::Mutex::new((first, Instant::now()));
        self.tokens = Some(Tokens { source: Arc::new(source), current });
        self
    }

    /// Opens a session, already held to what the run learned (no pipelining past the dot).
    pub async fn open(self: &Arc<Self>) -> Result<PooledSession, ConnectError> {
        self.opening.fetch_add(1, Ordering::SeqCst);
        let result = self.connect().await;
        self.opening.fetch_sub(1, Ordering::SeqCst);
        let mut session = result?;
        if self.learned().past_dot.is_some() {
            session.limit_pipelining(Pipelining::Envelope);
        }
        self.ever_connected.store(true, Ordering::SeqCst);
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.opened.fetch_add(1, Ordering::SeqCst);
        self.most_open.fetch_max(open, Ordering::SeqCst);
        Ok(PooledSession { session, _lease: Lease(self.clone()) })
    }

    /// The live count of open sessions, for the progress display.
    pub fn open_counter(&self) -> Arc<AtomicUsize> {
        self.open.clone()
    }

    /// A session with the configured credentials, or with an OAuth2 token young enough; a token the server
    /// refuses (expired, revoked) is fetched anew once, and only a fresh token's refusal is the error.
    async fn connect(&self) -> Result<TcpSession, ConnectError> {
        let Some(tokens) = &self.tokens else { return self.connector.connect().await };
        let username = self.connector.config().credentials.as_ref().map(|c| c.username.clone()).unwrap_or_default();
        let (token, fresh) = tokens.young_enough().await?;
        let credentials = Credentials { username: username.clone(), secret: token.clone() };
        match self.connector.connect_as(Some(&credentials)).await {
            Err(ConnectError::Auth(e)) if e.is_token_rejected() && !fresh => {
                let token = tokens.replace(&token).await?;
                self.connector.connect_as(Some(&Credentials { username, secret: token })).await
            }
            result => result,
        }
    }

    /// Sessions open right now.
    pub fn open_now(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Sessions open or being opened by other workers (the caller's own attempt has ended).
    pub fn others_alive(&self) -> usize {
        self.open_now() + self.opening.load(Ordering::SeqCst)
    }

    /// How many sessions were opened so far in the run.
    pub fn opened_so_far(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// A session was opened at some point in this run: the server exists and takes our login.
    pub fn ever_connected(&self) -> bool {
        self.ever_connected.load(Ordering::SeqCst)
    }

    /// How many messages a session may carry: the job's setting, or less once the server said so.
    pub fn per_session(&self) -> u32 {
        self.per_session.load(Ordering::SeqCst)
    }

    /// Whether a new session would exceed the learned cap on concurrent sessions (while it holds).
    pub fn at_cap(&self) -> bool {
        self.cap_reached(self.open_now())
    }

    fn cap_reached(&self, open: usize) -> bool {
        let mut learned = self.learned();
        match &learned.sessions {
            Some((_, until, _)) if Instant::now() >= *until => {
                learned.sessions = None;
                false
            }
            Some((cap, ..)) => open >= *cap,
            None => false,
        }
    }

    /// Waits until a session closes or `wait` has passed (or `stop` resolves).
    pub async fn wait_for_room(&self, wait: Duration, stop: impl Future<Output = ()>) {
        tokio::select! {
            _ = self.closed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop => {}
        }
    }

    /// The server refused one more session while `open` were open: it allows that many, for a while.
    /// Returns the line to log when this is news.
    pub fn learn_session_cap(&self, open: usize, error: &ConnectError) -> Option<String> {
        let (cap, mut learned) = (open.max(1), self.learned());
        learned.sessions = Some((cap, Instant::now() + CAP_HOLD, error.to_string()));
        if learned.lowest_cap.as_ref().is_some_and(|(lowest, _)| *lowest <= cap) {
            return None;
        }
        learned.lowest_cap = Some((cap, error.to_string()));
        Some(format!("the server refused another session ({error}); going on with {cap} open"))
    }

    /// A session was ended by a 4xx at MAIL FROM after `carried` messages: no session carries more.
    /// Returns the line to log when this lowers the limit.
    pub fn learn_per_session(&self, carried: u32, reply: &Reply) -> Option<String> {
        let carried = carried.max(1);
        if self.per_session.fetch_min(carried, Ordering::SeqCst) <= carried {
            return None;
        }
        self.learned().per_session = Some((carried, one_line(reply)));
        Some(format!(
            "the server ended a session after {carried} messages ({}); reconnecting after {carried} from now on",
            one_line(reply)
        ))
    }

    /// A session saw commands behind a final dot refused. Returns the line to log the first time.
    pub fn learn_past_dot(&self, reply: &Reply) -> Option<String> {
        let mut learned = self.learned();
        if learned.past_dot.is_some() {
            return None;
        }
        learned.past_dot = Some(one_line(reply));
        Some(format!(
            "the server refuses commands pipelined after the final dot ({}); no longer pipelining past the dot",
            one_line(reply)
        ))
    }

    /// What the run learned, each with the job key that would make the next run start right.
    pub fn lessons(&self, connections: usize) -> Vec<String> {
        let learned = self.learned();
        let mut lines = Vec::new();
        let most = self.most_open.load(Ordering::SeqCst).max(1);
        if let Some((_, why)) = learned.lowest_cap.as_ref().filter(|_| most < connections) {
            lines.push(format!(
                "at most {most} of {connections} sessions were open at once ({why}); set `connections = {most}`"
            ));
        }
        if let Some((n, reply)) = &learned.per_session {
            lines.push(format!(
                "the server ends sessions after {n} messages ({reply}); set `max_messages_per_connection = {n}`"
            ));
        }
        if let Some(reply) = &learned.past_dot {
            lines.push(format!(
                "the server refuses commands pipelined after the final dot ({reply}); set `pipelining = \"envelope\"`"
            ));
        }
        lines
    }

    fn learned(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().expect("pool lock")
    }
}

/// The current OAuth2 token and when it was fetched; one fetch at a time.
struct Tokens {
    source: Arc<TokenSource>,
    current: tokio::sync::Mutex<(Secret, Instant)>,
}

impl Tokens {
    /// The current token, or a fresh one when it is `token_lifetime` old; `true` when just fetched.
    async fn young_enough(&self) -> Result<(Secret, bool), ConnectError> {
        let mut current = self.current.lock().await;
        if current.1.elapsed() < self.source.lifetime {
            return Ok((current.0.clone(), false));
        }
        *current = (self.fetch().await?, Instant::now());
        Ok((current.0.clone(), true))
    }

    /// A fresh token in place of `refused`, unless another session already replaced it.
    async fn replace(&self, refused: &Secret) -> Result<Secret, ConnectError> {
        let mut current = self.current.lock().await;
        if current.0 == *refused {
            *current = (self.fetch().await?, Instant::now());
        }
        Ok(current.0.clone())
    }

    async fn fetch(&self) -> Result<Secret, ConnectError> {
        let source = self.source.clone();
        let fetched = tokio::task::spawn_blocking(move || source.fetch()).await;
        match fetched {
            Ok(Ok(token)) => Ok(token),
            Ok(Err(e)) => Err(ConnectError::Credentials(e.to_string())),
            Err(e) => Err(ConnectError::Credentials(e.to_string())),
        }
    }
}

/// Counts one open session for as long as it lives.
struct Lease(Arc<Pool>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.notify_waiters();
    }
}

/// A session and its place in the pool's count.
pub struct PooledSession {
    session: TcpSession,
    _lease: Lease,
}

impl PooledSession {
    /// QUIT and close; the pool's count drops when this returns.
    pub async fn quit(self) {
        let _ = self.session.quit().await;
    }
}

impl Deref for PooledSession {
    type Target = TcpSession;
    fn deref(&self) -> &TcpSession {
        &self.session
    }
}

impl DerefMut for PooledSession {
    fn deref_mut(&mut self) -> &mut TcpSession {
        &mut self.session
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply;

    fn pool(max: u32) -> Arc<Pool> {
        let connector = smtp::Connector::new(smtp::ClientConfig::new("localhost", 25)).unwrap();
        Arc::new(Pool::new(connector, max))
    }

    fn reply(wire: &str) -> Reply {
        reply::parse(wire.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn the_per_session_limit_only_goes_down_and_is_reported_with_its_key() {
        let p = pool(100);
        let r = reply("421 4.7.0 Too many messages in this session\r\n");
        assert!(p.learn_per_session(7, &r).is_some_and(|l| l.contains("after 7 messages")));
        assert_eq!(p.per_session(), 7);
        assert!(p.learn_per_session(9, &r).is_none(), "a higher count teaches nothing");
        assert_eq!(p.per_session(), 7);
        assert!(p.learn_per_session(0, &r).is_some(), "never below one");
        assert_eq!(p.per_session(), 1);
        let lessons = p.lessons(4);
        assert!(lessons.iter().any(|l| l.contains("max_messages_per_connection = 1")), "{lessons:?}");
    }

    #[test]
    fn past_dot_refusal_is_news_once() {
        let p = pool(100);
        let r = reply("503 5.5.0 Bad sequence of commands - pipelined after end of DATA\r\n");
        assert!(p.learn_past_dot(&r).is_some());
        assert!(p.learn_past_dot(&r).is_none());
        assert!(p.lessons(1).iter().any(|l| l.contains("pipelining = \"envelope\"") && l.contains("503")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_cap_holds_for_a_while_then_lets_one_more_try() {
        let p = pool(100);
        let refusal = ConnectError::ServiceClosing { reply: reply("421 4.7.0 Too many concurrent connections\r\n") };
        assert!(!p.cap_reached(8), "nothing learned yet");
        assert!(p.learn_session_cap(2, &refusal).is_some_and(|l| l.contains("going on with 2 open")));
        assert!(p.cap_reached(2) && !p.cap_reached(1));
        assert!(p.learn_session_cap(2, &refusal).is_none(), "the same cap again is no news");
        assert!(p.lessons(4).iter().any(|l| l.contains("set `connections = 1`")), "never below one");
        tokio::time::advance(CAP_HOLD + Duration::from_secs(1)).await;
        assert!(!p.cap_reached(2), "after CAP_HOLD the cap is forgotten");
        assert!(p.learn_session_cap(2, &refusal).is_none(), "learned again after the hold: not logged twice");
        assert!(p.learn_session_cap(1, &refusal).is_some(), "a lower cap is news");
        assert!(!p.lessons(4).is_empty(), "the summary keeps the lesson after the hold");
    }
}
