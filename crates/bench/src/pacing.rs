//! Adaptive pacing against fixed settings: the real binary resets every user of a
//! SmarterMail simulator that works on a limited number of requests at once and
//! answers 429 (without `Retry-After`) above it, as an overloaded vendor does.

use std::path::Path;
use std::time::Duration;

use rekey_sim::Behaviour;
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};

use crate::run_rekey;

/// What the benchmark runs against and compares.
pub struct Setup {
    /// Users to reset.
    pub users: usize,
    /// Requests the simulator works on at once (`None`: no limit).
    pub capacity: Option<usize>,
    /// The simulator's latency.
    pub latency: Duration,
    /// The `--concurrency` values to compare (`auto` among them).
    pub settings: Vec<String>,
    /// Rounds: every setting runs once a round, in turn.
    pub rounds: usize,
}

/// One run of one setting.
#[derive(Debug, Clone, Copy)]
struct Measured {
    elapsed: Duration,
    requests: usize,
    rejected: usize,
    peak: usize,
}

impl Measured {
    fn rejected_percent(&self) -> f64 {
        self.rejected as f64 * 100.0 / self.requests.max(1) as f64
    }
}

/// Runs every setting `rounds` times and prints, per setting, the range of its
/// times and rejected requests, then how `auto` compares with the best fixed
/// setting of each round.
pub async fn compare(dir: &Path, setup: &Setup) -> anyhow::Result<()> {
    let capacity = setup.capacity.map_or_else(
        || "no capacity limit".to_owned(),
        |c| format!("capacity {c}"),
    );
    println!(
        "pacing: {} users, {capacity}, {} ms latency, {} rounds",
        setup.users,
        setup.latency.as_millis(),
        setup.rounds
    );
    let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); setup.settings.len()];
    for _ in 0..setup.rounds {
        for (setting, runs) in setup.settings.iter().zip(&mut runs) {
            runs.push(measure(dir, setup, setting).await?);
        }
    }
    for (setting, runs) in setup.settings.iter().zip(&runs) {
        let (fastest, slowest) = range(runs.iter().map(|r| r.elapsed.as_secs_f64()));
        let (fewest, most) = range(runs.iter().map(Measured::rejected_percent));
        let (least_rejected, most_rejected) = range(runs.iter().map(|r| r.rejected as f64));
        let peak = runs.iter().map(|r| r.peak).max().unwrap_or(0);
        println!(
            "pacing:   --concurrency {setting:>4}: {fastest:.2}–{slowest:.2} s, rejected {least_rejected:.0}–{most_rejected:.0} requests ({fewest:.1}–{most:.1}%), peak {peak} in flight at the simulator"
        );
    }
    let auto = setup.settings.iter().position(|s| s == "auto");
    let fixed: Vec<usize> = (0..setup.settings.len())
        .filter(|i| Some(*i) != auto)
        .collect();
    if let (Some(auto), false) = (auto, fixed.is_empty()) {
        let ratios: Vec<f64> = (0..setup.rounds)
            .map(|round| {
                let best = fixed
                    .iter()
                    .map(|i| runs[*i][round].elapsed)
                    .min()
                    .unwrap_or_default();
                runs[auto][round].elapsed.as_secs_f64() / best.as_secs_f64()
            })
            .collect();
        let (low, high) = range(ratios.iter().copied());
        println!(
            "pacing:   auto took {low:.2}–{high:.2}× the time of the best fixed setting of its round"
        );
    }
    Ok(())
}

/// One run of `rekey reset mail --all --concurrency SETTING` against a new simulator.
async fn measure(dir: &Path, setup: &Setup, setting: &str) -> anyhow::Result<Measured> {
    let sim = SmarterMailSim::start(SmarterMailConfig {
        users: setup.users,
        behaviour: Behaviour {
            latency: setup.latency,
            capacity: setup.capacity,
            ..Behaviour::default()
        },
        ..SmarterMailConfig::default()
    })
    .await?;
    let work = tempfile::tempdir()?;
    let elapsed = run_rekey(dir, &sim, work.path(), setting).await?;
    Ok(Measured {
        elapsed,
        requests: sim.common().requests().len(),
        rejected: sim.common().rejected(),
        peak: sim.common().peak_in_flight(),
    })
}

/// The smallest and largest of `values`.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
        (low.min(v), high.max(v))
    })
}
