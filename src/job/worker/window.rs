//! Sending on a session that takes several messages in flight (`[smtp] window`, CHUNKING with PIPELINING):
//! keep the window full while the queue has messages at hand, settle each as its replies come, oldest first.
//!
//! ```text
//! fill: take (committing record, throttle slot) ─► gate (record durable) ─► queue MAIL RCPT BDAT+bytes
//!       ─► one write for all queued ─► read the oldest's replies ─► apply its verdict ─► fill again …
//! ```
//!
//! A message is taken only after the oldest one's outcome was applied, so the journal never holds more
//! than `window` committing records without an outcome per worker (plus one message held for after the
//! window: a message with copies, or one the throttle holds back), which is the crash bound
//! ([`uncertain_bound`](crate::job::pending::uncertain_bound)). A server's limit per session (a 4xx to MAIL
//! after deliveries) puts the message back and lets the rest of the window drain before reconnecting.

use std::collections::VecDeque;

use super::{Worker, message, sending};
use crate::job::pending::Pending;
use crate::job::policy;
use crate::smtp::{Delivery, SessionError, Windowed};

impl Worker {
    /// Sends `first` and, while the queue has more at hand, the ones after it, up to the session's window
    /// in flight. Returns a message taken but not begun (held by the throttle, or one that cannot go in a
    /// window), as [`transmit`](Self::transmit) does.
    pub(super) async fn transmit_window(&mut self, first: Pending) -> Option<Pending> {
        let mut flight: VecDeque<Pending> = VecDeque::new();
        let (mut taken, mut held) = (vec![first], None);
        let mut reconnect = false;
        loop {
            if !reconnect && held.is_none() {
                held = self.fill(&mut taken, flight.len());
            }
            for pending in taken.drain(..) {
                self.launch(pending, &mut flight).await;
            }
            if let Some(session) = self.session.as_mut() {
                session.flush_window().await;
            }
            let Some(oldest) = flight.pop_front() else { break };
            let outcome = match self.session.as_mut() {
                Some(session) => session.next_windowed().await,
                None => None,
            };
            let outcome = outcome.unwrap_or(Windowed::Done(Err(SessionError::Closed)));
            reconnect |= self.settle_windowed(oldest, outcome, reconnect).await;
        }
        if self.session.as_ref().is_some_and(|s| !s.is_open()) {
            self.session = None;
        }
        if reconnect && self.session.is_some() {
            self.close("reconnecting (the server's limit per session)").await;
        }
        held
    }

    /// Takes messages at hand into `taken` until the window is full, or the session's allowance
    /// (`max_messages_per_connection`, or the server's learned limit) is used up by those taken; returns
    /// one taken that must wait.
    fn fill(&self, taken: &mut Vec<Pending>, in_flight: usize) -> Option<Pending> {
        let window = self.session.as_ref().filter(|s| s.is_open()).map_or(0, |s| s.window());
        let allowance = self.shared.pool.per_session().saturating_sub(self.sent_on_session) as usize;
        while in_flight + taken.len() < window && taken.len() < allowance {
            let next = match self.lookahead() {
                super::transmit::Lookahead::Pipeline(next) => next,
                super::transmit::Lookahead::Hold(held) => return Some(held),
                super::transmit::Lookahead::Nothing => return None,
            };
            let fits = self.session.as_ref().is_some_and(|s| s.fits_window(message(&next.work)));
            if !fits {
                return Some(next); // copies: sent with DATA once the window has drained
            }
            taken.push(next);
        }
        None
    }

    /// Waits for `pending`'s committing record to be durable, then queues its transaction (or settles it
    /// at once: refused here, the gate failed, or the session is gone).
    async fn launch(&mut self, pending: Pending, flight: &mut VecDeque<Pending>) {
        let gate = pending.durable(self.shared.journal.as_ref()).await;
        let settled = match (gate, self.session.as_mut()) {
            (Err(e), _) => Some(Err(SessionError::Gate { source: e.into() })),
            (Ok(()), Some(session)) => session.queue_chunked(message(&pending.work)),
            (Ok(()), None) => Some(Err(SessionError::Closed)),
        };
        match settled {
            None => {
                self.sent_on_session += 1;
                self.status(|| sending(&pending.work));
                flight.push_back(pending);
            }
            // Nothing of it was written: the same as a message whose session ended before its data.
            Some(Err(SessionError::Closed)) => self.put_back(pending).await,
            Some(result) => {
                let verdict = policy::classify(&result);
                self.apply(pending.work, verdict).await;
            }
        }
    }

    /// Applies one message's outcome. True when the server showed its limit per session: the message went
    /// back in line, and the session is replaced once the window has drained. `reconnecting`: an earlier
    /// message of this window already showed it; the later ones' same reply is one push-back, not several
    /// (the throttle and the lesson count it once, as with DATA).
    async fn settle_windowed(&mut self, pending: Pending, outcome: Windowed, reconnecting: bool) -> bool {
        let shared = self.shared.clone();
        let lesson =
            self.session.as_ref().and_then(|s| s.pipelining_rejected()).and_then(|r| shared.pool.learn_past_dot(r));
        if let Some(line) = lesson {
            self.log(line);
        }
        let result = match outcome {
            Windowed::Again => {
                self.put_back(pending).await;
                return false;
            }
            Windowed::Done(result) => result,
        };
        if matches!(result, Ok(Delivery::Accepted { .. })) {
            self.delivered_on_session += 1;
        }
        let carried = self.delivered_on_session;
        if let Some(reply) = policy::session_quota_reply(&result).filter(|_| carried > 0) {
            if reconnecting {
                self.put_back(pending).await;
                return true;
            }
            if policy::is_throttling(reply) {
                shared.throttle.throttled();
            }
            let lesson =
                policy::speaks_of_a_session_limit(reply).then(|| shared.pool.learn_per_session(carried, reply));
            if let Some(line) = lesson.flatten() {
                self.log(line);
            }
            self.put_back(pending).await;
            return true;
        }
        if matches!(&result, Err(e) if e.reply().is_none() && e.is_retryable()) {
            // The session ended before the server read this one (a 421 or a write that never left): back in
            // line at once, its attempt not counted, as for a message pipelined behind a dot.
            self.put_back(pending).await;
            return false;
        }
        let verdict = policy::classify(&result);
        self.apply(pending.work, verdict).await;
        false
    }
}
