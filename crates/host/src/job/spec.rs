//! What a job does on one target: its definition resolved against the target's
//! config and the connector's capabilities.

use std::time::Duration;

use anyhow::bail;
use rekey_api::{Capability, CredentialKind, Secret};

use crate::definition::{JobDefinition, PasswordChoice};
use crate::engine::{
    AdaptiveSettings, Concurrency, Generator, JobSpec, Pacing, PasswordSource, RetryPolicy,
};
use crate::target::Target;

/// Requests in flight when neither the command line nor the target says.
pub const DEFAULT_CONCURRENCY: Concurrency = Concurrency::Fixed(8);

/// The most requests in flight `auto` goes to when the target does not say
/// (`max_concurrency`).
pub const DEFAULT_MAX_CONCURRENCY: u32 = 64;

/// The engine's spec for `target`: the job's kind, where the target's new values
/// come from, and its pacing and retry budget.
pub fn for_target(
    definition: &JobDefinition,
    target: &Target,
    known: Option<&Secret>,
) -> anyhow::Result<JobSpec> {
    Ok(JobSpec {
        kind: definition.kind,
        passwords: password_source(definition.passwords, target, definition.kind, known)?,
        pacing: pacing(definition, target),
        retry: retry_policy(target),
    })
}

/// How `target` paces its requests: `--concurrency`, else the target's
/// `concurrency`, else the default; `auto` within the target's `max_concurrency`
/// and `rate`.
fn pacing(definition: &JobDefinition, target: &Target) -> Pacing {
    let setting = definition
        .concurrency
        .or(target.config.concurrency)
        .unwrap_or(DEFAULT_CONCURRENCY);
    match setting {
        Concurrency::Fixed(n) => Pacing::Fixed(n as usize),
        Concurrency::Auto => Pacing::Adaptive(AdaptiveSettings {
            max: target
                .config
                .max_concurrency
                .unwrap_or(DEFAULT_MAX_CONCURRENCY) as usize,
            rate: target.config.rate,
        }),
    }
}

/// Where `target`'s new values come from.
pub fn password_source(
    choice: PasswordChoice,
    target: &Target,
    kind: CredentialKind,
    known: Option<&Secret>,
) -> anyhow::Result<PasswordSource> {
    let meta = target.metadata();
    Ok(match choice {
        PasswordChoice::Generate => PasswordSource::Generate(generator(target, kind)?),
        PasswordChoice::Known => match known {
            Some(value) => PasswordSource::Known(value.clone()),
            None => bail!("the job's known value is gone from the journal; it cannot go on"),
        },
        PasswordChoice::Vendor if meta.has(Capability::VendorValues) => {
            PasswordSource::VendorValues
        }
        PasswordChoice::Vendor if meta.has(Capability::VendorReset) => {
            PasswordSource::VendorInPlace
        }
        PasswordChoice::Vendor => bail!(
            "the {} connector of target `{}` cannot have the vendor make passwords; drop --vendor-generate",
            meta.name,
            target.name()
        ),
    })
}

/// The local generator for `kind` from the target's policies.
fn generator(target: &Target, kind: CredentialKind) -> anyhow::Result<Generator> {
    Ok(match kind {
        CredentialKind::Passcode => Generator::Passcode(target.config.passcode_policy.generator()?),
        CredentialKind::Password | CredentialKind::Sip => {
            Generator::Password(Box::new(target.config.policy.generator()?))
        }
    })
}

/// The retry policy of a target: its `retry_budget`, else the default.
pub fn retry_policy(target: &Target) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(seconds) = target.config.retry_budget {
        policy.budget = Duration::from_secs(seconds);
    }
    policy
}
