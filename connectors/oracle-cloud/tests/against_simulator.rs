//! The Primavera Administration connector, in-process, against the simulator.

use rekey_api::{
    Batching, Connector, CreateContext, CredentialKind, ErrorKind, NewPassword, Plugin, ResetItem,
    ResetRequest, SettingValue, Settings, UserOutcome,
};
use rekey_oracle_cloud::OracleCloud;
use rekey_sim::oracle::{DISABLED_MESSAGE, IDENTITY_ERROR, INVALID_INPUT, OracleConfig, OracleSim};
use rekey_sim::{Behaviour, Faults};

const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

fn settings(
    url: &str,
    username: &str,
    password: &str,
    extra: &[(&str, serde_json::Value)],
) -> Settings {
    let mut values = vec![
        ("url".to_owned(), SettingValue::Plain(url.into())),
        ("username".to_owned(), SettingValue::Plain(username.into())),
        ("password".to_owned(), SettingValue::Secret(password.into())),
    ];
    for (name, value) in extra {
        values.push(((*name).to_owned(), SettingValue::Plain(value.clone())));
    }
    Settings::check(&OracleCloud::metadata().settings, values).unwrap()
}

fn context() -> CreateContext {
    CreateContext {
        target: "p6".into(),
        state_dir: std::env::temp_dir(),
        rate: None,
    }
}

fn connector(sim: &OracleSim, extra: &[(&str, serde_json::Value)]) -> OracleCloud {
    OracleCloud::create(
        settings(&sim.url(), "COADMIN", ADMIN_PASSWORD, extra),
        context(),
    )
    .unwrap()
}

async fn start(config: OracleConfig) -> OracleSim {
    OracleSim::start(config).await.unwrap()
}

fn known(users: &[(String, String)]) -> ResetRequest {
    ResetRequest {
        kind: CredentialKind::Password,
        items: users
            .iter()
            .map(|(user, password)| ResetItem {
                user: user.clone(),
                password: NewPassword::Known(password.as_str().into()),
            })
            .collect(),
    }
}

/// `USER0001`.. with passwords the simulated policy accepts.
fn batch(range: std::ops::RangeInclusive<usize>) -> Vec<(String, String)> {
    range
        .map(|n| (format!("USER{n:04}"), format!("Fresh-{n}-Passw0rd")))
        .collect()
}

fn error_kind(outcome: &UserOutcome) -> Option<ErrorKind> {
    outcome.result.as_ref().err().map(|e| e.kind)
}

fn reset_requests(sim: &OracleSim) -> usize {
    sim.reset_calls().len()
}

#[tokio::test]
async fn passwords_travel_as_character_arrays() {
    let sim = start(OracleConfig::default()).await;
    let c = connector(&sim, &[]);
    let report = c.check().await.unwrap();
    assert_eq!(report.account.as_deref(), Some("COADMIN"));
    assert_eq!(c.batching(), Batching::up_to(25));

    // The simulator takes only the array form; this value has a space, quotes
    // and a backslash.
    let value = r#"Pa$$ "w0rd" \~X"#;
    let outcomes = c
        .reset(known(&[("USER0001".into(), value.into())]))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    assert_eq!(sim.password("USER0001").unwrap(), value);
    let put = sim
        .common()
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(put.uri, "/cloudapi/restapi/user/manual-reset-pwd/false");
    assert_eq!(put.content_type.as_deref(), Some("application/json"));
    assert!(sim.notifications().is_empty());

    // notify = true: the path segment, and the tenant e-mails the users.
    let c = connector(&sim, &[("notify", true.into())]);
    let outcomes = c.reset(known(&batch(2..=3))).await.unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    assert_eq!(sim.notifications().len(), 2);
    assert!(
        sim.common()
            .requests()
            .iter()
            .any(|r| r.uri == "/cloudapi/restapi/user/manual-reset-pwd/true")
    );
}

