//! The SmarterMail connector, in-process, against the SmarterMail simulator.

use std::sync::Arc;
use std::time::Duration;

use rekey_api::{
    Connector, CreateContext, CredentialKind, ErrorKind, NewPassword, Plugin, ResetItem,
    ResetRequest, SettingValue, Settings,
};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_smartermail::SmarterMail;

fn connector(url: &str, username: &str, password: &str, domain: Option<&str>) -> SmarterMail {
    let mut values = vec![
        ("url".to_owned(), SettingValue::Plain(url.into())),
        ("username".to_owned(), SettingValue::Plain(username.into())),
        ("password".to_owned(), SettingValue::Secret(password.into())),
    ];
    if let Some(domain) = domain {
        values.push(("domain".to_owned(), SettingValue::Plain(domain.into())));
    }
    let settings = Settings::check(&SmarterMail::metadata().settings, values).unwrap();
    SmarterMail::create(
        settings,
        CreateContext {
            target: "mail".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )
    .unwrap()
}

fn domain_admin(sim: &SmarterMailSim) -> SmarterMail {
    connector(
        &sim.url(),
        &sim.domain_admin(),
        &sim.config().admin_password,
        None,
    )
}

fn reset_one(user: &str, password: &str) -> ResetRequest {
    ResetRequest {
        kind: CredentialKind::Password,
        items: vec![ResetItem {
            user: user.into(),
            password: NewPassword::Known(password.into()),
        }],
    }
}

#[tokio::test]
async fn resets_and_reports_per_user() {
    let sim = SmarterMailSim::start(SmarterMailConfig::default())
        .await
        .unwrap();
    let c = domain_admin(&sim);
    let report = c.check().await.unwrap();
    assert_eq!(report.account.as_deref(), Some("admin@example.com"));

    let outcomes = c
        .reset(reset_one("user00001@example.com", "Fresh-Pass-123"))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok());
    assert_eq!(
        sim.password("user00001@example.com").unwrap(),
        "Fresh-Pass-123"
    );

    let outcomes = c
        .reset(reset_one("nobody@example.com", "Fresh-Pass-123"))
        .await
        .unwrap();
    let error = outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(error.kind, ErrorKind::UserNotFound);
    assert_eq!(error.message, "User does not exist.");

    // The simulator's policy wants a digit: HTTP 200 with success:false.
    let outcomes = c
        .reset(reset_one("user00002@example.com", "NoDigitsHere"))
        .await
        .unwrap();
    let error = outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(error.kind, ErrorKind::Rejected);
    assert!(error.message.contains("number"), "{}", error.message);
    assert!(sim.history("user00002@example.com").is_empty());
    assert_eq!(sim.logins(), 1);
}

#[tokio::test]
async fn lists_every_user_in_pages() {
    let sim = SmarterMailSim::start(SmarterMailConfig {
        users: 2500,
        ..SmarterMailConfig::default()
    })
    .await
    .unwrap();
    let c = domain_admin(&sim);
    let mut cursor = None;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = c.list_users(cursor).await.unwrap();
        pages += 1;
        ids.extend(page.users.into_iter().map(|u| u.id));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 2501);
    assert!(ids.contains(&"admin@example.com".to_owned()));
}

#[tokio::test]
async fn refreshes_tokens_once_for_all_workers_and_never_logs_in_again() {
    let sim = SmarterMailSim::start(SmarterMailConfig {
        users: 40,
        token_lifetime: Duration::from_secs(2),
        ..SmarterMailConfig::default()
    })
    .await
    .unwrap();
    let c = Arc::new(domain_admin(&sim));
    c.check().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let tasks: Vec<_> = (1..=8)
        .map(|i| {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                c.reset(reset_one(
                    &format!("user{i:05}@example.com"),
                    &format!("Refresh-{i}-Pass"),
                ))
                .await
            })
        })
        .collect();
    for task in tasks {
        let outcomes = task.await.unwrap().unwrap();
        assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    }
    assert_eq!(sim.logins(), 1);
    assert_eq!(
        sim.refreshes(),
        1,
        "one refresh serves every waiting worker"
    );
}

#[tokio::test]
async fn system_admin_manages_a_domain_by_impersonation() {
    let sim = SmarterMailSim::start(SmarterMailConfig::default())
        .await
        .unwrap();
    let config = sim.config().clone();
    let c = connector(
        &sim.url(),
        &config.sysadmin,
        &config.sysadmin_password,
        Some("example.com"),
    );
    c.check().await.unwrap();
    let page = c.list_users(None).await.unwrap();
    assert_eq!(page.users.len(), 11);
    let outcomes = c
        .reset(reset_one("user00003@example.com", "Imperson8-Pass"))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok());
    assert_eq!(
        sim.password("user00003@example.com").unwrap(),
        "Imperson8-Pass"
    );

    // Without `domain`, a system administrator has no domain to list.
    let bare = connector(
        &sim.url(),
        &config.sysadmin,
        &config.sysadmin_password,
        None,
    );
    let error = bare.list_users(None).await.unwrap_err();
    assert!(
        error.message.contains("The domain not found"),
        "{}",
        error.message
    );
    assert!(error.message.contains("set domain"), "{}", error.message);
}

#[tokio::test]
async fn refused_logins_are_authentication_failures() {
    for bad_login_401 in [false, true] {
        let sim = SmarterMailSim::start(SmarterMailConfig {
            bad_login_401,
            ..SmarterMailConfig::default()
        })
        .await
        .unwrap();
        let c = connector(&sim.url(), &sim.domain_admin(), "wrong", None);
        let error = c.check().await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::AuthRefused);
        assert!(
            error.message.contains("Invalid username or password"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("wrong"));
    }
}

#[tokio::test]
async fn a_plain_users_token_is_forbidden() {
    let sim = SmarterMailSim::start(SmarterMailConfig::default())
        .await
        .unwrap();
    let c = connector(
        &sim.url(),
        "user00001@example.com",
        "Initial-1-Passw0rd",
        None,
    );
    c.check().await.unwrap();
    let error = c.list_users(None).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(error.message.contains("403"), "{}", error.message);
}
