//! `rekey-bench`: measures what rekey's speed targets are about.
//!
//! Build the whole workspace in release mode first, so the `rekey` binary and the
//! connector libraries sit next to this one:
//!
//! ```text
//! cargo build --release --workspace && target/release/rekey-bench all
//! ```
//!
//! - `abi`: the cost of one call across the plugin boundary (JSON, FFI, the
//!   plugin's runtime and back), sequentially and with many calls in flight,
//!   against a connector whose calls do nothing.
//! - `throughput`: resets a second of the real `rekey` binary and SmarterMail
//!   plugin against a zero-latency SmarterMail simulator.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;
use rekey_api::ffi::host::{LoadOptions, PluginLibrary};
use rekey_api::{Connector, CreateContext, Settings};
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = bin_dir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.bench {
        Bench::All => {
            runtime.block_on(abi(&dir, 50_000))?;
            runtime.block_on(throughput(&dir, 20_000, 32))?;
        }
        Bench::Abi { calls } => runtime.block_on(abi(&dir, calls))?,
        Bench::Throughput { users, concurrency } => {
            runtime.block_on(throughput(&dir, users, concurrency))?
        }
    }
    Ok(())
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

fn per_call(elapsed: Duration, calls: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / calls as f64
}

/// Times `check()` through the plugin boundary of a connector that does nothing.
async fn abi(dir: &Path, calls: usize) -> anyhow::Result<()> {
    let library = dir.join(format!(
        "{}fixture_faulty{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let library = PluginLibrary::load(&library, LoadOptions::default())?;
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

/// Runs the real binary against a zero-latency SmarterMail simulator.
async fn throughput(dir: &Path, users: usize, concurrency: usize) -> anyhow::Result<()> {
    let sim = SmarterMailSim::start(SmarterMailConfig {
        users,
        ..SmarterMailConfig::default()
    })
    .await?;
    let work = tempfile::tempdir()?;
    let config = work.path().join("rekey.toml");
    std::fs::write(
        &config,
        format!(
            "[rekey]\nstate_dir = \"state\"\n[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"BENCH_PW\" }}\n",
            sim.url(),
            sim.domain_admin()
        ),
    )?;
    let out = work.path().join("results.csv");
    let rekey = dir.join("rekey");
    let started = Instant::now();
    let status = tokio::task::spawn_blocking({
        let out = out.clone();
        let password = sim.config().admin_password.clone();
        move || {
            Command::new(rekey)
                .arg("--config")
                .arg(&config)
                .args(["-q", "reset", "mail", "--all", "--yes", "--concurrency"])
                .arg(concurrency.to_string())
                .arg("--out")
                .arg(&out)
                .env("BENCH_PW", password)
                .env_remove("REKEY_PLUGIN_PATH")
                .status()
        }
    })
    .await??;
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("rekey exited with {status}");
    }
    let rows = std::fs::read_to_string(&out)?
        .lines()
        .filter(|l| l.contains(",reset,"))
        .count();
    if rows != users {
        bail!("expected {users} reset rows, found {rows}");
    }
    println!(
        "throughput: {users} users, concurrency {concurrency}, zero latency: {:.2} s, {:.0} resets/s (rekey and the simulator share this machine)",
        elapsed.as_secs_f64(),
        users as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
