//! The gate every request of a run passes: a permit per request in flight, from a
//! semaphore whose size the adaptive rules change.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::Pacing;
use super::adaptive::{Adaptive, Report, Sent};

/// Hands out a permit per request in flight, at most the limit at a time.
///
/// A fixed limit never changes. An adaptive one follows its rules: raising it adds
/// permits; lowering it takes back the free ones at once and the others as their
/// requests end (a debt), so requests in flight are never cut short.
#[derive(Debug)]
pub struct Limiter {
    semaphore: Semaphore,
    batches: usize,
    adaptive: Option<Mutex<Gate>>,
}

#[derive(Debug)]
struct Gate {
    rules: Adaptive,
    /// Permits in existence (free and held).
    issued: usize,
    /// Held permits to take back as they are returned.
    debt: usize,
    /// Permits held.
    in_flight: usize,
}

impl Gate {
    /// Brings the semaphore to the rules' limit.
    fn apply(&mut self, semaphore: &Semaphore) {
        let target = self.rules.limit();
        let effective = self.issued - self.debt;
        if target > effective {
            let mut more = target - effective;
            let cancelled = more.min(self.debt);
            self.debt -= cancelled;
            more -= cancelled;
            semaphore.add_permits(more);
            self.issued += more;
        } else if target < effective {
            let fewer = effective - target;
            let taken = semaphore.forget_permits(fewer);
            self.issued -= taken;
            self.debt += fewer - taken;
        }
    }
}

impl Limiter {
    /// A limiter for `pacing`.
    pub fn new(pacing: Pacing) -> Limiter {
        match pacing {
            Pacing::Fixed(n) => {
                let n = n.max(1);
                Limiter {
                    semaphore: Semaphore::new(n),
                    batches: n,
                    adaptive: None,
                }
            }
            Pacing::Adaptive(settings) => {
                let rules = Adaptive::new(settings.max, settings.rate, Instant::now());
                let limit = rules.limit();
                Limiter {
                    semaphore: Semaphore::new(limit),
                    batches: settings.max.max(1),
                    adaptive: Some(Mutex::new(Gate {
                        rules,
                        issued: limit,
                        debt: 0,
                        in_flight: 0,
                    })),
                }
            }
        }
    }

    /// Batches a run keeps in progress at once: a fixed limit's worth (so each has
    /// its request in flight, as before there was a limiter), or an adaptive
    /// limit's ceiling (so a batch pausing before a retry leaves its place to
    /// another).
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Waits for a permit to send one request (and for the end of a pause the
    /// vendor asked for).
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            if let Some(until) = self.paused_until() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let permit = self
                .semaphore
                .acquire()
                .await
                .expect("the limiter's semaphore is never closed");
            let Some(gate) = &self.adaptive else {
                return Permit {
                    limiter: self,
                    permit: Some(permit),
                    sent: None,
                };
            };
            let mut gate = lock(gate);
            let now = Instant::now();
            if gate.rules.paused_until(now).is_some() {
                // Paused while this one waited: give the permit back (or pay the
                // debt with it) and wait again.
                if gate.debt > 0 {
                    gate.debt -= 1;
                    gate.issued -= 1;
                    permit.forget();
                }
                continue;
            }
            gate.in_flight += 1;
            let sent = Sent {
                at: now,
                epoch: gate.rules.epoch(),
                in_flight: gate.in_flight,
            };
            return Permit {
                limiter: self,
                permit: Some(permit),
                sent: Some(sent),
            };
        }
    }

    fn paused_until(&self) -> Option<Instant> {
        let gate = lock(self.adaptive.as_ref()?);
        gate.rules.paused_until(Instant::now())
    }

    /// What an adaptive limit did so far (`None` for a fixed one).
    pub fn report(&self) -> Option<Report> {
        Some(lock(self.adaptive.as_ref()?).rules.report(Instant::now()))
    }

    /// The current limit.
    #[cfg(test)]
    fn limit(&self) -> usize {
        match &self.adaptive {
            Some(gate) => lock(gate).rules.limit(),
            None => self.batches,
        }
    }
}

fn lock(gate: &Mutex<Gate>) -> MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Leave to send one request. Say how it went with [`answered`](Self::answered) or
/// [`overloaded`](Self::overloaded); dropped without either (the request was
/// cancelled), it teaches the limit nothing.
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a Limiter,
    permit: Option<SemaphorePermit<'a>>,
    /// When it was granted, for an adaptive limit.
    sent: Option<Sent>,
}

