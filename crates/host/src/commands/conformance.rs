//! `rekey conformance TARGET [--test-user ID --out FILE]`: the connector
//! conformance kit against a configured target, one line per check.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use rekey_api::{Connector, ConnectorError, CredentialKind, Metadata, Secret, Settings};
use rekey_conformance::{CheckResult, Kit, Subject, Verdict};

use super::open_state;
use crate::definition::{JobDefinition, JobTarget, Output, PasswordChoice};
use crate::engine::Selection;
use crate::exit::{CommandResult, Exit, Failure};
use crate::interrupts::Interrupts;
use crate::job::{JobLock, Mode, Runner};
use crate::results::Format;
use crate::target::{Context, TargetLibrary};

impl Subject for TargetLibrary {
    fn metadata(&self) -> Metadata {
        TargetLibrary::metadata(self).clone()
    }

    fn create(&self, settings: Settings) -> Result<Arc<dyn Connector>, ConnectorError> {
        TargetLibrary::create(self, settings)
    }
}

/// The test user to reset, and where its new password goes.
pub struct TestUser<'a> {
    /// The user's id.
    pub id: &'a str,
    /// The results file.
    pub out: &'a Path,
}

pub async fn run(
    context: &Context,
    name: &str,
    test_user: Option<TestUser<'_>>,
    interrupts: Arc<Interrupts>,
) -> CommandResult {
    let (state, journal) = open_state(context).await?;
    let library = TargetLibrary::load(context, &state, name).map_err(Failure::usage)?;
    let kind = library
        .metadata()
        .kinds
        .first()
        .copied()
        .unwrap_or(CredentialKind::Password);
    let new_password = new_value(&library, kind).map_err(Failure::usage)?;
    if let Some(test) = &test_user
        && test.out.exists()
    {
        return Err(Failure::usage(anyhow!(
            "results file {} already exists: rekey never overwrites one; choose another --out",
            test.out.display()
        )));
    }
    let report = Kit::new(library.values.clone(), new_password)
        .run(&library)
        .await;
    let mut out = std::io::stdout().lock();
    for check in &report.checks {
        let _ = writeln!(out, "{check}");
    }
    drop(out);
    let mut passed = report.passed();
    if let Some(test) = test_user {
        // The results file is written as `reset` writes it: encrypted to the
        // config's default recipients, if it names any.
        let recipients = context.config.recipients.clone();
        let result = reset_test_user(
            recipients, library, &journal, &state, test, kind, interrupts,
        )
        .await?;
        let _ = writeln!(std::io::stdout(), "{result}");
        passed &= result.verdict != Verdict::Fail;
    }
    Ok(if passed { Exit::Success } else { Exit::Partial })
}

/// A new value the target's policy would generate: sent only to a user that does
/// not exist.
fn new_value(library: &TargetLibrary, kind: CredentialKind) -> anyhow::Result<Secret> {
    Ok(match kind {
        CredentialKind::Passcode => library.config.passcode_policy.generator()?.generate(),
        _ => library.config.policy.generator()?.generate(),
    })
}

/// Resets the test user through a real, journaled job, its results in `test.out`.
async fn reset_test_user(
    recipients: crate::results::Recipients,
    library: TargetLibrary,
    journal: &crate::journal::Journal,
    state: &crate::state::StateDir,
    test: TestUser<'_>,
    kind: CredentialKind,
    interrupts: Arc<Interrupts>,
) -> CommandResult<CheckResult> {
    const NAME: &str = "test-user";
    let target = library.open().map_err(Failure::usage)?;
    let definition = JobDefinition {
        targets: vec![JobTarget {
            name: target.name().to_owned(),
            connector: target.metadata().name.clone(),
        }],
        kind,
        selection: Selection::Ids(vec![test.id.to_owned()]),
        exclude: Vec::new(),
        passwords: PasswordChoice::Generate,
        concurrency: Some(crate::engine::Concurrency::Fixed(1)),
        output: Output {
            path: Some(std::path::absolute(test.out).map_err(Failure::usage)?),
            format: Format::Csv,
            recipients,
        },
    };
    let id = format!("conformance-{}", super::new_job_id());
    let lock = JobLock::acquire(state, &id).map_err(|e| Failure::usage(anyhow!(e)))?;
    journal
        .create_job(&id, &definition, None)
        .await
        .map_err(Failure::usage)?;
    let exit = Runner {
        journal,
        lock,
        id: id.clone(),
        definition,
        known: None,
        targets: vec![target],
        interrupts,
        quiet: true,
    }
    .run(Mode::Start { confirmed: true }, None)
    .await;
    Ok(match exit {
        Ok(Exit::Success) => CheckResult::pass(
            NAME,
            format!(
                "`{}` was reset (job {id}); its new password is in {}",
                test.id,
                test.out.display()
            ),
        ),
        Ok(other) => CheckResult::fail(
            NAME,
            format!(
                "`{}` was not reset (job {id} ended with exit {}); see {}",
                test.id,
                other as u8,
                test.out.display()
            ),
        ),
        Err(failure) => CheckResult::fail(
            NAME,
            format!("`{}` was not reset: {:#}", test.id, failure.error),
        ),
    })
}
