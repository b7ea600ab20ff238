//! The engine against an in-process connector whose failures are scripted, and an
//! in-memory store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rekey_api::{
    CheckReport, Connector, ConnectorError, ErrorKind, NewPassword, ResetRequest, UserOutcome,
};
use rekey_policy::PasswordPolicy;

use super::*;
use crate::engine::passwords::Generator;
use crate::engine::store::MemoryStore;

const SCOPE: Scope<'static> = Scope {
    job: "job",
    target: "mail",
};

/// What the fake does when a user is reset.
#[derive(Clone, Copy)]
enum Script {
    /// Fail this many times with a transient error (applied or not), then succeed.
    Flaky { failures: u32, applied: bool },
    /// Refuse as unknown.
    Unknown,
    /// Refuse the session (once), as an expired token would.
    AuthOnce,
    /// Refuse the session always.
    AuthAlways,
    /// The quota is spent.
    Quota,
    /// Fail once after applying, then refuse the same password again (as a vendor
    /// with a password history would).
    AppliedThenRefused,
}

#[derive(Default)]
struct Fake {
    scripts: HashMap<String, Script>,
    /// Every (user, password) sent.
    sent: Mutex<Vec<(String, String)>>,
    /// Per user, how many times it failed so far.
    failed: Mutex<HashMap<String, u32>>,
    /// What is in effect per user.
    applied: Mutex<HashMap<String, String>>,
    checks: Mutex<u32>,
}

impl Fake {
    fn with(scripts: &[(&str, Script)]) -> Fake {
        Fake {
            scripts: scripts.iter().map(|(u, s)| ((*u).to_owned(), *s)).collect(),
            ..Fake::default()
        }
    }

    fn sent_to(&self, user: &str) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

#[async_trait]
impl Connector for Fake {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        *self.checks.lock().unwrap() += 1;
        Ok(CheckReport::default())
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let mut outcomes = Vec::new();
        for item in request.items {
            let NewPassword::Known(password) = &item.password else {
                return Err(ConnectorError::unsupported("known values only"));
            };
            self.sent
                .lock()
                .unwrap()
                .push((item.user.clone(), password.expose().to_owned()));
            let failures = {
                let mut failed = self.failed.lock().unwrap();
                let n = failed.entry(item.user.clone()).or_default();
                *n += 1;
                *n - 1
            };
            let result = match self.scripts.get(&item.user) {
                Some(Script::Flaky {
                    failures: max,
                    applied,
                }) if failures < *max => {
                    if *applied {
                        self.applied
                            .lock()
                            .unwrap()
                            .insert(item.user.clone(), password.expose().to_owned());
                    }
                    Err(ConnectorError::transient("503 from the gateway")
                        .with_retry_after(Some(Duration::from_millis(1))))
                }
                Some(Script::Unknown) => {
                    Err(ConnectorError::user_not_found("User does not exist."))
                }
                Some(Script::AuthOnce) if failures == 0 => {
                    Err(ConnectorError::auth_refused("token expired"))
                }
                Some(Script::AuthAlways) => Err(ConnectorError::auth_refused("token revoked")),
                Some(Script::Quota) => Err(ConnectorError::new(
                    ErrorKind::QuotaExhausted,
                    "daily limit reached",
                )),
                Some(Script::AppliedThenRefused) if failures == 0 => {
                    self.applied
                        .lock()
                        .unwrap()
                        .insert(item.user.clone(), password.expose().to_owned());
                    Err(ConnectorError::transient("gateway timeout"))
                }
                Some(Script::AppliedThenRefused) => Err(ConnectorError::policy_rejected(
                    "the password was used before",
                )),
                _ => {
                    self.applied
                        .lock()
                        .unwrap()
                        .insert(item.user.clone(), password.expose().to_owned());
                    Ok(rekey_api::Applied::default())
                }
            };
            outcomes.push(UserOutcome {
                user: item.user,
                result,
            });
        }
        Ok(outcomes)
    }
}

fn spec() -> JobSpec {
    JobSpec {
        kind: CredentialKind::Password,
        passwords: PasswordSource::Generate(Generator::Password(Box::new(
            PasswordPolicy::default().generator().unwrap(),
        ))),
        pacing: Pacing::Fixed(4),
        retry: RetryPolicy {
            budget: Duration::from_secs(5),
            first_pause: Duration::from_millis(1),
            max_pause: Duration::from_millis(5),
        },
    }
}

fn users(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("u{i}")).collect()
}