impl Permit<'_> {
    /// The vendor answered (success, or a definite refusal).
    pub fn answered(self) {
        self.settle(|rules, sent, now| rules.answered(sent, now));
    }

    /// The request met a passing failure (429, 503, a timeout, a dropped
    /// connection); `retry_after` is the pause the vendor asked for, if any.
    pub fn overloaded(self, retry_after: Option<Duration>) {
        self.settle(|rules, sent, now| rules.overloaded(sent, retry_after, now));
    }

    fn settle(mut self, learn: impl FnOnce(&mut Adaptive, Sent, Instant)) {
        if let (Some(gate), Some(sent)) = (&self.limiter.adaptive, self.sent) {
            let mut gate = lock(gate);
            // In use is what was in flight when it left or when it ended, whichever
            // is more: the first of a burst leaves alone, yet the limit is full.
            let sent = Sent {
                in_flight: sent.in_flight.max(gate.in_flight),
                ..sent
            };
            learn(&mut gate.rules, sent, Instant::now());
            gate.apply(&self.limiter.semaphore);
            drop(gate);
            self.release();
        }
    }

    /// Returns the permit, or pays the limiter's debt with it.
    fn release(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let Some(gate) = &self.limiter.adaptive else {
            return;
        };
        let mut gate = lock(gate);
        gate.in_flight -= 1;
        if gate.debt > 0 {
            gate.debt -= 1;
            gate.issued -= 1;
            permit.forget();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::super::AdaptiveSettings;
    use super::*;

    const RTT: Duration = Duration::from_millis(40);

    fn adaptive(max: usize) -> Limiter {
        Limiter::new(Pacing::Adaptive(AdaptiveSettings { max, rate: None }))
    }

    /// Whether a permit is to be had right now.
    async fn free(limiter: &Limiter) -> bool {
        tokio::time::timeout(Duration::ZERO, limiter.acquire())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limit_hands_out_exactly_its_permits() {
        let limiter = Limiter::new(Pacing::Fixed(3));
        assert_eq!(limiter.batches(), 3);
        let held: Vec<_> = futures_util::future::join_all((0..3).map(|_| limiter.acquire())).await;
        assert!(!free(&limiter).await);
        held.into_iter().next().unwrap().overloaded(None);
        // A fixed limit learns nothing: the returned permit is free again.
        assert!(free(&limiter).await);
        assert_eq!(limiter.limit(), 3);
        assert!(limiter.report().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_adaptive_limit_grows_with_clean_answers() {
        let limiter = adaptive(64);
        assert_eq!(limiter.batches(), 64);
        let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| limiter.acquire())).await;
        assert!(!free(&limiter).await, "it starts at 4");
        tokio::time::advance(RTT).await;
        for permit in held {
            permit.answered();
        }
        let held: Vec<_> = futures_util::future::join_all((0..8).map(|_| limiter.acquire())).await;
        assert!(!free(&limiter).await, "one more per clean answer: 8");
        assert_eq!(held.len(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_decrease_takes_permits_back_as_requests_end() {
        let limiter = adaptive(64);
        let mut held: Vec<_> =
            futures_util::future::join_all((0..4).map(|_| limiter.acquire())).await;
        tokio::time::advance(RTT).await;
        for permit in held.drain(..) {
            permit.answered();
        }
        let mut held: Vec<_> =
            futures_util::future::join_all((0..8).map(|_| limiter.acquire())).await;
        // One refusal: 8 × 0.7 = 5.6 → 5 in flight at most. Seven are still in flight,
        // so nothing is free until three more have ended.
        held.pop().unwrap().overloaded(None);
        assert_eq!(limiter.limit(), 5);
        for _ in 0..2 {
            drop(held.pop());
            assert!(!free(&limiter).await);
        }
        drop(held.pop());
        assert!(free(&limiter).await, "four in flight: one is free");
        let fifth = limiter.acquire().await;
        assert!(!free(&limiter).await);
        drop(fifth);
        drop(held);
        // All ended: exactly five to be had.
        let again: Vec<_> = futures_util::future::join_all((0..5).map(|_| limiter.acquire())).await;
        assert!(!free(&limiter).await);
        assert_eq!(again.len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_request_until_the_time_asked() {
        let limiter = adaptive(64);
        let permit = limiter.acquire().await;
        let started = Instant::now();
        permit.overloaded(Some(Duration::from_secs(2)));
        assert!(!free(&limiter).await, "paused");
        let next = limiter.acquire().await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        next.answered();
    }
}
