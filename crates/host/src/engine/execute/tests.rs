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

/// A store whose intents take a while to become durable, and which says which
/// passwords are durable only once `record_intents` has completed.
struct SlowDurableStore {
    inner: MemoryStore,
    durable: std::sync::Arc<Mutex<std::collections::HashSet<String>>>,
}

#[async_trait]
impl JobStore for SlowDurableStore {
    async fn pending(
        &self,
        scope: Scope<'_>,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingUser>> {
        self.inner.pending(scope, after, limit).await
    }

    async fn record_intents(&self, scope: Scope<'_>, intents: Vec<Intent>) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let passwords: Vec<String> = intents
            .iter()
            .filter_map(|i| i.password.as_ref().map(|p| p.expose().to_owned()))
            .collect();
        self.inner.record_intents(scope, intents).await?;
        self.durable.lock().unwrap().extend(passwords);
        Ok(())
    }

    fn record_outcomes(&self, scope: Scope<'_>, outcomes: Vec<UserRecord>) {
        self.inner.record_outcomes(scope, outcomes)
    }

    async fn flush(&self) -> anyhow::Result<()> {
        self.inner.flush().await
    }
}

/// A connector that fails the test if it is ever handed a password that is not yet
/// durable in the store.
struct DurabilityGuard {
    durable: std::sync::Arc<Mutex<std::collections::HashSet<String>>>,
    received: Mutex<usize>,
    early: Mutex<Vec<String>>,
}

#[async_trait]
impl Connector for DurabilityGuard {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(CheckReport::default())
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        for item in &request.items {
            *self.received.lock().unwrap() += 1;
            let password = item.password.known().expect("generated values");
            if !self.durable.lock().unwrap().contains(password.expose()) {
                self.early.lock().unwrap().push(item.user.clone());
            }
        }
        Ok(request
            .items
            .into_iter()
            .map(|i| UserOutcome::applied(i.user))
            .collect())
    }
}

#[tokio::test]
async fn no_password_leaves_before_its_intent_is_durable() {
    let durable = std::sync::Arc::new(Mutex::new(std::collections::HashSet::new()));
    let store = SlowDurableStore {
        inner: MemoryStore::with_users(users(1500)),
        durable: std::sync::Arc::clone(&durable),
    };
    let guard = DurabilityGuard {
        durable,
        received: Mutex::new(0),
        early: Mutex::new(Vec::new()),
    };
    let mut spec = spec();
    spec.pacing = Pacing::Fixed(16);
    let (summary, _) = run_job(&guard, &store, &spec, &StopSignal::default()).await;
    assert_eq!(summary.reset, 1500);
    assert_eq!(*guard.received.lock().unwrap(), 1500);
    let early = guard.early.lock().unwrap();
    assert!(
        early.is_empty(),
        "{} users were sent a password before it was durable, e.g. {:?}",
        early.len(),
        early.first()
    );
}

#[tokio::test]
async fn rate_limited_calls_are_retried_like_passing_faults() {
    /// Refuses each user with 429 twice, then applies it.
    #[derive(Default)]
    struct Throttled {
        seen: Mutex<HashMap<String, Vec<String>>>,
    }

    #[async_trait]
    impl Connector for Throttled {
        async fn check(&self) -> Result<CheckReport, ConnectorError> {
            Ok(CheckReport::default())
        }

        async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
            let mut outcomes = Vec::new();
            for item in request.items {
                let password = item.password.known().unwrap().expose().to_owned();
                let mut seen = self.seen.lock().unwrap();
                let tries = seen.entry(item.user.clone()).or_default();
                tries.push(password);
                let result = if tries.len() <= 2 {
                    Err(
                        ConnectorError::new(ErrorKind::RateLimited, "429 Too Many Requests")
                            .with_retry_after(Some(Duration::from_millis(2))),
                    )
                } else {
                    Ok(rekey_api::Applied::default())
                };
                outcomes.push(UserOutcome {
                    user: item.user,
                    result,
                });
            }
            Ok(outcomes)
        }
    }

    let connector = Throttled::default();
    let store = MemoryStore::with_users(users(5));
    let (summary, settled) = run_job(&connector, &store, &spec(), &StopSignal::default()).await;
    assert_eq!((summary.reset, summary.failed), (5, 0), "{settled:?}");
    assert!(summary.stopped.is_none());
    for (user, tries) in connector.seen.lock().unwrap().iter() {
        assert_eq!(tries.len(), 3, "{user} is retried after each 429");
        assert!(tries.iter().all(|p| *p == tries[0]), "{user}: one password");
        let record = store.user(user).unwrap();
        assert_eq!(record.state, UserState::Reset);
        assert_eq!(record.password.unwrap().expose(), tries[0]);
    }
}

