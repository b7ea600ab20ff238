//! Pacing: how many requests a run keeps in flight on its target.
//!
//! A fixed setting (`--concurrency 8`) keeps at most that many batches in progress,
//! as it always did. `auto` lets the limit move with what the vendor says: it
//! starts low, raises the number of requests in flight while answers stay clean
//! and latency stays near its floor, and backs off on overload. The engine asks
//! the [`Limiter`] for a permit before every request and tells it how the request
//! went.
//!
//! # How `auto` decides, and why this way
//!
//! Adaptive concurrency is TCP's congestion window with requests for packets, and
//! the published limiters borrow from it:
//!
//! - **Loss-based AIMD** (TCP Reno/NewReno; Netflix concurrency-limits'
//!   `AIMDLimit`): add one per round trip while nothing is lost, multiply by a
//!   factor below one on a loss. Robust and simple, but it only learns the limit
//!   by exceeding it: it saw-tooths over the capacity every few round trips, and
//!   each tooth costs rejected requests.
//! - **Delay-based** (TCP Vegas; concurrency-limits' `VegasLimit` and
//!   `Gradient2Limit`; Envoy's adaptive concurrency): compare the latency with its
//!   no-load floor, and shrink when a queue builds (`queue = limit × (1 −
//!   floor/latency)`). No loss needed, but blind to a vendor whose gateway rejects
//!   at the door without queueing, which is what rate limiters and the simulators'
//!   capacity limit do: latency never rises, so a delay-only limiter keeps growing
//!   into a wall of 429s.
//! - **CUBIC** remembers the window at the last loss and probes slowly near it,
//!   quickly away from it; **BBR** keeps the minimum round trip over a 10-second
//!   window, so the floor follows a path that changes.
//!
//! Vendors' APIs signal overload mostly by loss (429, 503, timeouts), sometimes by
//! latency (a server that queues). So `auto` is loss-driven AIMD with a delay
//! guard, and a memory of where it last hit the wall:
//!
//! 1. **Slow start**: from 4 in flight, one more per clean answer (the limit
//!    doubles every round trip) until the first overload or rising latency.
//! 2. **Additive increase**: then one more per round trip (`1/limit` per clean
//!    answer); within one of the level that last overloaded, one more per eight
//!    round trips, so a steady capacity is probed rarely (about one rejected
//!    request per eight round trips at the ceiling, instead of one per few). A
//!    level passed cleanly is forgotten: the capacity grew.
//! 3. **Multiplicative decrease**: on a passing failure (`RateLimited`,
//!    `Transient`: 429, 503, timeouts), the limit × 0.7 (CUBIC's factor). As in
//!    NewReno, one congestion event shrinks the limit once: failures of requests
//!    sent before the last decrease are not counted again.
//! 4. **Delay guard** (Vegas-style zones): latency is smoothed (weight 1/8, as TCP's
//!    round-trip estimate) and compared with its floor, the smallest smoothed
//!    latency of the last 10 seconds. Below 1.5× the floor the limit may grow;
//!    between 1.5× and 2× it holds; above 2× it shrinks × 0.9, once per round trip.
//! 5. **Not app-limited**: it grows only while at least half of it is in use
//!    (concurrency-limits' rule), so a slow producer does not inflate it.
//! 6. **`Retry-After`**: no new request leaves the target before the time the
//!    vendor asked for.
//! 7. **Caps**: never above `max_concurrency`, nor above what the target's `rate`
//!    can use (Little's law: `rate × floor latency`, plus one); the rate itself is
//!    enforced on every request by the connector's HTTP client.
//!
//! The level it held longest is logged at the end of the run (`-v`).

mod adaptive;
mod limiter;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use adaptive::Report;
pub use limiter::{Limiter, Permit};

/// The most requests in flight a setting may ask for.
pub const MAX_CONCURRENCY: u32 = 1024;

/// How many requests a target keeps in flight, as the operator set it (a target's
/// `concurrency`, or `--concurrency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// At most this many, always.
    Fixed(u32),
    /// Adaptive (`auto`).
    Auto,
}

impl FromStr for Concurrency {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Concurrency::Auto);
        }
        match text.parse::<u32>() {
            Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(Concurrency::Fixed(n)),
            _ => Err(format!(
                "`{text}` is not a concurrency: give a whole number from 1 to {MAX_CONCURRENCY}, or `auto`"
            )),
        }
    }
}

impl fmt::Display for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Concurrency::Fixed(n) => write!(f, "{n}"),
            Concurrency::Auto => f.write_str("auto"),
        }
    }
}

/// Stored as the operator wrote it: a number, or `"auto"`.
impl Serialize for Concurrency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Concurrency::Fixed(n) => serializer.serialize_u32(*n),
            Concurrency::Auto => serializer.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Concurrency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Number(u32),
            Word(String),
        }
        match Stored::deserialize(deserializer)? {
            Stored::Number(n) => n.to_string().parse(),
            Stored::Word(word) => word.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// How a run paces its requests: what the engine is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// At most this many batches in progress, each with one request in flight at a
    /// time.
    Fixed(usize),
    /// The limit adapts to the vendor's answers.
    Adaptive(AdaptiveSettings),
}

/// The bounds of an adaptive limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveSettings {
    /// Never more requests in flight than this (`max_concurrency`).
    pub max: usize,
    /// The target's `rate` (requests a second), if it has one.
    pub rate: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_print_and_round_trip() {
        assert_eq!("auto".parse(), Ok(Concurrency::Auto));
        assert_eq!(" 12 ".parse(), Ok(Concurrency::Fixed(12)));
        for bad in ["0", "1025", "-1", "fast", ""] {
            let err = bad.parse::<Concurrency>().unwrap_err();
            assert!(err.contains("1 to 1024, or `auto`"), "{bad}: {err}");
        }
        assert_eq!(Concurrency::Auto.to_string(), "auto");
        assert_eq!(Concurrency::Fixed(7).to_string(), "7");
        for setting in [Concurrency::Auto, Concurrency::Fixed(7)] {
            let json = serde_json::to_string(&setting).unwrap();
            assert_eq!(serde_json::from_str::<Concurrency>(&json).unwrap(), setting);
        }
        assert!(serde_json::from_str::<Concurrency>("0").is_err());
    }
}
