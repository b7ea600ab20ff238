//! The BroadWorks connector, in-process, against the Odin API simulator.

use std::sync::Arc;
use std::time::Duration;

use rekey_api::{
    Connector, CreateContext, CredentialKind, ErrorKind, NewPassword, Plugin, ResetItem,
    ResetRequest, SettingValue, Settings, UserOutcome,
};
use rekey_broadworks::BroadWorks;
use rekey_sim::broadworks::{BroadWorksConfig, BroadWorksSim, Credential, GenerateCalls};
use rekey_sim::{Behaviour, Faults};

fn connector_with(sim: &BroadWorksSim, password: &str, group: &str) -> BroadWorks {
    let config = sim.config();
    let plain = |v: &str| SettingValue::Plain(v.into());
    let values = vec![
        ("url".to_owned(), plain(&sim.url())),
        ("username".to_owned(), plain(&config.username)),
        ("password".to_owned(), SettingValue::Secret(password.into())),
        (
            "service_provider_id".to_owned(),
            plain(&config.service_provider_id),
        ),
        ("group_id".to_owned(), plain(group)),
    ];
    let settings = Settings::check(&BroadWorks::metadata().settings, values).unwrap();
    BroadWorks::create(
        settings,
        CreateContext {
            target: "pbx".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )
    .unwrap()
}

fn connector(sim: &BroadWorksSim) -> BroadWorks {
    let config = sim.config();
    connector_with(sim, &config.password, &config.group_id)
}

async fn start(config: BroadWorksConfig) -> BroadWorksSim {
    BroadWorksSim::start(config).await.unwrap()
}

async fn reset_one(c: &BroadWorks, kind: CredentialKind, user: &str, value: &str) -> UserOutcome {
    let mut outcomes = c
        .reset(ResetRequest {
            kind,
            items: vec![ResetItem {
                user: user.into(),
                password: NewPassword::Known(value.into()),
            }],
        })
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    let outcome = outcomes.remove(0);
    assert_eq!(outcome.user, user);
    outcome
}

fn error_of(outcome: &UserOutcome) -> &rekey_api::ConnectorError {
    outcome.result.as_ref().unwrap_err()
}

#[tokio::test]
async fn resets_every_kind() {
    let sim = start(BroadWorksConfig::default()).await;
    let c = connector(&sim);
    let report = c.check().await.unwrap();
    assert_eq!(report.account, None, "the Odin login is not a group user");
    assert!(report.detail.contains("Group1"), "{}", report.detail);
    let user = sim.user_id(1);

    let outcome = reset_one(&c, CredentialKind::Password, &user, "Web-Pass-2024").await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(sim.web_password(&user).unwrap(), "Web-Pass-2024");

    let outcome = reset_one(&c, CredentialKind::Sip, &user, "Sip-Pass-2024").await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(sim.sip_password(&user).unwrap(), "Sip-Pass-2024");
    assert_eq!(sim.sip_user_name(&user).unwrap(), "user0001");

    let outcome = reset_one(&c, CredentialKind::Passcode, &user, "52184637").await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(sim.passcode(&user).unwrap(), "52184637");

    for (credential, value) in [
        (Credential::Web, "Web-Pass-2024"),
        (Credential::Sip, "Sip-Pass-2024"),
        (Credential::Passcode, "52184637"),
    ] {
        assert_eq!(sim.history(&user, credential), [value]);
    }
    // The SIP change read the authentication name first, and sent it back.
    let requests = sim.common().requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.uri.starts_with("/api/v2/users/authentication?userId="))
    );
    assert!(
        requests
            .iter()
            .all(|r| !r.uri.contains("Pass-2024") && !r.uri.contains("52184637")),
        "secrets never travel in URLs"
    );
    assert_eq!(sim.logins(), 1);
}

