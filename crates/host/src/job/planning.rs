//! Resolving who a job resets on one target, the same way for a dry run (printed)
//! and for a job (journaled).

use crate::definition::JobDefinition;
use crate::engine::{self, PlanError, PlanSink, Planned, Rules};
use crate::exit::Failure;
use crate::target::{Target, target_error};
use crate::users_file::Columns;

use super::spec::retry_policy;

/// Resolves `target`'s users for `definition` into `sink`: the job's selection
/// (its own column of a users file, if the file has one), the target's and the
/// job's exclusions set aside, and the account the connector logs in as (`own`).
/// `names` are every target of the job, to tell target columns apart.
pub async fn plan_target(
    target: &Target,
    definition: &JobDefinition,
    names: &[String],
    own: Option<&str>,
    sink: &mut dyn PlanSink,
) -> Result<Planned, Failure> {
    let exclude: Vec<String> = target
        .config
        .exclude
        .iter()
        .chain(&definition.exclude)
        .cloned()
        .collect();
    let rules = Rules {
        columns: Columns {
            target: target.name(),
            targets: names,
        },
        retry: retry_policy(target),
        exclude: &exclude,
        own_account: own,
        case_insensitive: target.metadata().case_insensitive_ids,
    };
    let planned = engine::plan(
        target.connector.as_ref(),
        &definition.selection,
        &rules,
        sink,
    )
    .await
    .map_err(|e| match e {
        PlanError::Input(e) | PlanError::Store(e) => Failure::usage(e),
        PlanError::Listing(e) => Failure::usage(target_error(target.name(), "listing users", e)),
    })?;
    if planned.repeated > 0 {
        tracing::info!(
            target = target.name(),
            "{} repeated user ids ignored",
            planned.repeated
        );
    }
    Ok(planned)
}
