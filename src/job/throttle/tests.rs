//! The throttle's schedule under governor's fake clock (not tokio's: governor has its own clock).

use std::time::Duration;

use governor::clock::FakeRelativeClock;

use super::*;

fn throttle(rate: f64, burst: u32) -> (Throttle<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    (Throttle::with_clock(Some(Pace::per_second(rate, burst)), clock.clone()), clock)
}

/// Lets through everything the throttle allows at this instant.
fn drain(t: &Throttle<FakeRelativeClock>) -> u32 {
    let mut n = 0;
    while t.try_acquire().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn steady_pace_matches_the_configured_rate() {
    let (t, clock) = throttle(10.0, 1);
    let mut sent = drain(&t);
    assert_eq!(sent, 1);
    assert_eq!(t.try_acquire(), Err(Duration::from_millis(100)));
    for _ in 0..10_000 {
        clock.advance(Duration::from_millis(10));
        let now = drain(&t);
        assert!(now <= 1, "never two in 10 ms at 10/s");
        sent += now;
    }
    // 100 simulated seconds at 10/s, plus the one at t=0.
    assert_eq!(sent, 1001);
}

#[test]
fn never_bursts_above_burst_even_after_idling() {
    let (t, clock) = throttle(5.0, 4);
    assert_eq!(drain(&t), 4);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(drain(&t), 4);
    let mut sent = 0;
    for _ in 0..60_000 {
        clock.advance(Duration::from_millis(1));
        sent += drain(&t);
    }
    // 60 s at 5/s; the long-run rate stays at the configured one.
    assert_eq!(sent, 300);
}

#[test]
fn per_minute_pace() {
    let rate = crate::config::rate::RateSection { per_minute: Some(120.0), ..Default::default() };
    let per_second = rate.messages_per_second().unwrap().unwrap();
    let clock = FakeRelativeClock::default();
    let t = Throttle::with_clock(Some(Pace::per_second(per_second, rate.burst())), clock.clone());
    let mut sent = 0;
    for _ in 0..600 {
        clock.advance(Duration::from_millis(100));
        sent += drain(&t);
    }
    // 120 per minute for one simulated minute, plus the default burst's one slot of slack at the start.
    assert_eq!(rate.burst(), 2);
    assert_eq!(sent, 120 + 1);
}

#[test]
fn consecutive_throttling_halves_the_pace_and_calm_restores_it() {
    let (t, _clock) = throttle(10.0, 3);
    t.throttled();
    t.throttled();
    t.accepted(); // not consecutive any more
    t.throttled();
    t.throttled();
    assert_eq!(t.pace().unwrap().interval, Duration::from_millis(100), "two in a row is not a run");
    t.throttled();
    assert_eq!(t.pace(), Some(Pace { interval: Duration::from_millis(200), burst: 1 }));
    for _ in 0..SLOW_DOWN_AFTER {
        t.throttled();
    }
    assert_eq!(t.pace().unwrap().interval, Duration::from_millis(400));
    for _ in 0..RECOVER_AFTER {
        t.accepted();
    }
    assert_eq!(t.pace().unwrap().interval, Duration::from_millis(200));
    for _ in 0..RECOVER_AFTER {
        t.accepted();
    }
    assert_eq!(t.pace(), Some(Pace::per_second(10.0, 3)), "back to the configured pace and burst");
}

#[test]
fn halved_pace_is_enforced() {
    let (t, clock) = throttle(10.0, 1);
    for _ in 0..SLOW_DOWN_AFTER {
        t.throttled();
    }
    let mut sent = 0;
    for _ in 0..10_000 {
        clock.advance(Duration::from_millis(1));
        sent += drain(&t);
    }
    assert_eq!(sent, 50, "5/s for 10 s");
}

#[test]
fn unlimited_slows_down_from_the_achieved_rate_then_recovers() {
    let clock = FakeRelativeClock::default();
    let t = Throttle::with_clock(None, clock.clone());
    for _ in 0..20 {
        for _ in 0..100 {
            assert!(t.try_acquire().is_ok());
        }
        clock.advance(Duration::from_millis(100));
    }
    for _ in 0..SLOW_DOWN_AFTER {
        t.throttled();
    }
    // About 1000/s was achieved: the slow-down halves that.
    let pace = t.pace().expect("a pace after throttling");
    assert!((pace.per_second_rate() - 500.0).abs() < 10.0, "{pace:?}");
    for _ in 0..RECOVER_AFTER {
        t.accepted();
    }
    assert_eq!(t.pace(), None, "unlimited again");
}

#[test]
fn slowest_pace_is_one_a_minute() {
    let (t, _clock) = throttle(1.0, 1);
    for _ in 0..(SLOW_DOWN_AFTER * 20) {
        t.throttled();
    }
    assert_eq!(t.pace().unwrap().interval, Duration::from_secs(60));
}