#[tokio::test]
async fn one_unknown_login_fails_alone_in_a_batch_of_25() {
    let sim = start(OracleConfig {
        users: 30,
        ..OracleConfig::default()
    })
    .await;
    let c = connector(&sim, &[]);
    c.check().await.unwrap();
    let mut users = batch(1..=24);
    users.insert(12, ("NOBODY".into(), "Fresh-0-Passw0rd".into()));
    let outcomes = c.reset(known(&users)).await.unwrap();
    assert_eq!(outcomes.len(), 25);
    for (outcome, (user, password)) in outcomes.iter().zip(&users) {
        assert_eq!(&outcome.user, user);
        if user == "NOBODY" {
            let error = outcome.result.as_ref().unwrap_err();
            assert_eq!(error.kind, ErrorKind::UserNotFound);
            assert!(
                error.message.starts_with(INVALID_INPUT),
                "{}",
                error.message
            );
        } else {
            assert!(outcome.result.is_ok(), "{user}: {:?}", outcome.result);
            assert_eq!(
                sim.history(user).as_slice(),
                std::slice::from_ref(password),
                "{user}"
            );
        }
    }
    // The whole batch, the 24 known users at once, and the unknown one alone.
    let sizes: Vec<usize> = sim.reset_calls().iter().map(|c| c.users).collect();
    assert_eq!(sizes, [25, 24, 1]);
}

#[tokio::test]
async fn several_bad_entries_spread_through_a_batch() {
    let sim = start(OracleConfig {
        users: 30,
        ..OracleConfig::default()
    })
    .await;
    let c = connector(&sim, &[]);
    c.check().await.unwrap();
    let mut users = batch(1..=25);
    users[0].0 = "GHOST1".into();
    users[13].0 = "ghost2".into();
    users[7].1 = "weakpass".into();
    users[20].1 = "Sh0rt".into();
    let outcomes = c.reset(known(&users)).await.unwrap();
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = match i {
            0 | 13 => Some(ErrorKind::UserNotFound),
            7 | 20 => Some(ErrorKind::PolicyRejected),
            _ => None,
        };
        assert_eq!(
            error_kind(outcome),
            expected,
            "entry {i}: {:?}",
            outcome.result
        );
        if expected.is_none() {
            assert_eq!(sim.password(&users[i].0).unwrap(), users[i].1);
        }
    }
    assert!(sim.history("USER0008").is_empty());
    assert!(sim.history("USER0021").is_empty());
    let requests = reset_requests(&sim);
    assert!(requests < 2 * 25, "{requests} requests");
}

#[tokio::test]
async fn a_password_the_identity_domain_refuses_fails_only_its_user() {
    let sim = start(OracleConfig::default()).await;
    let c = connector(&sim, &[]);
    c.check().await.unwrap();
    let mut users = batch(1..=10);
    users[4].1 = "alllowercase1".into();
    let outcomes = c.reset(known(&users)).await.unwrap();
    let error = outcomes[4].result.as_ref().unwrap_err();
    assert_eq!(error.kind, ErrorKind::PolicyRejected);
    assert_eq!(error.message, IDENTITY_ERROR);
    assert!(!error.message.contains("alllowercase1"));
    for (i, outcome) in outcomes.iter().enumerate().filter(|(i, _)| *i != 4) {
        assert!(outcome.result.is_ok(), "entry {i}");
    }
    assert!(sim.history("USER0005").is_empty());
    assert_eq!(sim.history("USER0006"), ["Fresh-6-Passw0rd"]);
    assert!(reset_requests(&sim) < 2 * 10);
}

#[tokio::test]
async fn the_vendor_makes_and_mails_passwords_on_request() {
    let sim = start(OracleConfig {
        disabled: vec!["USER0004".into()],
        ..OracleConfig::default()
    })
    .await;
    let c = connector(&sim, &[]);
    c.check().await.unwrap();
    let users = ["USER0001", "user0002", "USER0003", "USER0004", "NOBODY"];
    let request = ResetRequest {
        kind: CredentialKind::Password,
        items: users
            .iter()
            .map(|u| ResetItem {
                user: (*u).into(),
                password: NewPassword::VendorGenerated,
            })
            .collect(),
    };
    let outcomes = c.reset(request).await.unwrap();
    for outcome in &outcomes[..3] {
        let applied = outcome.result.as_ref().unwrap();
        assert!(applied.vendor_password.is_none());
        assert!(applied.detail.as_deref().unwrap().contains("e-mails"));
        let changes = sim.changes(&outcome.user);
        assert_eq!(changes.len(), 1, "{}", outcome.user);
        assert!(changes[0].vendor_made && changes[0].emailed);
    }
    assert_eq!(
        outcomes[1].user, "user0002",
        "the user as the host named it"
    );
    let disabled = outcomes[3].result.as_ref().unwrap_err();
    assert_eq!(
        (disabled.kind, disabled.message.as_str()),
        (ErrorKind::Rejected, DISABLED_MESSAGE)
    );
    assert_eq!(error_kind(&outcomes[4]), Some(ErrorKind::UserNotFound));
    assert!(sim.history("USER0004").is_empty());
    let calls = sim.reset_calls();
    assert!(calls.iter().all(|c| c.endpoint == "auto-reset-pwd"));
    assert_eq!(
        calls.len(),
        3,
        "the batch, the known users, the unknown one"
    );
}

