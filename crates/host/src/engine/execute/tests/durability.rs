//! What the engine keeps durable, and when it retries or stops, on every way a call can end.

use super::*;

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