#[tokio::test]
async fn a_failed_hand_over_stops_the_sending() {
    let fake = Fake::default();
    let store = MemoryStore::with_users(users(200));
    let mut spec = spec();
    spec.pacing = Pacing::Fixed(2);
    let mut handed = 0;
    let summary = execute(
        Run {
            connector: &fake,
            store: &store,
            scope: SCOPE,
            spec: &spec,
            stop: &StopSignal::default(),
        },
        &mut |_| {
            handed += 1;
            if handed > 3 {
                anyhow::bail!("No space left on device")
            }
            Ok(())
        },
    )
    .await
    .unwrap();
    assert!(
        summary
            .stopped
            .as_deref()
            .is_some_and(|r| r.contains("cannot write the results file")),
        "{summary:?}"
    );
    let sent = fake.sent.lock().unwrap().len();
    assert!(
        sent <= 4 + 2,
        "{sent} users were sent after the hand-over failed"
    );
    // Every outcome is still in the store, for resume to hand over.
    assert_eq!(store.counts().reset, sent as u64);
}

#[tokio::test(start_paused = true)]
async fn abandoning_drops_requests_in_flight_and_keeps_their_intents() {
    /// Never answers a reset.
    struct Wedged;

    #[async_trait]
    impl Connector for Wedged {
        async fn check(&self) -> Result<CheckReport, ConnectorError> {
            Ok(CheckReport::default())
        }

        async fn reset(&self, _: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
            std::future::pending().await
        }
    }

    let store = MemoryStore::with_users(users(10));
    let stop = StopSignal::default();
    let started = tokio::time::Instant::now();
    let spec = spec();
    let run = run_job(&Wedged, &store, &spec, &stop);
    let abandon = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.interrupt();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.abandon();
    };
    let ((summary, settled), ()) = tokio::join!(run, abandon);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it did not wait out the grace period"
    );
    assert_eq!(summary.stopped.as_deref(), Some("interrupted"));
    assert!(settled.is_empty());
    let counts = store.counts();
    assert_eq!(counts.pending(), 10);
    assert!(counts.sending > 0, "the users in flight keep their intents");
}

/// A vendor that works on `capacity` requests at once, each taking `latency`, and
/// refuses any request above that at once with 429 (no `Retry-After`).
struct Capacity {
    capacity: usize,
    latency: Duration,
    in_flight: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    requests: std::sync::atomic::AtomicUsize,
    refused: std::sync::atomic::AtomicUsize,
}

impl Capacity {
    fn new(capacity: usize, latency: Duration) -> Capacity {
        Capacity {
            capacity,
            latency,
            in_flight: 0.into(),
            peak: 0.into(),
            requests: 0.into(),
            refused: 0.into(),
        }
    }
}

#[async_trait]
impl Connector for Capacity {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(CheckReport::default())
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.requests.fetch_add(1, SeqCst);
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        let result = if now > self.capacity {
            self.refused.fetch_add(1, SeqCst);
            Err(ConnectorError::new(
                ErrorKind::RateLimited,
                "429 Too Many Requests",
            ))
        } else {
            tokio::time::sleep(self.latency).await;
            Ok(request
                .items
                .into_iter()
                .map(|item| UserOutcome {
                    user: item.user,
                    result: Ok(rekey_api::Applied::default()),
                })
                .collect())
        };
        self.in_flight.fetch_sub(1, SeqCst);
        result
    }
}

