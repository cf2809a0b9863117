//! Having a session to send on: reuse the current one, replace it after its message limit, or open one,
//! backing off while the server refuses; then a throttle slot.

use std::time::Duration;

use super::{CONNECT_ATTEMPTS, CONNECT_MAX_WAIT, Worker};
use crate::job::policy::{self, ConnectVerdict};

/// Whether a worker has a session to send on.
pub(super) enum Readiness {
    Ready,
    /// No session now, but others carry on: put the message back and try again after this.
    Later(Duration),
    /// The run stops (interrupted, or the job cannot go on).
    Stop,
}

impl Worker {
    /// Makes sure a usable session is there, then waits for the throttle. (The other way round, workers
    /// waiting for room under a session cap would use up the run's pace.)
    pub(super) async fn ready(&mut self) -> Readiness {
        if self.session.is_some() && self.sent_on_session >= self.shared.pool.per_session() {
            self.close("reconnecting (message limit per connection)").await;
        }
        if self.session.is_none() {
            match self.connect().await {
                Readiness::Ready => {}
                other => return other,
            }
        }
        if self.shared.throttle.try_acquire().is_err() {
            self.status(|| "waiting for the rate limit".into());
            self.shared.throttle.acquire().await;
        }
        Readiness::Ready
    }

    /// Opens a session, backing off on transient failures. While other sessions are open (or being opened)
    /// a failure only shrinks the pool, and teaches it the server's cap; with none, [`CONNECT_ATTEMPTS`]
    /// failures in a row, with no session opened anywhere meanwhile, stop the job, as does any failure the
    /// policy calls fatal.
    async fn connect(&mut self) -> Readiness {
        let pool = self.shared.pool.clone();
        let mut streak_since = pool.opened_so_far();
        loop {
            if pool.at_cap() {
                self.status(|| "waiting: the server allows no more sessions".into());
                return Readiness::Later(CONNECT_MAX_WAIT);
            }
            self.status(|| "connecting".into());
            let error = match pool.open().await {
                Ok(session) => {
                    self.session = Some(session);
                    (self.sent_on_session, self.delivered_on_session, self.failures, self.failures_alone) =
                        (0, 0, 0, 0);
                    self.status(|| "connected".into());
                    return Readiness::Ready;
                }
                Err(error) => error,
            };
            if policy::connect_failure(&error, pool.ever_connected()) == ConnectVerdict::Abort {
                self.shared.halt(Some(error.to_string()));
                return Readiness::Stop;
            }
            let others = pool.others_alive();
            self.failures += 1;
            if others > 0 {
                self.failures_alone = 0;
                let lesson = policy::rejects_more_sessions(&error).then(|| pool.learn_session_cap(others, &error));
                if let Some(line) = lesson.flatten() {
                    self.log(line);
                }
                let wait = policy::backoff(self.failures, Duration::from_secs(1), CONNECT_MAX_WAIT);
                self.status(|| format!("waiting {wait:.0?} to reconnect ({others} other sessions open)"));
                return Readiness::Later(wait);
            }
            if pool.opened_so_far() != streak_since {
                // Another worker opened a session since this streak began: the server is there.
                (streak_since, self.failures_alone) = (pool.opened_so_far(), 0);
            }
            self.failures_alone += 1;
            if self.failures_alone >= CONNECT_ATTEMPTS {
                self.shared.halt(Some(error.to_string()));
                return Readiness::Stop;
            }
            let wait = policy::backoff(self.failures_alone, Duration::from_secs(1), CONNECT_MAX_WAIT);
            self.log(format!("connection {}: {error}; trying again in {:.0?}", self.id + 1, wait));
            self.status(|| format!("waiting {wait:.0?} to reconnect"));
            tokio::time::sleep(wait).await;
        }
    }
}
