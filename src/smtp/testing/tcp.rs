//! The interpreter on `127.0.0.1:0` (tier 3): [`ScriptServer`] plays one script per connection inside the
//! test's runtime; [`MailServer`] serves any number of connections by a [`Mailbox`]'s rules on a runtime of
//! its own, so that it runs beside a test that blocks on the `mailshot` binary.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::mailbox::Mailbox;
use super::script::{Record, Step, run};

/// Scripted connections, accepted one after another.
pub struct ScriptServer {
    pub addr: SocketAddr,
    handle: JoinHandle<Vec<Record>>,
}

impl ScriptServer {
    /// One plaintext connection following `script`.
    pub async fn start(script: Vec<Step>) -> Self {
        Self::start_many(None, vec![script]).await
    }

    /// One connection with TLS from the first byte (implicit TLS), then `script`.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>, script: Vec<Step>) -> Self {
        Self::start_many(Some(tls), vec![script]).await
    }

    /// One connection per script, accepted one after another.
    pub async fn start_many(tls: Option<Arc<rustls::ServerConfig>>, scripts: Vec<Vec<Step>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let mut records = Vec::new();
            for script in scripts {
                let (tcp, _) = listener.accept().await.unwrap();
                let steps = tls.iter().map(|tls| Step::StartTls(Arc::clone(tls))).chain(script).collect();
                records.push(run(tcp, steps).await);
            }
            records
        });
        ScriptServer { addr, handle }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the first connection's script to end (the client must close or the script must finish).
    pub async fn finish(self) -> Record {
        self.finish_all().await.into_iter().next().expect("a connection")
    }

    pub async fn finish_all(self) -> Vec<Record> {
        tokio::time::timeout(Duration::from_secs(20), self.handle).await.expect("scripted server hung").unwrap()
    }
}

/// A server for whole `send` runs: every connection is `[Step::Serve(mailbox)]`. It derefs to its
/// [`Mailbox`] for the rules and the counts.
pub struct MailServer {
    pub port: u16,
    mailbox: Mailbox,
    runtime: Option<Runtime>,
}

impl MailServer {
    /// Accepts every message, lock-step, until dropped.
    pub fn start() -> MailServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mailbox = Mailbox::default();
        let rules = mailbox.clone();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(run(tcp, vec![Step::Serve(rules.clone())]));
            }
        });
        MailServer { port, mailbox, runtime: Some(runtime) }
    }
}

impl Deref for MailServer {
    type Target = Mailbox;

    fn deref(&self) -> &Mailbox {
        &self.mailbox
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
