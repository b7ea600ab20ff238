//! The example connector, in-process, against the Acme Directory simulator: every
//! capability, and every way an answer is classified.
//!
//! This is the level most of a connector's tests belong at: fast, no plugin
//! boundary, and the simulator's state shows exactly what was set.

use std::time::Duration;

use rekey_api::{
    Batching, Capability, Connector, CreateContext, CredentialKind, ErrorKind, NewPassword, Plugin,
    ResetItem, ResetRequest, Secret, SettingValue, Settings, UserOutcome,
};
use rekey_example::AcmeDirectory;
use rekey_sim::inhouse::{
    ApiKey, Credential, DEFAULT_ACCOUNT, DEFAULT_KEY, InhouseConfig, InhouseSim, SCOPE_READ,
    user_id,
};
use rekey_sim::{Behaviour, Faults};

/// The connector for `sim`, with `extra` settings, created as the host creates it.
fn try_connector(
    url: &str,
    api_key: &str,
    extra: Vec<(&str, SettingValue)>,
) -> Result<AcmeDirectory, rekey_api::ConnectorError> {
    let mut values = vec![
        ("url".to_owned(), SettingValue::Plain(url.into())),
        ("api_key".to_owned(), SettingValue::Secret(api_key.into())),
    ];
    values.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let settings = Settings::check(&AcmeDirectory::metadata().settings, values)?;
    AcmeDirectory::create(
        settings,
        CreateContext {
            target: "acme".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )
}

fn connector(sim: &InhouseSim) -> AcmeDirectory {
    try_connector(&sim.url(), DEFAULT_KEY, vec![]).unwrap()
}

fn known(kind: CredentialKind, users: &[(&str, &str)]) -> ResetRequest {
    ResetRequest {
        kind,
        items: users
            .iter()
            .map(|(user, value)| ResetItem {
                user: (*user).to_owned(),
                password: NewPassword::Known(Secret::from(*value)),
            })
            .collect(),
    }
}

fn outcome<'a>(outcomes: &'a [UserOutcome], user: &str) -> &'a UserOutcome {
    let matching: Vec<_> = outcomes.iter().filter(|o| o.user == user).collect();
    assert_eq!(matching.len(), 1, "exactly one outcome for {user}");
    matching[0]
}

fn error_of(outcomes: &[UserOutcome], user: &str) -> rekey_api::ConnectorError {
    outcome(outcomes, user).result.clone().unwrap_err()
}

#[test]
fn metadata_declares_every_capability_and_a_valid_schema() {
    let meta = AcmeDirectory::metadata();
    meta.validate().unwrap();
    assert_eq!(meta.name, "example");
    assert_eq!(
        meta.kinds,
        [CredentialKind::Password, CredentialKind::Passcode]
    );
    for capability in [
        Capability::ListUsers,
        Capability::VendorValues,
        Capability::VendorReset,
    ] {
        assert!(meta.has(capability), "{capability:?}");
    }
    let api_key = meta.setting_spec("api_key").unwrap();
    assert!(api_key.secret && api_key.required);
    assert_eq!(
        meta.setting_spec("batch_size").unwrap().default,
        Some(50.into())
    );
    assert_eq!(
        meta.setting_spec("list_accounts").unwrap().choices,
        ["all", "enabled"]
    );
    assert!(meta.setting_spec("allow_insecure_http").is_some());
    assert!(meta.setting_spec("timeout").is_some());
}

#[test]
fn settings_are_checked_before_anything_is_sent() {
    let url = "http://127.0.0.1:9";
    let batch = |n: u64| vec![("batch_size", SettingValue::Plain(n.into()))];
    let too_big = try_connector(url, DEFAULT_KEY, batch(101)).err().unwrap();
    assert_eq!(too_big.kind, ErrorKind::InvalidSettings);
    assert!(too_big.message.contains("1 to 100"), "{}", too_big.message);
    assert!(try_connector(url, DEFAULT_KEY, batch(0)).is_err());
    let c = try_connector(url, DEFAULT_KEY, batch(100)).unwrap();
    assert_eq!(c.batching(), Batching::up_to(100));
    assert_eq!(connector_at(url).batching(), Batching::up_to(50));

    let choice = vec![("list_accounts", SettingValue::Plain("some".into()))];
    let error = try_connector(url, DEFAULT_KEY, choice).err().unwrap();
    assert_eq!(error.kind, ErrorKind::InvalidSettings);

    let error = try_connector(url, "two words\n", vec![]).err().unwrap();
    assert_eq!(error.kind, ErrorKind::InvalidSettings);
    assert!(!error.message.contains("two words"), "never quote the key");

    let error = try_connector("http://directory.acme.example", DEFAULT_KEY, vec![])
        .err()
        .unwrap();
    assert!(
        error.message.contains("allow_insecure_http"),
        "{}",
        error.message
    );
    let insecure = vec![("allow_insecure_http", SettingValue::Plain(true.into()))];
    assert!(try_connector("http://directory.acme.example", DEFAULT_KEY, insecure).is_ok());
}

