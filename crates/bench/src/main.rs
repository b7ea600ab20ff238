//! `rekey-bench`: measures what rekey's speed and memory targets are about.
//!
//! Build the whole workspace in release mode first, so the `rekey` binary and the
//! connector libraries sit next to this one:
//!
//! ```text
//! cargo build --release --workspace && target/release/rekey-bench all
//! ```
//!
//! - `memory`: peak memory of the real `rekey` binary resetting 100,000 users.
//! - `abi`: the cost of one call across the plugin boundary (JSON, FFI, the
//!   plugin's runtime and back), sequentially and with many calls in flight,
//!   against a connector whose calls do nothing.
//! - `throughput`: resets a second of the real `rekey` binary and SmarterMail
//!   plugin against a zero-latency SmarterMail simulator.
//! - `journal`: what the durable journal costs: the job engine with the real
//!   SmarterMail plugin runs the same reset twice in this process, once with the
//!   SQLite journal and once with an in-memory store.
//! - `pacing`: `--concurrency auto` against fixed settings, the real binary
//!   against a SmarterMail simulator with a capacity limit (429 above it) and
//!   latency: time, and requests rejected.
//! - `programs`: resets a second of the real binary through the Python example
//!   connector program and through the Rust example connector library, against
//!   the same zero-latency Acme Directory simulator.

mod engine;
mod pacing;
mod programs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;
use rekey_api::{Connector, CreateContext, Settings};
use rekey_host::ffi::{LoadOptions, PluginLibrary};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};

