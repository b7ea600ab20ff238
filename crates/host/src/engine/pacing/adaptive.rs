//! The rules of the adaptive limit (see the [module docs](super)), apart from the
//! permits they govern, so that they can be tested on a paused clock.

use std::time::Duration;

use tokio::time::Instant;

/// Requests in flight at the start.
const INITIAL: f64 = 4.0;

/// The limit's factor on a passing failure (CUBIC's β).
const BACKOFF: f64 = 0.7;

/// The limit's factor when latency is over [`SHRINK_ABOVE`] its floor.
const LATENCY_BACKOFF: f64 = 0.9;

/// Latency over its floor above which the limit stops growing.
const HOLD_ABOVE: f64 = 1.5;

/// Latency over its floor above which the limit shrinks.
const SHRINK_ABOVE: f64 = 2.0;

/// Weight of a new latency sample in the smoothed latency (TCP's 1/8).
const SMOOTHING: f64 = 0.125;

/// How far back the latency floor looks (BBR's minimum-RTT window).
const FLOOR_WINDOW: Duration = Duration::from_secs(10);

/// Round trips per added request within one of the level that last overloaded.
const PLATEAU_ROUND_TRIPS: f64 = 8.0;

/// When a request was sent, as the rules need to judge its answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    /// When it left.
    pub at: Instant,
    /// The number of decreases before it left: a failure of a request sent before
    /// the last decrease belongs to a congestion event already answered.
    pub epoch: u64,
    /// Requests in flight when it left, itself included.
    pub in_flight: usize,
}

/// What the limit did over a run, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The level held longest.
    pub settled: usize,
    /// The share of the run it was held (0 to 100).
    pub settled_percent: u32,
    /// The lowest level.
    pub lowest: usize,
    /// The highest level.
    pub highest: usize,
    /// Times it backed off.
    pub backoffs: u32,
    /// The latency floor, if any answer came.
    pub floor: Option<Duration>,
}

/// The adaptive limit.
#[derive(Debug)]
pub(super) struct Adaptive {
    limit: f64,
    max: usize,
    rate: Option<f64>,
    slow_start: bool,
    /// The limit when the last overload came, while it has not been passed cleanly.
    ceiling: Option<f64>,
    /// Smoothed latency, seconds.
    smoothed: Option<f64>,
    floor: WindowedMin,
    epoch: u64,
    resume_at: Option<Instant>,
    /// Time spent at each level (index: the level).
    held: Vec<Duration>,
    level: usize,
    since: Instant,
    lowest: usize,
    highest: usize,
    backoffs: u32,
}

impl Adaptive {
    /// A limit that never exceeds `max` requests in flight, nor what `rate`
    /// requests a second can use.
    pub fn new(max: usize, rate: Option<f64>, now: Instant) -> Adaptive {
        let max = max.max(1);
        let limit = INITIAL.min(max as f64);
        let level = limit as usize;
        Adaptive {
            limit,
            max,
            rate: rate.filter(|r| r.is_finite() && *r > 0.0),
            slow_start: true,
            ceiling: None,
            smoothed: None,
            floor: WindowedMin::default(),
            epoch: 0,
            resume_at: None,
            held: vec![Duration::ZERO; max + 1],
            level,
            since: now,
            lowest: level,
            highest: level,
            backoffs: 0,
        }
    }

    /// Requests that may be in flight now.
    pub fn limit(&self) -> usize {
        (self.limit as usize).clamp(1, self.cap())
    }

