//! The one rate limiter all workers share: a GCRA (governor) that also slows down when the server pushes back.
//!
//! A run of consecutive throttling replies (421 4.7.0, 450 4.2.1, 454 4.7.0, …) halves the pace; a long enough
//! run of accepted messages at a reduced pace doubles it back, one step at a time, up to the configured pace.
//! Without a configured pace the first slow-down starts from half of the pace actually achieved lately.
//!
//! Waiting is done by a small pacer thread, not tokio's timer: tokio sleeps in whole milliseconds, always
//! late, and with `burst = 1` every late wake-up is lost for good (200/s came out as 157/s). A thread
//! sleeps to within tens of microseconds, so the achieved rate matches the configured one.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::rate::Pace;

/// Consecutive throttling replies that make the throttle halve its pace.
pub const SLOW_DOWN_AFTER: u32 = 3;
/// Accepted messages at a reduced pace before it is doubled back.
pub const RECOVER_AFTER: u32 = 50;
/// The slowest pace the throttle falls to: one message a minute.
const SLOWEST: Duration = Duration::from_secs(60);

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct Throttle<C: Clock + Clone = DefaultClock> {
    clock: C,
    configured: Option<Pace>,
    state: Arc<Mutex<ThrottleState<C>>>,
    /// Requests to the pacer thread: each is answered when its message may go.
    pacer: Mutex<Option<mpsc::Sender<oneshot::Sender<()>>>>,
}

struct ThrottleState<C: Clock> {
    current: Option<Pace>,
    limiter: Option<Limiter<C>>,
    throttled_streak: u32,
    calm_streak: u32,
    /// Start of the current one-second window and messages let through in it and the one before.
    window_start: Option<C::Instant>,
    window_count: u32,
    last_window_rate: f64,
    /// The rate achieved when an unlimited throttle first slowed down.
    unlimited_rate: f64,
}

fn limiter<C: Clock + Clone>(pace: Pace, clock: &C) -> Limiter<C> {
    let burst = NonZeroU32::new(pace.burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(pace.interval).expect("a pace's interval is never zero").allow_burst(burst);
    RateLimiter::direct_with_clock(quota, clock.clone())
}

impl Throttle<DefaultClock> {
    pub fn new(pace: Option<Pace>) -> Self {
        Throttle::with_clock(pace, DefaultClock::default())
    }

    /// Waits until the next message may go out.
    pub async fn acquire(&self) {
        if self.try_acquire().is_ok() {
            return;
        }
        let (answer, wait) = oneshot::channel();
        let sent = self.pacer().send(answer);
        if sent.is_ok() {
            let _ = wait.await;
        }
    }

    fn pacer(&self) -> mpsc::Sender<oneshot::Sender<()>> {
        let mut pacer = self.pacer.lock().expect("pacer lock");
        pacer
            .get_or_insert_with(|| {
                let (tx, rx) = mpsc::channel::<oneshot::Sender<()>>();
                let (state, clock) = (self.state.clone(), self.clock.clone());
                std::thread::Builder::new()
                    .name("pacer".into())
                    .spawn(move || {
                        for answer in rx {
                            while let Err(wait) = try_acquire(&state, &clock) {
                                std::thread::sleep(wait);
                            }
                            let _ = answer.send(());
                        }
                    })
                    .expect("a pacer thread");
                tx
            })
            .clone()
    }
}

/// One message through now, or how long until one may go.
fn try_acquire<C: Clock + Clone>(state: &Mutex<ThrottleState<C>>, clock: &C) -> Result<(), Duration> {
    let mut state = state.lock().expect("throttle lock");
    if let Some(limiter) = &state.limiter {
        limiter.check().map_err(|not_until| not_until.wait_time_from(clock.now()))?;
    }
    state.count(clock.now());
    Ok(())
}

impl<C: Clock + Clone> Throttle<C> {
    pub fn with_clock(pace: Option<Pace>, clock: C) -> Self {
        let state = ThrottleState {
            current: pace,
            limiter: pace.map(|p| limiter(p, &clock)),
            throttled_streak: 0,
            calm_streak: 0,
            window_start: None,
            window_count: 0,
            last_window_rate: 0.0,
            unlimited_rate: 0.0,
        };
        Throttle { clock, configured: pace, state: Arc::new(Mutex::new(state)), pacer: Mutex::new(None) }
    }

    /// Lets one message through now, or says how long to wait before asking again.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        try_acquire(&self.state, &self.clock)
    }

    /// The pace now in force (None: unlimited).
    pub fn pace(&self) -> Option<Pace> {
        self.state.lock().expect("throttle lock").current
    }

    /// The server said "slow down" (a throttling reply).
    pub fn throttled(&self) {
        let mut state = self.state.lock().expect("throttle lock");
        state.calm_streak = 0;
        state.throttled_streak += 1;
        if state.throttled_streak < SLOW_DOWN_AFTER {
            return;
        }
        state.throttled_streak = 0;
        let from = match state.current {
            Some(pace) => pace,
            None => {
                state.unlimited_rate = state.last_window_rate.max(2.0);
                Pace::per_second(state.unlimited_rate, 1)
            }
        };
        let interval = (from.interval * 2).min(SLOWEST);
        state.set(Some(Pace { interval, burst: 1 }), &self.clock);
    }

    /// A message was accepted: the server is not pushing back.
    pub fn accepted(&self) {
        let mut state = self.state.lock().expect("throttle lock");
        state.throttled_streak = 0;
        if state.current == self.configured {
            return;
        }
        state.calm_streak += 1;
        if state.calm_streak < RECOVER_AFTER {
            return;
        }
        state.calm_streak = 0;
        let current = state.current.expect("a reduced pace is a pace");
        let faster = current.interval / 2;
        let next = match self.configured {
            Some(configured) if faster <= configured.interval => Some(configured),
            Some(_) => Some(Pace { interval: faster, burst: 1 }),
            // Unlimited again once the pace is back near the rate achieved before the slow-down.
            None if 1.0 / faster.as_secs_f64() >= 0.9 * state.unlimited_rate => None,
            None => Some(Pace { interval: faster, burst: 1 }),
        };
        state.set(next, &self.clock);
    }
}

impl<C: Clock + Clone> ThrottleState<C> {
    fn set(&mut self, pace: Option<Pace>, clock: &C) {
        self.current = pace;
        self.limiter = pace.map(|p| limiter(p, clock));
    }

    fn count(&mut self, now: C::Instant) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed: Duration = now.duration_since(start).into();
        if elapsed >= Duration::from_secs(1) {
            self.last_window_rate = f64::from(self.window_count) / elapsed.as_secs_f64();
            self.window_start = Some(now);
            self.window_count = 0;
        }
        self.window_count += 1;
    }
}

#[cfg(test)]
mod tests;