fn connector_at(url: &str) -> AcmeDirectory {
    try_connector(url, DEFAULT_KEY, vec![]).unwrap()
}

#[tokio::test]
async fn check_names_the_service_account_and_refuses_weak_or_wrong_keys() {
    let mut config = InhouseConfig::default();
    config.keys.push(ApiKey {
        key: "read-only-key".into(),
        account: "svc-audit".into(),
        scopes: vec![SCOPE_READ.into()],
    });
    let sim = InhouseSim::start(config).await.unwrap();

    let report = connector(&sim).check().await.unwrap();
    assert_eq!(report.account.as_deref(), Some(DEFAULT_ACCOUNT));
    assert!(
        report.detail.contains("passwords:write"),
        "{}",
        report.detail
    );

    let read_only = try_connector(&sim.url(), "read-only-key", vec![]).unwrap();
    let error = read_only.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    for needed in [
        "svc-audit",
        "lacks the passwords:write scope",
        "users:read",
        "grant",
    ] {
        assert!(
            error.message.contains(needed),
            "{needed}: {}",
            error.message
        );
    }
    // The same key may still list: that needs only users:read.
    assert!(read_only.list_users(None).await.is_ok());
    // Resetting with it is refused by the directory itself (403): nothing changes.
    let outcomes = read_only
        .reset(known(
            CredentialKind::Password,
            &[("u00001", "Fresh-Passw0rd-1")],
        ))
        .await
        .unwrap();
    assert_eq!(error_of(&outcomes, "u00001").kind, ErrorKind::AuthRefused);
    assert!(sim.history("u00001").is_empty());

    let wrong = try_connector(&sim.url(), "not-a-key", vec![]).unwrap();
    let error = wrong.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(error.message.contains("HTTP 401"), "{}", error.message);

    // The key travels in a header only.
    assert!(
        sim.common()
            .requests()
            .iter()
            .all(|r| !r.uri.contains(DEFAULT_KEY) && !r.uri.contains("read-only-key"))
    );
}

#[tokio::test]
async fn a_url_that_is_not_an_acme_directory_is_a_settings_error() {
    let other = rekey_sim::smartermail::SmarterMailSim::start(Default::default())
        .await
        .unwrap();
    let error = connector_at(&other.url()).check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidSettings);
    assert!(error.message.contains("root"), "{}", error.message);
}

