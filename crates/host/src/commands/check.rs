//! `rekey check [TARGET...]`.

use std::io::Write as _;

use super::open_state;
use crate::exit::{CommandResult, Exit, Failure};
use crate::target::{Context, Target, target_error};

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
    let (state, _journal) = open_state(context).await?;
    // Every target is opened before any is contacted, so a config error costs nothing.
    let targets = names
        .iter()
        .map(|name| Target::open(context, &state, name))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(Failure::usage)?;
    let mut failed = Vec::new();
    for target in &targets {
        let line = match target.connector.check().await {
            Ok(report) if report.detail.is_empty() => format!("{}: ok", target.name()),
            Ok(report) => format!("{}: ok ({})", target.name(), report.detail),
            Err(error) => {
                let line = format!("{}: FAILED: {error}", target.name());
                failed.push(target_error(target.name(), "authenticating", error));
                line
            }
        };
        let _ = writeln!(std::io::stdout(), "{line}");
    }
    match failed.len() {
        0 => Ok(Exit::Success),
        1 => Err(Failure::usage(failed.remove(0))),
        n => Err(Failure::usage(anyhow::anyhow!(
            "{n} targets failed their check"
        ))),
    }
}