    /// The number of decreases so far.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Until when no request may leave, if the vendor asked for a pause.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        self.resume_at.filter(|at| *at > now)
    }

    /// The highest level allowed: `max`, and what the rate can use (Little's law:
    /// requests a second × seconds a request, plus one so the rate is reached).
    fn cap(&self) -> usize {
        let by_rate = match (self.rate, self.floor.get()) {
            (Some(rate), Some(floor)) => (rate * floor).ceil() as usize + 1,
            _ => usize::MAX,
        };
        self.max.min(by_rate).max(1)
    }

    /// A request sent at `sent` was answered (whatever the answer, short of a
    /// passing failure).
    pub fn answered(&mut self, sent: Sent, now: Instant) {
        let latency = now.saturating_duration_since(sent.at).as_secs_f64();
        let smoothed = match self.smoothed {
            None => latency,
            Some(s) => s + SMOOTHING * (latency - s),
        };
        self.smoothed = Some(smoothed);
        self.floor.update(smoothed, now);
        let ratio = match self.floor.get() {
            Some(floor) if floor > 0.0 => smoothed / floor,
            _ => 1.0,
        };
        if ratio > SHRINK_ABOVE {
            self.slow_start = false;
            if sent.epoch >= self.epoch {
                self.decrease(LATENCY_BACKOFF, now);
            }
            return;
        }
        if ratio > HOLD_ABOVE {
            self.slow_start = false;
            return;
        }
        if (sent.in_flight as f64) * 2.0 < self.limit {
            // Not using what it has: growing would prove nothing.
            return;
        }
        self.limit += if self.slow_start {
            1.0
        } else if self.ceiling.is_some_and(|c| self.limit + 1.0 > c) {
            1.0 / (self.limit * PLATEAU_ROUND_TRIPS)
        } else {
            1.0 / self.limit
        };
        if self.ceiling.is_some_and(|c| self.limit >= c + 1.0) {
            self.ceiling = None;
        }
        self.settle(now);
    }

    /// A request sent at `sent` met a passing failure (429, 503, a timeout), the
    /// vendor perhaps asking for a pause.
    pub fn overloaded(&mut self, sent: Sent, retry_after: Option<Duration>, now: Instant) {
        if let Some(pause) = retry_after {
            let until = now + pause;
            self.resume_at = Some(self.resume_at.map_or(until, |at| at.max(until)));
        }
        self.slow_start = false;
        if sent.epoch < self.epoch {
            return;
        }
        self.ceiling = Some(self.limit);
        self.decrease(BACKOFF, now);
    }

    fn decrease(&mut self, factor: f64, now: Instant) {
        self.limit = (self.limit * factor).max(1.0);
        self.epoch += 1;
        self.backoffs += 1;
        self.settle(now);
    }

    /// Keeps the limit within its caps and accounts the time at each level.
    fn settle(&mut self, now: Instant) {
        self.limit = self.limit.clamp(1.0, self.cap() as f64);
        let level = self.limit();
        if level != self.level {
            tracing::trace!(from = self.level, to = level, "requests in flight");
            self.held[self.level] += now.saturating_duration_since(self.since);
            self.since = now;
            self.level = level;
            self.lowest = self.lowest.min(level);
            self.highest = self.highest.max(level);
        }
    }

    /// What the limit did up to `now`.
    pub fn report(&self, now: Instant) -> Report {
        let mut held = self.held.clone();
        held[self.level] += now.saturating_duration_since(self.since);
        let total: Duration = held.iter().sum();
        let (settled, time) = held
            .iter()
            .enumerate()
            .max_by_key(|(_, time)| **time)
            .map_or((self.level, Duration::ZERO), |(level, time)| (level, *time));
        Report {
            settled,
            settled_percent: if total.is_zero() {
                100
            } else {
                (time.as_secs_f64() * 100.0 / total.as_secs_f64()).round() as u32
            },
            lowest: self.lowest,
            highest: self.highest,
            backoffs: self.backoffs,
            floor: self.floor.get().map(Duration::from_secs_f64),
        }
    }
}

/// The minimum of a value over about the last [`FLOOR_WINDOW`]: two buckets of half
/// a window each, so an old minimum is forgotten after one to two half-windows.
#[derive(Debug, Default)]
struct WindowedMin {
    current: Option<(f64, Instant)>,
    previous: Option<f64>,
}