#[derive(Parser)]
#[command(about = "rekey benchmarks (run from a release build of the workspace)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Every benchmark.
    All,
    /// Peak memory resetting many users.
    Memory {
        /// Users to reset.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
    },
    /// Plugin ABI round-trip cost.
    Abi {
        /// Calls to time.
        #[arg(long, default_value_t = 50_000)]
        calls: usize,
    },
    /// Resets a second against a zero-latency simulator.
    Throughput {
        /// Users to reset.
        #[arg(long, default_value_t = 20_000)]
        users: usize,
        /// `rekey --concurrency`.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Throughput with and without the journal.
    Journal {
        /// Users to reset per run.
        #[arg(long, default_value_t = 50_000)]
        users: usize,
        /// Concurrency.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Alternating runs of each kind (the median of each is compared).
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
    /// `--concurrency auto` against fixed settings, at a vendor's capacity limit.
    Pacing {
        /// Users to reset.
        #[arg(long, default_value_t = 600)]
        users: usize,
        /// Requests the simulator works on at once; 429 above (0: no limit).
        #[arg(long, default_value_t = 12)]
        capacity: usize,
        /// The simulator's latency per request.
        #[arg(long, default_value_t = 40)]
        latency_ms: u64,
        /// The `--concurrency` settings to compare.
        #[arg(long, value_delimiter = ',', default_value = "auto,4,8,12,16,32,64")]
        settings: Vec<String>,
        /// Runs of every setting.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Resets a second through a connector program and a connector library.
    Programs {
        /// Users to reset per run.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// `rekey --concurrency`.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Runs of each kind (the best is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The Python example connector program.
        #[arg(long, default_value_os_t = programs::example_program())]
        program: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = bin_dir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.bench {
        Bench::All => {
            // Memory first: the peak is measured over this process's children.
            runtime.block_on(memory(&dir, 100_000))?;
            runtime.block_on(abi(&dir, 50_000))?;
            runtime.block_on(throughput(&dir, 20_000, 32))?;
            runtime.block_on(engine::journal_cost(&dir, 50_000, 32, 7))?;
            runtime.block_on(pacing::compare(&dir, &pacing_setup(600, 12, 40, None, 3)))?;
        }
        Bench::Memory { users } => runtime.block_on(memory(&dir, users))?,
        Bench::Abi { calls } => runtime.block_on(abi(&dir, calls))?,
        Bench::Throughput { users, concurrency } => {
            runtime.block_on(throughput(&dir, users, concurrency))?
        }
        Bench::Journal {
            users,
            concurrency,
            rounds,
        } => runtime.block_on(engine::journal_cost(&dir, users, concurrency, rounds))?,
        Bench::Pacing {
            users,
            capacity,
            latency_ms,
            settings,
            rounds,
        } => runtime.block_on(pacing::compare(
            &dir,
            &pacing_setup(users, capacity, latency_ms, Some(settings), rounds),
        ))?,
        Bench::Programs {
            users,
            concurrency,
            rounds,
            program,
        } => runtime.block_on(programs::compare(
            &dir,
            &program,
            users,
            concurrency,
            rounds,
        ))?,
    }
    Ok(())
}

/// The pacing benchmark's setup; the default settings unless `settings` is given.
fn pacing_setup(
    users: usize,
    capacity: usize,
    latency_ms: u64,
    settings: Option<Vec<String>>,
    rounds: usize,
) -> pacing::Setup {
    pacing::Setup {
        users,
        capacity: (capacity > 0).then_some(capacity),
        latency: Duration::from_millis(latency_ms),
        settings: settings.unwrap_or_else(|| {
            ["auto", "4", "8", "12", "16", "32", "64"]
                .map(String::from)
                .to_vec()
        }),
        rounds,
    }
}

fn bin_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::current_exe()?
        .parent()
        .map(Path::to_owned)
        .context("cannot tell where rekey-bench lives")?;
    if !dir.join("rekey").is_file() {
        bail!("build the whole workspace first: cargo build --release --workspace");
    }
    Ok(dir)
}

/// A library file in the build directory.
fn library(dir: &Path, crate_name: &str) -> PathBuf {
    dir.join(format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn per_call(elapsed: Duration, calls: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / calls as f64
}

/// Times `check()` through the plugin boundary of a connector that does nothing.
async fn abi(dir: &Path, calls: usize) -> anyhow::Result<()> {
    let library = PluginLibrary::load(&library(dir, "fixture_faulty"), LoadOptions::default())?;
    let connector = Arc::new(library.create(
        &Settings::default(),
        CreateContext {
            target: "bench".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )?);
    for _ in 0..1000 {
        connector.check().await?;
    }
    let started = Instant::now();
    for _ in 0..calls {
        connector.check().await?;
    }
    let sequential = per_call(started.elapsed(), calls);

    let started = Instant::now();
    let mut pending = futures_util::stream::iter(0..calls)
        .map(|_| {
            let connector = Arc::clone(&connector);
            async move { connector.check().await }
        })
        .buffer_unordered(64);
    while let Some(result) = pending.next().await {
        result?;
    }
    let concurrent = per_call(started.elapsed(), calls);
    println!("abi: {calls} calls through the plugin boundary");
    println!(
        "abi:   one at a time:      {sequential:.2} µs per call (round trip, including two thread hops)"
    );
    println!("abi:   64 calls in flight: {concurrent:.2} µs per call (throughput)");
    Ok(())
}

/// Runs the real binary: `rekey reset mail --all --concurrency CONCURRENCY`
/// against `sim`, in `work`.
async fn run_rekey(
    dir: &Path,
    sim: &SmarterMailSim,
    work: &Path,
    concurrency: &str,
) -> anyhow::Result<Duration> {
    let config = work.join("rekey.toml");
    std::fs::write(
        &config,
        format!(
            "[rekey]\nstate_dir = \"state\"\n[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"BENCH_PW\" }}\n",
            sim.url(),
            sim.domain_admin()
        ),
    )?;
    let out = work.join("results.csv");
    let rekey = dir.join("rekey");
    let password = sim.config().admin_password.clone();
    let concurrency = concurrency.to_owned();
    let started = Instant::now();
    // Standard error (the `job` line) is shown only if rekey fails.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(rekey)
            .arg("--config")
            .arg(&config)
            .args(["-q", "reset", "mail", "--all", "--yes", "--concurrency"])
            .arg(concurrency)
            .arg("--out")
            .arg(&out)
            .env("BENCH_PW", password)
            .env_remove("REKEY_PLUGIN_PATH")
            .stderr(std::process::Stdio::piped())
            .output()
    })
    .await??;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "rekey exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let users = sim.users().len() - 1;
    let rows = std::fs::read_to_string(work.join("results.csv"))?
        .lines()
        .filter(|l| l.contains(",reset,"))
        .count();
    if rows != users {
        bail!("expected {users} reset rows, found {rows}");
    }
    Ok(elapsed)
}

/// Resets a second of the real binary against a zero-latency simulator.
async fn throughput(dir: &Path, users: usize, concurrency: usize) -> anyhow::Result<()> {
    let sim = SmarterMailSim::start(SmarterMailConfig {
        users,
        ..SmarterMailConfig::default()
    })
    .await?;
    let work = tempfile::tempdir()?;
    let elapsed = run_rekey(dir, &sim, work.path(), &concurrency.to_string()).await?;
    println!(
        "throughput: {users} users, concurrency {concurrency}, zero latency: {:.2} s, {:.0} resets/s (rekey and the simulator share this machine)",
        elapsed.as_secs_f64(),
        users as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Peak resident memory of the real binary resetting `users` users.
async fn memory(dir: &Path, users: usize) -> anyhow::Result<()> {
    let sim = SmarterMailSim::start(SmarterMailConfig {
        users,
        ..SmarterMailConfig::default()
    })
    .await?;
    let work = tempfile::tempdir()?;
    let elapsed = run_rekey(dir, &sim, work.path(), "32").await?;
    // The largest resident set of any child this process has waited for: here,
    // that one `rekey` run (kibibytes on Linux).
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    let peak_mb = usage.max_rss() as f64 / 1024.0;
    println!(
        "memory: {users} users (journal, results file, progress) in {:.1} s: peak resident memory of rekey {peak_mb:.1} MB",
        elapsed.as_secs_f64()
    );
    Ok(())
}
