//! `rekey check [TARGET...]`.

use super::target_failure;
use crate::exit::{CommandResult, Exit, Failure};
use crate::target::{Context, Target};

pub async fn run(context: &Context, names: &[String]) -> CommandResult {
    let names: Vec<String> = if names.is_empty() {
        context.config.targets.keys().cloned().collect()
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "{} defines no targets",
            context.config.path.display()
        )));
    }
    // Every target is opened before any is contacted, so a config error costs nothing.
    let targets = names
        .iter()
        .map(|name| Target::open(context, name))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(Failure::usage)?;
    let mut failed = None;
    for target in &targets {
        match target.connector.check().await {
            Ok(report) => {
                let detail = if report.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", report.detail)
                };
                println!("{}: ok{detail}", target.name());
            }
            Err(error) => {
                println!("{}: FAILED: {error}", target.name());
                failed = Some(target_failure(target.name(), "check", error));
            }
        }
    }
    match failed {
        Some(failure) if targets.len() == 1 => Err(failure),
        Some(_) => Err(Failure::stopped(anyhow::anyhow!(
            "some targets failed their check"
        ))),
        None => Ok(Exit::Success),
    }
}