async fn run_job(
    connector: &dyn Connector,
    store: &dyn JobStore,
    spec: &JobSpec,
    stop: &StopSignal,
) -> (Summary, Vec<UserRecord>) {
    let mut settled = Vec::new();
    let summary = execute(
        Run {
            connector,
            store,
            scope: SCOPE,
            spec,
            stop,
        },
        &mut |user| {
            settled.push(user.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    (summary, settled)
}

#[tokio::test]
async fn passing_failures_are_retried_with_the_same_password() {
    let fake = Fake::with(&[
        (
            "u2",
            Script::Flaky {
                failures: 3,
                applied: false,
            },
        ),
        (
            "u3",
            Script::Flaky {
                failures: 2,
                applied: true,
            },
        ),
        ("u4", Script::Unknown),
    ]);
    let store = MemoryStore::with_users(users(20));
    let (summary, rows) = run_job(&fake, &store, &spec(), &StopSignal::default()).await;
    assert_eq!((summary.reset, summary.failed), (19, 1));
    assert!(summary.stopped.is_none());
    for user in ["u2", "u3"] {
        let sent = fake.sent_to(user);
        assert!(sent.len() > 1, "{user} was retried");
        assert!(
            sent.iter().all(|p| *p == sent[0]),
            "{user} got one password only"
        );
        let record = store.user(user).unwrap();
        assert_eq!(record.state, UserState::Reset);
        assert_eq!(record.password.unwrap().expose(), sent[0]);
    }
    assert_eq!(
        fake.sent_to("u4").len(),
        1,
        "a definite failure is never retried"
    );
    let u4 = rows.iter().find(|r| r.user == "u4").unwrap();
    assert_eq!(
        (u4.state, u4.detail.as_str()),
        (UserState::Failed, "User does not exist.")
    );
    assert!(u4.password.is_none());
}

#[tokio::test]
async fn an_exhausted_retry_budget_stops_the_job_and_keeps_the_intent() {
    let fake = Fake::with(&[(
        "u1",
        Script::Flaky {
            failures: u32::MAX,
            applied: true,
        },
    )]);
    let store = MemoryStore::with_users(users(1));
    let mut spec = spec();
    spec.retry.budget = Duration::from_millis(50);
    let (summary, settled) = run_job(&fake, &store, &spec, &StopSignal::default()).await;
    assert!(summary.stopped.unwrap().starts_with("target unreachable"));
    assert!(settled.is_empty());
    let record = store.user("u1").unwrap();
    assert_eq!(
        record.state,
        UserState::Sending,
        "the outcome stays unknown for resume"
    );
    let password = record.password.unwrap();
    assert_eq!(
        fake.applied.lock().unwrap()["u1"],
        password.expose(),
        "the store keeps the password that may be in effect"
    );

    // Resuming sends the very same password.
    let fixed = Fake::default();
    let (summary, _) = run_job(&fixed, &store, &spec, &StopSignal::default()).await;
    assert_eq!(summary.reset, 1);
    assert_eq!(fixed.sent_to("u1"), [password.expose().to_owned()]);
}

#[tokio::test]
async fn an_expired_session_is_renewed_once() {
    let fake = Fake::with(&[("u1", Script::AuthOnce), ("u2", Script::AuthOnce)]);
    let store = MemoryStore::with_users(users(5));
    let mut spec = spec();
    spec.pacing = Pacing::Fixed(1);
    let (summary, _) = run_job(&fake, &store, &spec, &StopSignal::default()).await;
    // u1's refusal re-authenticates; u2's, after that, stops the job.
    assert_eq!(*fake.checks.lock().unwrap(), 1);
    assert!(
        summary
            .stopped
            .unwrap()
            .contains("again after re-authenticating")
    );
    assert_eq!(store.user("u1").unwrap().state, UserState::Reset);
    assert_eq!(store.user("u2").unwrap().state, UserState::Sending);
    // u5's password was journaled with its chunk but never sent: resume sends it.
    assert_eq!(store.user("u5").unwrap().state, UserState::Sending);
    assert!(fake.sent_to("u5").is_empty());
}

#[tokio::test]
async fn a_refused_session_stops_the_job() {
    let fake = Fake::with(&[("u1", Script::AuthAlways)]);
    let store = MemoryStore::with_users(users(3));
    let mut spec = spec();
    spec.pacing = Pacing::Fixed(1);
    let (summary, settled) = run_job(&fake, &store, &spec, &StopSignal::default()).await;
    assert!(summary.stopped.is_some());
    assert!(settled.is_empty());
    assert_eq!(store.counts().pending(), 3);
    assert_eq!(
        fake.sent_to("u2").len(),
        0,
        "nothing is sent after the stop"
    );
}

#[tokio::test]
async fn a_spent_quota_stops_the_job_without_losing_anyone() {
    let fake = Fake::with(&[("u3", Script::Quota)]);
    let store = MemoryStore::with_users(users(6));
    let mut spec = spec();
    spec.pacing = Pacing::Fixed(1);
    let (summary, settled) = run_job(&fake, &store, &spec, &StopSignal::default()).await;
    assert!(summary.stopped.unwrap().contains("quota"));
    assert_eq!(summary.reset, 2);
    assert_eq!(settled.len(), 2);
    let counts = store.counts();
    assert_eq!((counts.reset, counts.pending()), (2, 4));
    assert!(fake.sent_to("u4").is_empty() && fake.sent_to("u6").is_empty());
}

#[tokio::test]
async fn an_interrupted_job_sends_nothing_more() {
    let fake = Fake::default();
    let store = MemoryStore::with_users(users(600));
    let stop = StopSignal::default();
    stop.interrupt();
    let (summary, settled) = run_job(&fake, &store, &spec(), &stop).await;
    assert_eq!(summary.stopped.as_deref(), Some("interrupted"));
    assert!(fake.sent.lock().unwrap().is_empty());
    assert!(settled.is_empty());
    assert_eq!(store.counts().planned, 600);
}

#[tokio::test]
async fn a_refusal_after_an_unknown_outcome_keeps_the_password() {
    let fake = Fake::with(&[("u1", Script::AppliedThenRefused)]);
    let store = MemoryStore::with_users(users(1));
    let (summary, rows) = run_job(&fake, &store, &spec(), &StopSignal::default()).await;
    assert_eq!(summary.failed, 1);
    let in_effect = fake.applied.lock().unwrap()["u1"].clone();
    assert_eq!(rows[0].state, UserState::Failed);
    assert_eq!(
        rows[0].password.as_ref().unwrap().expose(),
        in_effect,
        "the password in effect is handed over"
    );
    assert!(
        rows[0].detail.contains("may be in effect"),
        "{}",
        rows[0].detail
    );
    let kept = store.user("u1").unwrap().password;
    assert_eq!(kept.unwrap().expose(), in_effect, "and kept in the store");
}

mod durability;
mod pacing;