#[tokio::test]
async fn refused_credentials_and_missing_rights() {
    let sim = start(OracleConfig::default()).await;
    let wrong = OracleCloud::create(
        settings(&sim.url(), "COADMIN", "Wrong-Pass-1", &[]),
        context(),
    )
    .unwrap();
    let error = wrong.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(error.message.contains("401"), "{}", error.message);
    assert!(!error.message.contains("Wrong-Pass-1"));
    let error = wrong.reset(known(&batch(1..=2))).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);

    let plain = OracleCloud::create(
        settings(&sim.url(), "USER0001", "Initial-1-Passw0rd", &[]),
        context(),
    )
    .unwrap();
    let error = plain.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(error.message.contains("Primavera Administration rights"));
    assert!(sim.reset_calls().is_empty());
}

#[tokio::test]
async fn values_outside_printable_ascii_are_refused_without_a_request() {
    let sim = start(OracleConfig::default()).await;
    let c = connector(&sim, &[]);
    c.check().await.unwrap();
    let outcomes = c
        .reset(known(&[("USER0001".into(), "Pässwörd-123".into())]))
        .await
        .unwrap();
    assert_eq!(error_kind(&outcomes[0]), Some(ErrorKind::Rejected));
    assert!(sim.common().requests().iter().all(|r| r.method == "GET"));
    assert_eq!(
        OracleCloud::metadata().password_rules.charset,
        rekey_api::Charset::PrintableAscii
    );
}

#[tokio::test]
async fn lists_users_in_pages_from_the_list_check_fetched() {
    let sim = start(OracleConfig {
        users: 2500,
        ..OracleConfig::default()
    })
    .await;
    let c = OracleCloud::create(
        settings(&sim.url(), "coadmin", ADMIN_PASSWORD, &[]),
        context(),
    )
    .unwrap();
    let report = c.check().await.unwrap();
    assert_eq!(
        report.account.as_deref(),
        Some("COADMIN"),
        "spelled as listed"
    );
    let mut cursor = None;
    let mut ids = Vec::new();
    loop {
        let page = c.list_users(cursor).await.unwrap();
        ids.extend(page.users.into_iter().map(|u| u.id));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(ids.len(), 2501);
    assert!(ids.contains(&"USER2500".to_owned()));
    assert_eq!(
        sim.common().requests().len(),
        1,
        "one GET for check and listing"
    );
}

#[tokio::test]
async fn failures_of_the_transport_leave_the_outcome_unknown() {
    let sim = start(OracleConfig::default()).await;
    let c = connector(&sim, &[]);
    c.check().await.unwrap();
    sim.common().set_behaviour(Behaviour {
        faults: Faults {
            rate: 1.0,
            statuses: vec![503],
            after_apply: 1.0,
            ..Faults::default()
        },
        ..Behaviour::default()
    });
    let outcomes = c.reset(known(&batch(1..=3))).await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| error_kind(o) == Some(ErrorKind::Transient))
    );
    // Applied behind the 503: exactly why the host keeps these passwords.
    assert_eq!(sim.password("USER0002").unwrap(), "Fresh-2-Passw0rd");
    assert_eq!(reset_requests(&sim), 1, "no split and no retry of its own");
}

#[test]
fn a_zero_batch_size_is_refused_by_the_schema() {
    let error = Settings::check(
        &OracleCloud::metadata().settings,
        [
            (
                "url".to_owned(),
                SettingValue::Plain("http://127.0.0.1:9".into()),
            ),
            ("username".to_owned(), SettingValue::Plain("COADMIN".into())),
            (
                "password".to_owned(),
                SettingValue::Secret(ADMIN_PASSWORD.into()),
            ),
            ("batch_size".to_owned(), SettingValue::Plain(0.into())),
        ],
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "setting `batch_size` must be at least 1, not 0"
    );
}
