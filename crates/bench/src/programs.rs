//! Connector programs against libraries: resets a second of the real `rekey`
//! binary through the Python example connector program and through the Rust
//! example connector library, against the same zero-latency Acme Directory
//! simulator.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;
use rekey_sim::inhouse::{DEFAULT_ACCOUNT, DEFAULT_KEY, InhouseConfig, InhouseSim};

/// The Python example connector in this source tree.
pub fn example_program() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/example-python/rekey-connector-example-python")
}

/// Which connector a run goes through.
#[derive(Debug, Clone, Copy)]
enum Through {
    Library,
    Program,
}

/// Resets every user of a fresh simulator through `through`, and returns the
/// time the `rekey` process took.
async fn run(
    dir: &Path,
    program: &Path,
    through: Through,
    users: usize,
    concurrency: usize,
    batch_size: usize,
) -> anyhow::Result<Duration> {
    let sim = InhouseSim::start(InhouseConfig {
        users,
        disabled_every: 0,
        ..InhouseConfig::default()
    })
    .await?;
    let work = tempfile::tempdir()?;
    let connector = match through {
        Through::Library => "connector = \"example\"".to_owned(),
        Through::Program => format!(
            "connector = \"example-python\"\nconnector_command = [\"{}\"]",
            program.display()
        ),
    };
    let config = work.path().join("rekey.toml");
    std::fs::write(
        &config,
        format!(
            "[rekey]\nstate_dir = \"state\"\n[targets.acme]\n{connector}\nurl = \"{}\"\napi_key = {{ env = \"BENCH_KEY\" }}\nbatch_size = {batch_size}\n",
            sim.url()
        ),
    )?;
    let out = work.path().join("results.csv");
    let rekey = dir.join("rekey");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let out = out.clone();
        move || {
            Command::new(rekey)
                .arg("--config")
                .arg(&config)
                .args(["-q", "reset", "acme", "--all", "--yes", "--concurrency"])
                .arg(concurrency.to_string())
                .arg("--out")
                .arg(&out)
                .env("BENCH_KEY", DEFAULT_KEY)
                .env_remove("REKEY_PLUGIN_PATH")
                .output()
        }
    })
    .await??;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "rekey exited with {} ({through:?}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rows = std::fs::read_to_string(&out)?
        .lines()
        .filter(|l| l.contains(",reset,"))
        .count();
    if rows != users {
        bail!("expected {users} reset rows, found {rows} ({through:?})");
    }
    // A sample of the delivered passwords is the one in effect.
    for line in std::fs::read_to_string(&out)?.lines().skip(1).step_by(97) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields[1] != DEFAULT_ACCOUNT && sim.password(fields[1]).as_deref() != Some(fields[4]) {
            bail!("{}'s delivered password is not in effect", fields[1]);
        }
    }
    Ok(elapsed)
}

/// Resets a second through the Python program and the Rust library, at
/// `batch_size` 50 (Acme's usual) and 1 (one call per user, the protocol's cost
/// laid bare), `rounds` times each; prints the best round of each.
pub async fn compare(
    dir: &Path,
    program: &Path,
    users: usize,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    println!(
        "programs: {users} users, concurrency {concurrency}, zero latency, best of {rounds} (rekey and the simulator share this machine)"
    );
    for batch_size in [50, 1] {
        for through in [Through::Library, Through::Program] {
            let mut best = Duration::MAX;
            for _ in 0..rounds.max(1) {
                best = best.min(run(dir, program, through, users, concurrency, batch_size).await?);
            }
            let name = match through {
                Through::Library => "Rust library (example)        ",
                Through::Program => "Python program (example-python)",
            };
            println!(
                "programs:   batch_size {batch_size:>2}, {name}: {:.2} s, {:.0} resets/s",
                best.as_secs_f64(),
                users as f64 / best.as_secs_f64()
            );
        }
    }
    Ok(())
}
