//! Resets: an unknown user fails alone, every reply answers exactly the users
//! asked, and (when asked for) a real test user is reset.

use std::time::Duration;

use rekey_api::{
    Connector, CredentialKind, ErrorKind, Metadata, NewPassword, ResetItem, ResetRequest, Secret,
    UserOutcome,
};

use super::call;
use crate::{CheckResult, Kit};

/// What every reset reply of the run answered, against what it was asked.
#[derive(Default)]
pub(super) struct Replies {
    calls: usize,
    problems: Vec<String>,
}

impl Replies {
    /// Notes one reply: exactly one outcome per user asked, none for others.
    fn note(&mut self, asked: &[String], outcomes: &[UserOutcome]) {
        self.calls += 1;
        for user in asked {
            match outcomes.iter().filter(|o| o.user == *user).count() {
                1 => {}
                0 => self.problems.push(format!("no outcome for `{user}`")),
                n => self.problems.push(format!("{n} outcomes for `{user}`")),
            }
        }
        for outcome in outcomes.iter().filter(|o| !asked.contains(&o.user)) {
            self.problems.push(format!(
                "an outcome for `{}`, who was not asked",
                outcome.user
            ));
        }
    }

    pub(super) fn verdict(&self) -> CheckResult {
        match (self.calls, self.problems.first()) {
            (0, _) => CheckResult::skip("reset-replies", "no reset reply to look at"),
            (n, None) => CheckResult::pass(
                "reset-replies",
                format!("{n} replies, each with exactly one outcome per user asked"),
            ),
            (_, Some(first)) => CheckResult::fail(
                "reset-replies",
                format!("{} problems, e.g.: {first}", self.problems.len()),
            ),
        }
    }
}

/// A made-up id in the shape of the target's (its e-mail domain, say).
fn made_up_id(sample: Option<&str>) -> String {
    let name = format!(
        "rekey-conformance-no-such-user-{:08x}",
        rand::random::<u32>()
    );
    match sample.and_then(|s| s.split_once('@')) {
        Some((_, domain)) => format!("{name}@{domain}"),
        None => name,
    }
}

/// A reset of a user that does not exist fails for that user alone, definitely.
pub(super) async fn unknown_user(
    connector: &dyn Connector,
    metadata: &Metadata,
    kit: &Kit,
    sample: Option<&str>,
    replies: &mut Replies,
) -> CheckResult {
    const NAME: &str = "unknown-user";
    let user = kit
        .unknown_user
        .clone()
        .unwrap_or_else(|| made_up_id(sample));
    let kind = metadata
        .kinds
        .first()
        .copied()
        .unwrap_or(CredentialKind::Password);
    let request = ResetRequest {
        kind,
        items: vec![ResetItem {
            user: user.clone(),
            password: NewPassword::Known(kit.new_password.clone()),
        }],
    };
    let outcomes = match call(kit.deadline, connector.reset(request)).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            return CheckResult::fail(
                NAME,
                format!(
                    "the whole call failed ({error}); an unknown user's failure belongs in that user's outcome"
                ),
            );
        }
    };
    replies.note(std::slice::from_ref(&user), &outcomes);
    let Some(outcome) = outcomes.into_iter().find(|o| o.user == user) else {
        return CheckResult::fail(NAME, format!("no outcome for `{user}`"));
    };
    match outcome.result {
        Ok(_) => CheckResult::fail(
            NAME,
            format!("the reset of `{user}`, who does not exist, was reported as applied"),
        ),
        Err(error) if error.kind == ErrorKind::UserNotFound => CheckResult::pass(
            NAME,
            format!("refused as user not found: {}", error.message),
        ),
        Err(error) if error.kind.definitely_not_applied() && !error.kind.is_retryable() => {
            CheckResult::pass(
                NAME,
                format!(
                    "refused ({}): {} (the vendor does not tell an unknown user apart)",
                    error.kind, error.message
                ),
            )
        }
        Err(error) => CheckResult::fail(
            NAME,
            format!(
                "`{user}`, who does not exist, got an outcome that is not a definite refusal: {error}"
            ),
        ),
    }
}

/// Resets `user` (who must exist) to `password` and checks the outcome: the
/// in-process form of `rekey conformance --test-user`.
pub async fn reset_test_user(
    connector: &dyn Connector,
    kind: CredentialKind,
    user: &str,
    password: Secret,
    deadline: Duration,
) -> CheckResult {
    const NAME: &str = "test-user";
    let request = ResetRequest {
        kind,
        items: vec![ResetItem {
            user: user.to_owned(),
            password: NewPassword::Known(password),
        }],
    };
    let outcomes = match call(deadline, connector.reset(request)).await {
        Ok(outcomes) => outcomes,
        Err(error) => return CheckResult::fail(NAME, format!("the call failed: {error}")),
    };
    let mut replies = Replies::default();
    replies.note(&[user.to_owned()], &outcomes);
    if let Some(problem) = replies.problems.first() {
        return CheckResult::fail(NAME, problem.clone());
    }
    match outcomes
        .into_iter()
        .find(|o| o.user == user)
        .map(|o| o.result)
    {
        Some(Ok(_)) => CheckResult::pass(NAME, format!("`{user}` was reset")),
        Some(Err(error)) => CheckResult::fail(NAME, format!("`{user}` was not reset: {error}")),
        None => CheckResult::fail(NAME, format!("no outcome for `{user}`")),
    }
}