#[tokio::test(start_paused = true)]
async fn adaptive_pacing_finds_the_vendors_capacity() {
    use std::sync::atomic::Ordering::SeqCst;
    let vendor = Capacity::new(12, Duration::from_millis(40));
    let store = MemoryStore::with_users(users(600));
    let mut spec = spec();
    spec.retry = RetryPolicy::default();
    spec.pacing = Pacing::Adaptive(crate::engine::AdaptiveSettings {
        max: 64,
        rate: None,
    });
    let started = tokio::time::Instant::now();
    let (summary, _) = run_job(&vendor, &store, &spec, &StopSignal::default()).await;
    let elapsed = started.elapsed();
    assert_eq!((summary.reset, summary.failed), (600, 0));
    let (requests, refused) = (vendor.requests.load(SeqCst), vendor.refused.load(SeqCst));
    assert!(
        refused * 100 <= requests * 5,
        "{refused} of {requests} requests refused"
    );
    // The best fixed setting, 12, takes 600 × 40 ms / 12 = 2 s.
    assert!(
        elapsed <= Duration::from_millis(2600),
        "{elapsed:?} (peak {} in flight)",
        vendor.peak.load(SeqCst)
    );

    // A fixed setting is what it always was: that many in flight, refused or not.
    let vendor = Capacity::new(12, Duration::from_millis(40));
    let store = MemoryStore::with_users(users(100));
    spec.pacing = Pacing::Fixed(4);
    run_job(&vendor, &store, &spec, &StopSignal::default()).await;
    assert_eq!(vendor.peak.load(SeqCst), 4);
    assert_eq!(vendor.refused.load(SeqCst), 0);
}

#[tokio::test]
async fn a_cancelled_call_stops_the_job_and_keeps_the_intents() {
    /// Resets `u1` and `u2` (each in a call of its own), then reports every later
    /// call cancelled, as a connector program that died would.
    #[derive(Default)]
    struct Dies {
        calls: Mutex<u32>,
        applied: Mutex<HashMap<String, String>>,
    }

    #[async_trait]
    impl Connector for Dies {
        async fn check(&self) -> Result<CheckReport, ConnectorError> {
            Ok(CheckReport::default())
        }

        async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls
            };
            if call > 2 {
                return Err(ConnectorError::new(
                    ErrorKind::Cancelled,
                    "connector program /x (pid 7) was killed by signal 9 (SIGKILL) while the call was in flight: its outcome is unknown",
                ));
            }
            let item = &request.items[0];
            self.applied.lock().unwrap().insert(
                item.user.clone(),
                item.password.known().unwrap().expose().to_owned(),
            );
            Ok(vec![UserOutcome::applied(item.user.clone())])
        }
    }

    let connector = Dies::default();
    let store = MemoryStore::with_users(users(5));
    let mut spec = spec();
    spec.pacing = Pacing::Fixed(1);
    let (summary, settled) = run_job(&connector, &store, &spec, &StopSignal::default()).await;
    let reason = summary.stopped.expect("the job stops");
    assert!(reason.contains("killed by signal 9"), "{reason}");
    assert_eq!((summary.reset, summary.failed), (2, 0), "no failed rows");
    assert_eq!(settled.len(), 2);
    assert_eq!(*connector.calls.lock().unwrap(), 3, "nothing sent after it");
    let counts = store.counts();
    assert_eq!((counts.reset, counts.pending()), (2, 3));
    let unsettled = store.user("u3").unwrap();
    assert_eq!(
        unsettled.state,
        UserState::Sending,
        "its outcome is unknown"
    );
    assert!(unsettled.password.is_some(), "its intent is kept");
}
