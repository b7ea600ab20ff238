//! `rekey users TARGET`.

use std::io::Write;

use anyhow::anyhow;
use rekey_api::Capability;

use super::target_failure;
use crate::cli::UsersFormat;
use crate::exit::{CommandResult, Exit, Failure};
use crate::target::{Context, Target};

pub async fn run(context: &Context, name: &str, format: UsersFormat) -> CommandResult {
    let target = Target::open(context, name).map_err(Failure::usage)?;
    if !target.metadata().has(Capability::ListUsers) {
        return Err(Failure::usage(anyhow!(
            "the {} connector of target `{name}` cannot list users",
            target.metadata().name
        )));
    }
    target
        .connector
        .check()
        .await
        .map_err(|e| target_failure(name, "authenticating", e))?;
    let mut out = std::io::stdout().lock();
    let mut cursor = None;
    loop {
        let page = target
            .connector
            .list_users(cursor)
            .await
            .map_err(|e| target_failure(name, "listing users", e))?;
        for user in &page.users {
            let line = match format {
                UsersFormat::Text => user.id.clone(),
                UsersFormat::Json => serde_json::to_string(user).map_err(Failure::stopped)?,
            };
            writeln!(out, "{line}").map_err(Failure::stopped)?;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.flush().map_err(Failure::stopped)?;
    Ok(Exit::Success)
}