#[tokio::test]
async fn lists_every_account_through_server_side_pages() {
    let sim = InhouseSim::start(InhouseConfig {
        users: 450,
        ..InhouseConfig::default()
    })
    .await
    .unwrap();
    let list = |c: AcmeDirectory| async move {
        let (mut cursor, mut users, mut pages) = (None, Vec::new(), 0);
        loop {
            let page = c.list_users(cursor).await.unwrap();
            pages += 1;
            users.extend(page.users);
            cursor = page.next;
            if cursor.is_none() {
                return (users, pages);
            }
        }
    };
    let (users, pages) = list(connector(&sim)).await;
    assert_eq!(pages, 3, "200 a page");
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(
        ids,
        sim.users(),
        "every account once, service account included"
    );
    assert_eq!(users.iter().filter(|u| u.disabled).count(), 45);
    assert_eq!(users[1].name.as_deref(), Some("User 1"));

    let enabled = vec![("list_accounts", SettingValue::Plain("enabled".into()))];
    let (users, _) = list(try_connector(&sim.url(), DEFAULT_KEY, enabled).unwrap()).await;
    assert_eq!(users.len(), 451 - 45);
    assert!(users.iter().all(|u| !u.disabled));

    // The cursor is the vendor's own, passed through: a forged one is refused.
    let error = connector(&sim)
        .list_users(Some("forged".into()))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Rejected);
    assert!(
        error.message.contains("unknown cursor"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn resets_a_batch_with_known_values_of_either_kind() {
    let sim = InhouseSim::start(InhouseConfig::default()).await.unwrap();
    let c = connector(&sim);
    let passwords: Vec<(String, String)> = (1..=12)
        .map(|i| (user_id(i), format!("Fresh-Passw0rd-{i:03}")))
        .collect();
    let pairs: Vec<(&str, &str)> = passwords
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let outcomes = c
        .reset(known(CredentialKind::Password, &pairs))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 12);
    for (user, password) in &passwords {
        let applied = outcome(&outcomes, user).result.as_ref().unwrap();
        assert!(applied.vendor_password.is_none());
        assert_eq!(sim.password(user).as_deref(), Some(password.as_str()));
    }
    assert_eq!(sim.reset_batches(), [12], "one request for the batch");

    let outcomes = c
        .reset(known(CredentialKind::Passcode, &[("u00003", "20481632")]))
        .await
        .unwrap();
    assert!(outcome(&outcomes, "u00003").result.is_ok());
    assert_eq!(sim.passcode("u00003").as_deref(), Some("20481632"));
    assert_eq!(
        sim.password("u00003").as_deref(),
        Some("Fresh-Passw0rd-003")
    );
    assert_eq!(sim.history("u00003")[1].credential, Credential::Passcode);
}

#[tokio::test]
async fn each_user_gets_its_own_outcome_and_only_proven_refusals_are_definite() {
    let sim = InhouseSim::start(InhouseConfig {
        failing_users: vec!["u00005".into()],
        ..InhouseConfig::default()
    })
    .await
    .unwrap();
    let c = connector(&sim);
    let outcomes = c
        .reset(known(
            CredentialKind::Password,
            &[
                ("u00001", "Fresh-Passw0rd-1"),
                ("nobody", "Fresh-Passw0rd-2"),
                ("u00002", "short"),
                (DEFAULT_ACCOUNT, "Fresh-Passw0rd-3"),
                ("u00004", "tab\tinside-Passw0rd"),
                ("u00005", "Fresh-Passw0rd-5"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 6);
    assert!(outcome(&outcomes, "u00001").result.is_ok());

    let error = error_of(&outcomes, "nobody");
    assert_eq!(error.kind, ErrorKind::UserNotFound);
    assert_eq!(
        error.message, "no user with id nobody",
        "the vendor's words"
    );

    let error = error_of(&outcomes, "u00002");
    assert_eq!(error.kind, ErrorKind::PolicyRejected);
    assert!(error.message.contains("12 to 64"), "{}", error.message);
    assert!(sim.history("u00002").is_empty());

    let error = error_of(&outcomes, DEFAULT_ACCOUNT);
    assert_eq!(error.kind, ErrorKind::Rejected);
    assert!(
        error.message.contains("service account"),
        "{}",
        error.message
    );

    // Malformed for the protocol: failed here, never sent, and the batch went on.
    let error = error_of(&outcomes, "u00004");
    assert_eq!(error.kind, ErrorKind::PolicyRejected);
    assert!(error.message.contains("not sent"), "{}", error.message);
    assert!(sim.history("u00004").is_empty());
    assert_eq!(sim.reset_batches(), [5]);

    // The store did not confirm, yet the value is in effect: unknown, so the host
    // keeps it and retries with it.
    let error = error_of(&outcomes, "u00005");
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(!error.kind.definitely_not_applied());
    assert_eq!(sim.password("u00005").as_deref(), Some("Fresh-Passw0rd-5"));

    let outcomes = c
        .reset(known(
            CredentialKind::Passcode,
            &[("u00006", "12ab"), ("u00007", "1111111")],
        ))
        .await
        .unwrap();
    assert!(
        error_of(&outcomes, "u00006")
            .message
            .contains("digits only")
    );
    let error = error_of(&outcomes, "u00007");
    assert_eq!(error.kind, ErrorKind::PolicyRejected);
    assert_eq!(error.message, "passcode must not repeat one digit");
}

#[tokio::test]
async fn vendor_values_are_fetched_in_calls_of_at_most_one_hundred() {
    let sim = InhouseSim::start(InhouseConfig::default()).await.unwrap();
    let c = connector(&sim);
    let values = c.generate(CredentialKind::Password, 250).await.unwrap();
    let handed_out = sim.handed_out(Credential::Password);
    assert_eq!(
        values
            .iter()
            .map(|v| v.expose().to_owned())
            .collect::<Vec<_>>(),
        handed_out
    );
    let calls = sim
        .common()
        .requests()
        .iter()
        .filter(|r| r.uri.ends_with("passwords:generate"))
        .count();
    assert_eq!(calls, 3);

    let codes = c.generate(CredentialKind::Passcode, 3).await.unwrap();
    assert!(
        codes
            .iter()
            .all(|v| v.expose().bytes().all(|b| b.is_ascii_digit()))
    );
    assert_eq!(sim.handed_out(Credential::Passcode).len(), 3);
    let error = c.generate(CredentialKind::Sip, 1).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unsupported);

    // Generating sets nothing; the host then sets the values like its own.
    assert!(sim.users().iter().all(|u| sim.history(u).is_empty()));
    let outcomes = c
        .reset(ResetRequest {
            kind: CredentialKind::Password,
            items: vec![ResetItem {
                user: "u00001".into(),
                password: NewPassword::Known(values[0].clone()),
            }],
        })
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok());
    assert_eq!(sim.password("u00001").as_deref(), Some(values[0].expose()));
}

#[tokio::test]
async fn vendor_resets_in_place_without_revealing_the_value() {
    let sim = InhouseSim::start(InhouseConfig::default()).await.unwrap();
    let c = connector(&sim);
    for kind in [CredentialKind::Password, CredentialKind::Passcode] {
        let outcomes = c
            .reset(ResetRequest {
                kind,
                items: vec![ResetItem {
                    user: "u00002".into(),
                    password: NewPassword::VendorGenerated,
                }],
            })
            .await
            .unwrap();
        let applied = outcomes[0].result.as_ref().unwrap();
        assert!(applied.vendor_password.is_none(), "Acme does not reveal it");
        assert!(applied.detail.as_deref().unwrap().contains("e-mail"));
    }
    let history = sim.history("u00002");
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|c| c.generated_in_place));
    assert_eq!(
        sim.password("u00002").as_deref(),
        Some(history[0].value.as_str())
    );
    assert_eq!(
        sim.passcode("u00002").as_deref(),
        Some(history[1].value.as_str())
    );
}

