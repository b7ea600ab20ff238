//! `rekey users TARGET`.

use std::io::Write;

use anyhow::anyhow;
use rekey_api::Capability;

use super::{open_state, output_written};
use crate::cli::UsersFormat;
use crate::exit::{CommandResult, Failure};
use crate::target::{Context, Target, target_error};

pub async fn run(context: &Context, name: &str, format: UsersFormat) -> CommandResult {
    let (state, _journal) = open_state(context).await?;
    let target = Target::open(context, &state, name).map_err(Failure::usage)?;
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
        .map_err(|e| Failure::usage(target_error(name, "authenticating", e)))?;
    let mut out = std::io::stdout().lock();
    let mut cursor = None;
    loop {
        let page = target
            .connector
            .list_users(cursor)
            .await
            .map_err(|e| Failure::usage(target_error(name, "listing users", e)))?;
        for user in &page.users {
            let line = match format {
                UsersFormat::Text => user.id.clone(),
                UsersFormat::Json => serde_json::to_string(user).map_err(Failure::stopped)?,
            };
            if let Err(error) = writeln!(out, "{line}") {
                return output_written(Err(error));
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    output_written(out.flush())
}