impl WindowedMin {
    fn update(&mut self, value: f64, now: Instant) {
        match &mut self.current {
            Some((min, started)) if now.saturating_duration_since(*started) < FLOOR_WINDOW / 2 => {
                *min = min.min(value);
            }
            current => {
                self.previous = current.map(|(min, _)| min);
                *current = Some((value, now));
            }
        }
    }

    fn get(&self) -> Option<f64> {
        match (self.current.map(|(min, _)| min), self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(40);

    /// Sends `limit` requests and answers them all after `latency`, as a round
    /// trip with every permit in use.
    fn round_trip(rules: &mut Adaptive, latency: Duration) {
        let at = Instant::now();
        let sent = Sent {
            at,
            epoch: rules.epoch(),
            in_flight: rules.limit(),
        };
        let n = rules.limit();
        for _ in 0..n {
            rules.answered(sent, at + latency);
        }
    }

    fn overload(rules: &mut Adaptive) {
        let sent = Sent {
            at: Instant::now(),
            epoch: rules.epoch(),
            in_flight: rules.limit(),
        };
        rules.overloaded(sent, None, Instant::now());
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_doubles_each_round_trip_up_to_max() {
        let mut rules = Adaptive::new(64, None, Instant::now());
        assert_eq!(rules.limit(), 4);
        let mut levels = Vec::new();
        for _ in 0..5 {
            round_trip(&mut rules, RTT);
            levels.push(rules.limit());
        }
        assert_eq!(levels, [8, 16, 32, 64, 64]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overload_backs_off_once_per_congestion_event() {
        let mut rules = Adaptive::new(64, None, Instant::now());
        round_trip(&mut rules, RTT);
        round_trip(&mut rules, RTT);
        assert_eq!(rules.limit(), 16);
        // Four requests sent at 16 are refused: one decrease, not four.
        let sent = Sent {
            at: Instant::now(),
            epoch: rules.epoch(),
            in_flight: 16,
        };
        for _ in 0..4 {
            rules.overloaded(sent, None, Instant::now());
        }
        assert_eq!(rules.limit(), 11, "16 × 0.7");
        // A request sent after the decrease that is refused too counts again.
        overload(&mut rules);
        assert_eq!(rules.limit(), 7, "11.2 × 0.7");
        // Never below one.
        for _ in 0..20 {
            overload(&mut rules);
        }
        assert_eq!(rules.limit(), 1);
        assert_eq!(rules.report(Instant::now()).backoffs, 22);
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_overload_it_grows_by_one_per_round_trip_then_slowly_near_the_wall() {
        let mut rules = Adaptive::new(64, None, Instant::now());
        round_trip(&mut rules, RTT);
        round_trip(&mut rules, RTT);
        overload(&mut rules); // at 16
        let mut levels = Vec::new();
        for _ in 0..5 {
            round_trip(&mut rules, RTT);
            levels.push(rules.limit());
        }
        // Additive increase from 11.2 towards the wall at 16.
        assert_eq!(levels, [12, 13, 14, 15, 15]);
        // Within one of the wall: one more per eight round trips.
        let mut round_trips = 0;
        while rules.limit() < 16 {
            round_trip(&mut rules, RTT);
            round_trips += 1;
        }
        assert!((5..=9).contains(&round_trips), "{round_trips} round trips");
        // Within one above it too, then past it cleanly: the wall is forgotten, and
        // growth is one per round trip again.
        while rules.limit() < 17 {
            round_trip(&mut rules, RTT);
        }
        let mut round_trips = 0;
        while rules.limit() < 20 {
            round_trip(&mut rules, RTT);
            round_trips += 1;
        }
        assert_eq!(round_trips, 3, "from 17 to 20");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_capacity_is_found_and_probed_rarely() {
        // A vendor that refuses above 12 in flight, at once, without queueing.
        let capacity = 12;
        let mut rules = Adaptive::new(64, None, Instant::now());
        let mut refused = 0;
        let mut sent_total = 0;
        for _ in 0..200 {
            let at = Instant::now();
            let epoch = rules.epoch();
            let n = rules.limit();
            sent_total += n;
            let sent = Sent {
                at,
                epoch,
                in_flight: n,
            };
            // Refusals come back at once, before the answers.
            for _ in capacity..n {
                refused += 1;
                rules.overloaded(sent, None, at);
            }
            for _ in 0..n.min(capacity) {
                rules.answered(sent, at + RTT);
            }
            tokio::time::advance(RTT).await;
        }
        let report = rules.report(Instant::now());
        assert_eq!(report.settled, 12, "{report:?}");
        assert!(report.settled_percent >= 50, "{report:?}");
        assert!(report.highest <= 16, "{report:?}");
        assert!(
            (refused as f64) < sent_total as f64 * 0.02,
            "{refused} of {sent_total} refused"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rising_latency_holds_then_shrinks_the_limit() {
        let mut rules = Adaptive::new(64, None, Instant::now());
        round_trip(&mut rules, RTT);
        round_trip(&mut rules, RTT);
        assert_eq!(rules.limit(), 16);
        // Latency at 1.75× its floor: once the smoothed latency has caught up (a
        // round trip), no more growth.
        round_trip(&mut rules, RTT * 7 / 4);
        let held = rules.limit();
        for _ in 0..10 {
            round_trip(&mut rules, RTT * 7 / 4);
        }
        assert_eq!(rules.limit(), held);
        // At 3×: it shrinks, once per round trip.
        let before = rules.epoch();
        for _ in 0..3 {
            round_trip(&mut rules, RTT * 3);
            tokio::time::advance(RTT * 3).await;
        }
        assert!(rules.limit() < held, "{} < {held}", rules.limit());
        assert!(
            rules.epoch() - before <= 3,
            "at most one decrease a round trip"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_follows_latency_that_stays_higher() {
        let mut rules = Adaptive::new(64, None, Instant::now());
        round_trip(&mut rules, RTT);
        // The vendor's latency doubles for good: held first, then, once the
        // 10-second window has passed, the new latency is the floor and growth
        // resumes.
        for _ in 0..20 {
            round_trip(&mut rules, RTT * 2);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let level = rules.limit();
        round_trip(&mut rules, RTT * 2);
        assert!(rules.limit() > level);
        let floor = rules.report(Instant::now()).floor.unwrap();
        assert!(
            floor.abs_diff(RTT * 2) < Duration::from_millis(1),
            "{floor:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limit_does_not_grow() {
        let mut rules = Adaptive::new(64, None, Instant::now());
        for _ in 0..50 {
            let at = Instant::now();
            let sent = Sent {
                at,
                epoch: rules.epoch(),
                in_flight: 1,
            };
            rules.answered(sent, at + RTT);
        }
        assert_eq!(rules.limit(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_and_max_cap_the_limit() {
        // 20 requests a second at 40 ms use 0.8 requests in flight: at most 2.
        let mut rules = Adaptive::new(64, Some(20.0), Instant::now());
        for _ in 0..10 {
            round_trip(&mut rules, RTT);
        }
        assert_eq!(rules.limit(), 2);
        let mut rules = Adaptive::new(3, None, Instant::now());
        assert_eq!(rules.limit(), 3);
        for _ in 0..10 {
            round_trip(&mut rules, RTT);
        }
        assert_eq!(rules.limit(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_until_the_time_asked() {
        let mut rules = Adaptive::new(64, None, Instant::now());
        let now = Instant::now();
        let sent = Sent {
            at: now,
            epoch: 0,
            in_flight: 4,
        };
        rules.overloaded(sent, Some(Duration::from_secs(3)), now);
        // A stale failure asking for less does not shorten the pause.
        rules.overloaded(sent, Some(Duration::from_secs(1)), now);
        assert_eq!(rules.paused_until(now), Some(now + Duration::from_secs(3)));
        assert_eq!(rules.epoch(), 1);
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(rules.paused_until(Instant::now()), None);
    }
}