#[tokio::test]
async fn whole_call_failures_reach_every_user_of_the_batch() {
    let sim = InhouseSim::start(InhouseConfig {
        rate_limit: Some(1),
        ..InhouseConfig::default()
    })
    .await
    .unwrap();
    let c = connector(&sim);
    // Three calls in well under two seconds: at least one exceeds 1 a second.
    let mut limited = Vec::new();
    for i in 1..=3 {
        let user = user_id(i);
        let outcomes = c
            .reset(known(
                CredentialKind::Password,
                &[
                    (user.as_str(), "Fresh-Passw0rd-9"),
                    ("u00009", "Fresh-Passw0rd-9"),
                ],
            ))
            .await
            .unwrap();
        if let Err(error) = &outcomes[0].result {
            assert_eq!(error.kind, ErrorKind::RateLimited);
            assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
            assert_eq!(error_of(&outcomes, "u00009"), *error, "the whole batch");
            limited.push(user);
        }
    }
    assert!(!limited.is_empty(), "the directory's rate limit was hit");
    for user in limited {
        assert!(sim.history(&user).is_empty(), "429: nothing applied");
    }

    // A gateway timeout after the server did the work: unknown, and indeed applied.
    let sim = InhouseSim::start(InhouseConfig::default()).await.unwrap();
    sim.common().set_behaviour(Behaviour {
        faults: Faults {
            rate: 1.0,
            statuses: vec![504],
            retry_after_secs: None,
            after_apply: 1.0,
        },
        ..Behaviour::default()
    });
    let outcomes = connector(&sim)
        .reset(known(
            CredentialKind::Password,
            &[("u00001", "Fresh-Passw0rd-1")],
        ))
        .await
        .unwrap();
    let error = error_of(&outcomes, "u00001");
    assert_eq!(error.kind, ErrorKind::Transient);
    assert_eq!(sim.password("u00001").as_deref(), Some("Fresh-Passw0rd-1"));
}
