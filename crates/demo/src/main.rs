//! `rekey-demo`: starts the vendor simulators on 127.0.0.1, writes a config for
//! them (`config/demo.toml`), runs the real `rekey` binary (which loads the real
//! connector libraries) to reset every user of every target, checks each delivered
//! password against the simulator's, and prints a summary per target.
//!
//! Run it from a build of the whole workspace, so that `rekey` and the connector
//! libraries sit next to it: `cargo build --release --workspace &&
//! target/release/rekey-demo`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use rekey_sim::admanager::{AdManagerConfig, AdManagerSim};
use rekey_sim::broadworks::{BroadWorksConfig, BroadWorksSim};
use rekey_sim::inhouse::{InhouseConfig, InhouseSim};
use rekey_sim::oracle::{OracleConfig, OracleSim};
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

    let smartermail = Arc::new(runtime.block_on(SmarterMailSim::start(SmarterMailConfig {
        users: USERS,
        ..SmarterMailConfig::default()
    }))?);
    let broadworks = Arc::new(runtime.block_on(BroadWorksSim::start(BroadWorksConfig {
        users: USERS,
        ..BroadWorksConfig::default()
    }))?);
    let oracle = Arc::new(runtime.block_on(OracleSim::start(OracleConfig {
        users: USERS,
        ..OracleConfig::default()
    }))?);
    let admanager = Arc::new(runtime.block_on(AdManagerSim::start(AdManagerConfig {
        users: USERS,
        ..AdManagerConfig::default()
    }))?);
    let inhouse = Arc::new(runtime.block_on(InhouseSim::start(InhouseConfig {
        users: USERS,
        ..InhouseConfig::default()
    }))?);

    let config = include_str!("../../../config/demo.toml")
        .replace("{smartermail}", &smartermail.url())
        .replace("{broadworks}", &broadworks.url())
        .replace("{oracle}", &oracle.url())
        .replace("{admanager}", &admanager.url())
        .replace("{inhouse}", &inhouse.url());
    let config_path = work.path().join("rekey.toml");
    std::fs::write(&config_path, config)?;
    let env = [
        (
            "DEMO_SMARTERMAIL_PASSWORD",
            smartermail.config().admin_password.clone(),
        ),
        ("DEMO_ODIN_PASSWORD", broadworks.config().password.clone()),
        (
            "DEMO_PRIMAVERA_PASSWORD",
            oracle.config().admin_password.clone(),
        ),
        (
            "DEMO_ADMANAGER_TOKEN",
            admanager.config().auth_token.clone(),
        ),
        ("DEMO_ACME_API_KEY", inhouse.config().keys[0].key.clone()),
    ];

    let demos = vec![
        Demo {
            target: "mail",
            connector: "smartermail",
            stored_password: Box::new(move |user| smartermail.password(user)),
        },
        Demo {
            target: "pbx",
            connector: "broadworks",
            stored_password: Box::new(move |user| broadworks.web_password(user)),
        },
        Demo {
            target: "p6",
            connector: "oracle-cloud",
            stored_password: Box::new(move |user| oracle.password(user)),
        },
        Demo {
            target: "ad",
            connector: "admanager",
            stored_password: Box::new(move |user| admanager.password(user)),
        },
        Demo {
            target: "acme",
            connector: "example",
            stored_password: Box::new(move |user| inhouse.password(user)),
        },
    ];

    println!(
        "rekey demo: {} simulated systems on 127.0.0.1, about {USERS} users each; resetting every user\n",
        demos.len()
    );
    let mut all_good = true;
    for demo in &demos {
        let out = work.path().join(format!("results-{}.csv", demo.target));
        let output = Command::new(&rekey)
            .arg("--config")
            .arg(&config_path)
            .args(["-q", "reset", demo.target, "--all", "--yes", "--out"])
            .arg(&out)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("REKEY_PLUGIN_PATH")
            .output()
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
        let good =
            output.status.code() == Some(0) && verified == count("reset") && count("reset") > 0;
        all_good &= good;
        println!(
            "{:<5} {:<12} exit {}: {:>3} reset, {} failed, {} skipped; {verified}/{} new passwords match the simulator{}",
            demo.target,
            demo.connector,
            output.status.code().unwrap_or(-1),
            count("reset"),
            count("failed"),
            count("skipped"),
            count("reset"),
            if good { "" } else { "  <-- PROBLEM" }
        );
        if !good {
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        }
    }
    println!(
        "\n(skipped: each connector's own admin account, and excluded users.) The results files were\nwritten with mode 0600 to {} and are removed now.",
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
