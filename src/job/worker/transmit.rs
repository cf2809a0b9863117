//! Sending on a session (with DATA; see [`window`](super::window) for several BDAT transactions in flight):
//! a message, then, while the queue has more at hand, the ones after it, each one's
//! body and final dot in one write with the next one's envelope (RFC 2920 §3.1).
//!
//! ```text
//! transmit ─► begin (session, throttle slot, committing record) ─► open (MAIL RCPT DATA)
//!          ─► commit (body, dot [+ next's MAIL RCPT DATA]) ─► apply the verdict ─► the next one, or return
//! ```

use super::connect::Readiness;
use super::{Worker, message, sending};
use crate::job::pending::Pending;
use crate::job::policy;
use crate::job::settlement::Status;
use crate::smtp::{Delivery, Opened, Ready, SessionError};

/// What may follow the current message on its session.
pub(super) enum Lookahead {
    /// Goes out in the same write as the current message's final dot.
    Pipeline(Pending),
    /// Taken, but the throttle says wait: it starts a new transaction after the current one.
    Hold(Pending),
    Nothing,
}

impl Lookahead {
    /// (pipelined behind the current message, held for after it)
    fn split(self) -> (Option<Pending>, Option<Pending>) {
        match self {
            Lookahead::Pipeline(next) => (Some(next), None),
            Lookahead::Hold(held) => (None, Some(held)),
            Lookahead::Nothing => (None, None),
        }
    }
}

impl Worker {
    /// Sends `first` and, while the queue has more at hand, the messages after it on the same session.
    /// Returns a message taken but not begun (the throttle said wait, or the session must be replaced).
    pub(super) async fn transmit(&mut self, first: Pending) -> Option<Pending> {
        let mut current = self.begin(first).await?;
        if self.session.as_ref().is_some_and(|s| s.fits_window(message(&current.work))) {
            return self.transmit_window(current).await;
        }
        let mut opened = self.open(&current).await;
        loop {
            let ready = match opened {
                Ok(Opened::Ready(ready)) => ready,
                Ok(Opened::Done(delivery)) => return self.settled_before_data(current, Ok(delivery)).await,
                Err(error) => return self.settled_before_data(current, Err(error)).await,
            };
            let (mut next, mut held) = self.lookahead().split();
            let windowed = |n: &mut Pending| self.session.as_ref().is_some_and(|s| s.fits_window(message(&n.work)));
            if let Some(fits) = next.take_if(windowed) {
                held = Some(fits); // it goes in a window of its own turn, not behind this dot
            }
            let next_opened = self.commit(current, ready, next.as_ref()).await;
            let Some(next) = next else { return held };
            let next_opened = next_opened.expect("commit answers for the next message it was given");
            if matches!(&next_opened, Err(e) if e.reply().is_none()) {
                // The connection went with the current message and the next one never got a reply: it goes
                // back in line at once, its attempt not counted. (A reply, e.g. a 421, is judged as usual.)
                self.put_back(next).await;
                return None;
            }
            self.sent_on_session += 1;
            self.status(|| sending(&next.work));
            (current, opened) = (next, next_opened);
        }
    }

    /// Waits for a session and a throttle slot (or the stop). `None`: the message was put back or settled
    /// as not sent.
    async fn begin(&mut self, mut first: Pending) -> Option<Pending> {
        let shared = self.shared.clone();
        let ready = match shared.stop.is_set() {
            true => Readiness::Stop,
            false => tokio::select! {
                biased;
                _ = shared.stop.wait() => Readiness::Stop,
                ready = self.ready() => ready,
            },
        };
        match ready {
            Readiness::Ready if !shared.stop.is_set() => {}
            Readiness::Later(wait) => {
                self.put_back(first).await;
                shared.pool.wait_for_room(wait, shared.stop.wait()).await;
                return None;
            }
            Readiness::Ready | Readiness::Stop => {
                let work = first.release(shared.journal.as_ref());
                self.settle(work.settlement(Status::NotSent, "not sent: the run stopped")).await;
                return None;
            }
        }
        // Throttle slot and session in hand: from here on the message may reach its final dot.
        first.committing(shared.journal.as_ref());
        Some(first)
    }

    /// MAIL, RCPT and DATA for the first message on this turn.
    async fn open(&mut self, current: &Pending) -> Result<Opened, SessionError> {
        self.status(|| sending(&current.work));
        let session = self.session.as_mut().expect("ready means a session");
        let opened = session.open(message(&current.work)).await;
        self.sent_on_session += 1;
        opened
    }

    /// Sends `current`'s body and final dot (made durable first) with `next`'s envelope in the same write,
    /// settles `current`, and returns the server's answer to `next`'s opening.
    async fn commit(
        &mut self,
        current: Pending,
        ready: Ready,
        next: Option<&Pending>,
    ) -> Option<Result<Opened, SessionError>> {
        let shared = self.shared.clone();
        let session = self.session.as_mut().expect("a transaction is open");
        let gate = current.durable(shared.journal.as_ref());
        let following = next.map(|p| message(&p.work));
        let committed = session.commit(ready, &current.work.message.bytes, gate, following).await;
        let lesson = session.pipelining_rejected().and_then(|reply| shared.pool.learn_past_dot(reply));
        if matches!(committed.current, Ok(Delivery::Accepted { .. })) {
            self.delivered_on_session += 1;
        }
        if committed.current.is_err() || !session.is_open() {
            self.session = None;
        }
        if let Some(line) = lesson {
            self.log(line);
        }
        let verdict = policy::classify(&committed.current);
        self.apply(current.work, verdict).await;
        committed.next
    }

    /// The next message to pipeline behind the current one, if one is at hand right now. It is held back
    /// (sent after the current one, once the throttle allows) when the throttle says wait.
    pub(super) fn lookahead(&self) -> Lookahead {
        let shared = &self.shared;
        if shared.stop.is_set() || self.sent_on_session >= shared.pool.per_session() {
            return Lookahead::Nothing;
        }
        let Some(work) = shared.queue.try_next() else { return Lookahead::Nothing };
        let mut pending = Pending::take(work);
        match shared.throttle.try_acquire() {
            Ok(()) => {
                pending.committing(shared.journal.as_ref());
                Lookahead::Pipeline(pending)
            }
            Err(_) => Lookahead::Hold(pending),
        }
    }

    /// The transaction ended before any data: refused at MAIL/RCPT/DATA, or the session died. Either way it
    /// was an attempt, and the policy decides as for any other reply, except for a 4xx at MAIL FROM on a
    /// session that already delivered messages: the server's limit per session, not this message's fault.
    /// (A session whose every MAIL was refused proves no limit: a sender refused for now is a deferral.)
    async fn settled_before_data(
        &mut self,
        pending: Pending,
        result: Result<Delivery, SessionError>,
    ) -> Option<Pending> {
        let carried = self.delivered_on_session;
        if let Some(reply) = policy::session_quota_reply(&result).filter(|_| carried > 0) {
            if policy::is_throttling(reply) {
                self.shared.throttle.throttled();
            }
            let lesson =
                policy::speaks_of_a_session_limit(reply).then(|| self.shared.pool.learn_per_session(carried, reply));
            if let Some(line) = lesson.flatten() {
                self.log(line);
            }
            match result.is_ok() {
                true => self.close("reconnecting (the server's limit per session)").await,
                false => self.session = None,
            }
            self.put_back(pending).await;
            return None;
        }
        if result.is_err() || !self.session.as_ref().is_some_and(|s| s.is_open()) {
            self.session = None;
        }
        let verdict = policy::classify(&result);
        self.apply(pending.work, verdict).await;
        None
    }
}