#[tokio::test]
async fn lists_every_user_in_pages() {
    let sim = start(BroadWorksConfig {
        users: 2300,
        ..BroadWorksConfig::default()
    })
    .await;
    let c = connector(&sim);
    let mut cursor = None;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = c.list_users(cursor).await.unwrap();
        pages += 1;
        ids.extend(page.users.into_iter().map(|u| (u.id, u.name)));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 2300);
    assert_eq!(
        ids[0],
        ("user0001@testdomain.net".into(), Some("User 0001".into()))
    );
    let listings = sim
        .common()
        .requests()
        .iter()
        .filter(|r| r.uri.starts_with("/api/v2/users?"))
        .count();
    assert_eq!(listings, 1, "fetched once, handed out in pages");

    // An unknown group is a settings problem, named as such.
    let wrong = connector_with(&sim, &sim.config().password, "NoSuchGroup");
    let error = wrong.list_users(None).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidSettings);
    assert!(
        error.message.contains("Group not found"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn vendor_values_are_fetched_in_batches() {
    let sim = start(BroadWorksConfig::default()).await;
    let c = connector(&sim);
    let passwords = c.generate(CredentialKind::Password, 250).await.unwrap();
    assert_eq!(passwords.len(), 250);
    let passcodes = c.generate(CredentialKind::Passcode, 250).await.unwrap();
    assert_eq!(passcodes.len(), 250);
    let sip = c.generate(CredentialKind::Sip, 5).await.unwrap();
    assert_eq!(sip.len(), 5);
    assert_eq!(
        sim.generate_calls(),
        GenerateCalls {
            password: 3,
            passcode: 3,
            sip: 5
        },
        "100 values a call, never one call per user (SIP: one a call)"
    );
    for value in passwords.iter().chain(&passcodes).chain(&sip) {
        assert!(sim.was_generated(value.expose()));
    }
    for code in &passcodes {
        assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(sim.passcode_violation(code.expose()), None);
    }
    assert!(
        c.generate(CredentialKind::Password, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let limits: Vec<String> = sim
        .common()
        .requests()
        .iter()
        .filter(|r| r.uri.starts_with("/api/v2/password/generate"))
        .map(|r| r.uri.clone())
        .collect();
    assert!(limits[2].ends_with("limit=50"), "{limits:?}");

    // The vendor's values are accepted when set.
    let user = sim.user_id(2);
    let outcome = reset_one(&c, CredentialKind::Sip, &user, sip[0].expose()).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let outcome = reset_one(&c, CredentialKind::Passcode, &user, passcodes[0].expose()).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let outcome = reset_one(&c, CredentialKind::Password, &user, passwords[0].expose()).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(sim.web_password(&user).unwrap(), passwords[0].expose());
}

async fn reset_concurrently(c: &Arc<BroadWorks>, sim: &BroadWorksSim, tag: &str) {
    let tasks: Vec<_> = (1..=8)
        .map(|i| {
            let c = Arc::clone(c);
            let user = sim.user_id(i);
            let value = format!("{tag}-{i}-Pass");
            tokio::spawn(async move {
                (
                    reset_one(&c, CredentialKind::Password, &user, &value).await,
                    user,
                    value,
                )
            })
        })
        .collect();
    for task in tasks {
        let (outcome, user, value) = task.await.unwrap();
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
        assert_eq!(sim.web_password(&user).unwrap(), value);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_the_token_before_it_expires_once_for_all_workers() {
    let sim = start(BroadWorksConfig {
        token_lifetime: Duration::from_secs(6),
        ..BroadWorksConfig::default()
    })
    .await;
    let c = Arc::new(connector(&sim));
    c.check().await.unwrap();
    // The JWT's exp says 6 s (5 s by the server's whole-second Date, less a fifth):
    // the refresh falls due after 4 s at the latest, a second before the token dies.
    tokio::time::sleep(Duration::from_millis(4300)).await;
    reset_concurrently(&c, &sim, "Proactive").await;
    assert_eq!(sim.logins(), 1, "exactly one login");
    assert_eq!(
        sim.refreshes(),
        1,
        "one refresh serves every waiting worker"
    );
    assert_eq!(sim.failed_refreshes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_then_reported() {
    let sim = start(BroadWorksConfig::default()).await;
    let c = Arc::new(connector(&sim));
    c.check().await.unwrap();

    // Every worker's token is refused: one refresh, and every request sent again.
    sim.reject_issued_tokens();
    reset_concurrently(&c, &sim, "After401").await;
    assert_eq!(sim.refreshes(), 1);
    assert_eq!(sim.logins(), 1);

    // The server forgot every token: the refresh fails too, and that is final.
    sim.revoke_tokens();
    let user = sim.user_id(9);
    let outcome = reset_one(&c, CredentialKind::Password, &user, "Never-Sent-1").await;
    let error = error_of(&outcome);
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(error.message.contains("401"), "{}", error.message);
    assert_eq!(sim.failed_refreshes(), 1, "refreshed once, not in a loop");
    assert!(sim.history(&user, Credential::Web).is_empty());

    // Nothing logs in behind the host's back...
    let outcome = reset_one(&c, CredentialKind::Password, &user, "Never-Sent-2").await;
    assert_eq!(error_of(&outcome).kind, ErrorKind::AuthRefused);
    assert_eq!((sim.logins(), sim.failed_refreshes()), (1, 1));
    // ...until the host re-authenticates with check(), which logs in afresh.
    c.check().await.unwrap();
    assert_eq!(sim.logins(), 2);
    let outcome = reset_one(&c, CredentialKind::Password, &user, "After-Login-1").await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

#[tokio::test]
async fn refusals_are_definite_and_carry_the_vendors_message() {
    let sim = start(BroadWorksConfig {
        without_authentication: 2,
        ..BroadWorksConfig::default()
    })
    .await;
    let c = connector(&sim);

    let outcome = reset_one(
        &c,
        CredentialKind::Password,
        "nobody@testdomain.net",
        "Good-Pass-1",
    )
    .await;
    let error = error_of(&outcome);
    assert_eq!(error.kind, ErrorKind::UserNotFound);
    assert_eq!(
        error.message,
        "[Error 4008] User not found: nobody@testdomain.net 404: Not Found"
    );
    // User ids are case-sensitive.
    let upper = sim.user_id(1).to_uppercase();
    let outcome = reset_one(&c, CredentialKind::Passcode, &upper, "1357").await;
    assert_eq!(error_of(&outcome).kind, ErrorKind::UserNotFound);

    let user = sim.user_id(1);
    let outcome = reset_one(&c, CredentialKind::Passcode, &user, "12345678").await;
    let error = error_of(&outcome);
    assert_eq!(error.kind, ErrorKind::Rejected);
    assert!(error.kind.definitely_not_applied());
    assert!(
        error
            .message
            .starts_with("[Error 4962] Passcode does not meet the passcode rules")
            && error.message.ends_with(" 400: Bad Request"),
        "{}",
        error.message
    );
    assert!(sim.history(&user, Credential::Passcode).is_empty());

    let outcome = reset_one(&c, CredentialKind::Password, &user, "alllowercase1").await;
    let error = error_of(&outcome);
    assert_eq!(error.kind, ErrorKind::Rejected);
    assert!(
        error.message.starts_with("[Error 4961]"),
        "{}",
        error.message
    );

    // The last two users lack the Authentication service: no SIP password to set.
    let lacking = sim.user_id(10);
    let outcome = reset_one(&c, CredentialKind::Sip, &lacking, "Sip-Pass-2024").await;
    let error = error_of(&outcome);
    assert!(error.kind.definitely_not_applied(), "{error:?}");
    assert_eq!(
        error.message,
        "[Error 4410] Service not assigned to user user0010@testdomain.net: Authentication 400: Bad Request"
    );
    assert!(sim.history(&lacking, Credential::Sip).is_empty());
    assert_eq!(sim.logins(), 1);
}

#[tokio::test]
async fn server_errors_leave_the_outcome_unknown() {
    let sim = start(BroadWorksConfig::default()).await;
    let c = connector(&sim);
    c.check().await.unwrap();
    sim.common().set_behaviour(Behaviour {
        faults: Faults {
            rate: 1.0,
            statuses: vec![500],
            retry_after_secs: None,
            after_apply: 1.0,
        },
        ..Behaviour::default()
    });
    let user = sim.user_id(3);
    let outcome = reset_one(&c, CredentialKind::Password, &user, "Maybe-Set-1").await;
    let error = error_of(&outcome);
    assert_eq!(error.kind, ErrorKind::Fatal);
    assert!(!error.kind.definitely_not_applied());
    assert!(error.message.contains("500"), "{}", error.message);
    // It was applied behind the failure: that is why the host keeps the value.
    assert_eq!(sim.web_password(&user).unwrap(), "Maybe-Set-1");
}

#[tokio::test]
async fn a_refused_login_is_an_authentication_failure() {
    let sim = start(BroadWorksConfig::default()).await;
    let c = connector_with(&sim, "Wrong-Admin-Password", &sim.config().group_id);
    let error = c.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(
        error
            .message
            .contains("Invalid username or password 401: Unauthorized"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("Wrong-Admin-Password"));
    assert_eq!(sim.failed_logins(), 1);
}
