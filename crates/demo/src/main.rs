//! `rekey-demo`: starts the vendor simulators on 127.0.0.1, writes a config for
//! them, runs the real `rekey` binary (which loads the real connector libraries)
//! to reset every user of every target, checks each delivered password against the
//! simulator's, and prints a summary per target.
//!
//! Run it from a build of the whole workspace, so that `rekey` and the connector
//! libraries sit next to it: `cargo build --release --workspace &&
//! target/release/rekey-demo`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use serde::Deserialize;

/// Users per simulated system.
const USERS: usize = 50;

#[derive(Debug, Deserialize)]
struct Row {
    user: String,
    status: String,
    password: String,
}

/// Reads a user's current password from a simulator.
type PasswordLookup = Box<dyn Fn(&str) -> Option<String>>;

/// A simulated system and what the demo needs to know of it.
struct Demo {
    target: &'static str,
    connector: &'static str,
    env: Vec<(&'static str, String)>,
    stored_password: PasswordLookup,
}

fn main() -> anyhow::Result<()> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_owned)
        .context("cannot tell where rekey-demo lives")?;
    let rekey = bin_dir.join(format!("rekey{}", std::env::consts::EXE_SUFFIX));
    if !rekey.is_file() {
        bail!(
            "{} not found: build the whole workspace first (cargo build --release --workspace)",
            rekey.display()
        );
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let work = tempfile::Builder::new().prefix("rekey-demo-").tempdir()?;

    let smartermail = runtime.block_on(SmarterMailSim::start(SmarterMailConfig {
        users: USERS,
        ..SmarterMailConfig::default()
    }))?;
    let config =
        include_str!("../../../config/demo.toml").replace("{smartermail}", &smartermail.url());
    let smartermail = Arc::new(smartermail);
    let demos = vec![Demo {
        target: "mail",
        connector: "smartermail",
        env: vec![(
            "DEMO_SMARTERMAIL_PASSWORD",
            smartermail.config().admin_password.clone(),
        )],
        stored_password: Box::new(move |user| smartermail.password(user)),
    }];
    let config_path = work.path().join("rekey.toml");
    std::fs::write(&config_path, config)?;

    println!(
        "rekey demo: {} simulated systems on 127.0.0.1, {USERS} users each\n",
        demos.len()
    );
    let mut all_good = true;
    for demo in &demos {
        let out = work.path().join(format!("results-{}.csv", demo.target));
        let mut command = Command::new(&rekey);
        command
            .arg("--config")
            .arg(&config_path)
            .args(["-q", "reset", demo.target, "--all", "--yes", "--out"])
            .arg(&out)
            .env_remove("REKEY_PLUGIN_PATH");
        for (key, value) in &demo.env {
            command.env(key, value);
        }
        let status = command
            .status()
            .with_context(|| format!("running {}", rekey.display()))?;
        let rows = read_rows(&out)?;
        let count = |status: &str| rows.iter().filter(|r| r.status == status).count();
        let verified = rows
            .iter()
            .filter(|r| {
                r.status == "reset"
                    && (demo.stored_password)(&r.user).as_deref() == Some(r.password.as_str())
            })
            .count();
        let good = status.code() == Some(0) && verified == count("reset");
        all_good &= good;
        println!(
            "{:<6} {:<12} exit {}: {} reset, {} failed, {} skipped; {verified}/{} new passwords match the simulator{}",
            demo.target,
            demo.connector,
            status.code().unwrap_or(-1),
            count("reset"),
            count("failed"),
            count("skipped"),
            count("reset"),
            if good { "" } else { "  <-- PROBLEM" }
        );
    }
    println!(
        "\nresults files were written (mode 0600) to {} and are removed now",
        work.path().display()
    );
    if !all_good {
        bail!("the demo did not go as expected");
    }
    Ok(())
}

fn read_rows(path: &PathBuf) -> anyhow::Result<Vec<Row>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(reader.deserialize().collect::<Result<_, _>>()?)
}
