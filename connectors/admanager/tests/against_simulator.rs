//! The ADManager Plus connector, in-process, against the ADManager simulator.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rekey_admanager::AdManager;
use rekey_api::{
    Connector, CreateContext, CredentialKind, ErrorKind, NewPassword, Plugin, ResetItem,
    ResetRequest, SettingValue, Settings, UserOutcome,
};
use rekey_sim::Behaviour;
use rekey_sim::admanager::{AdManagerConfig, AdManagerSim, Locale, QuotaRefusal};
use serde_json::Value;

const DAY: Duration = Duration::from_secs(86_400);

fn connector_with(
    sim: &AdManagerSim,
    token: &str,
    state: &Path,
    extra: &[(&str, Value)],
) -> Result<AdManager, rekey_api::ConnectorError> {
    let mut values = vec![
        ("url".to_owned(), SettingValue::Plain(sim.url().into())),
        ("auth_token".to_owned(), SettingValue::Secret(token.into())),
        (
            "domain".to_owned(),
            SettingValue::Plain(sim.config().domain.clone().into()),
        ),
    ];
    for (name, value) in extra {
        values.push(((*name).to_owned(), SettingValue::Plain(value.clone())));
    }
    let settings = Settings::check(&AdManager::metadata().settings, values).unwrap();
    AdManager::create(
        settings,
        CreateContext {
            target: "ad".into(),
            state_dir: state.to_owned(),
            rate: None,
        },
    )
}

fn connector(sim: &AdManagerSim, state: &Path, extra: &[(&str, Value)]) -> AdManager {
    connector_with(sim, &sim.config().auth_token, state, extra).unwrap()
}

fn request(users: &[&str], password: NewPassword) -> ResetRequest {
    ResetRequest {
        kind: CredentialKind::Password,
        items: users
            .iter()
            .map(|user| ResetItem {
                user: (*user).to_owned(),
                password: password.clone(),
            })
            .collect(),
    }
}

fn known(value: &str) -> NewPassword {
    NewPassword::Known(value.into())
}

fn kind(outcome: &UserOutcome) -> Option<ErrorKind> {
    outcome.result.as_ref().err().map(|e| e.kind)
}

fn message(outcome: &UserOutcome) -> &str {
    &outcome.result.as_ref().unwrap_err().message
}

#[tokio::test]
async fn form_bodies_carry_every_printable_ascii_character() {
    let token = "t0k+en/=&%# ?'\"~";
    let sim = AdManagerSim::start(AdManagerConfig {
        auth_token: token.into(),
        extra_users: vec![("obrien".into(), "#O'Brien, Pat & Co+1".into())],
        ..AdManagerConfig::default()
    })
    .await
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = connector_with(&sim, token, state.path(), &[]).unwrap();
    c.check().await.unwrap();
    let printable: String = (' '..='~').collect();
    let outcomes = c
        .reset(request(&["user00001", "USER00002"], known(&printable)))
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    assert_eq!(sim.password("user00001").unwrap(), printable);
    assert_eq!(sim.history("user00002"), std::slice::from_ref(&printable));
    drop(c);

    // Ids travel inside inputFormat: a DN full of reserved characters arrives too.
    let dn = sim.attribute("obrien", "distinguishedName").unwrap();
    assert_eq!(
        dn,
        "CN=\\#O'Brien\\, Pat & Co\\+1,OU=Staff,DC=example,DC=com"
    );
    let c = connector_with(
        &sim,
        token,
        state.path(),
        &[("match_by", "distinguishedName".into())],
    )
    .unwrap();
    let outcomes = c
        .reset(request(&[&dn], known("Dn-Matched-Passw0rd")))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
    assert_eq!(sim.password("obrien").unwrap(), "Dn-Matched-Passw0rd");

    for logged in sim.common().requests() {
        assert_eq!(logged.method, "POST");
        assert!(!logged.uri.contains('?'), "{}", logged.uri);
        assert_eq!(
            logged.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
    }
}

#[tokio::test]
async fn a_refused_token_is_an_authentication_failure() {
    let sim = AdManagerSim::start(AdManagerConfig::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let wrong = connector_with(&sim, "not-the-token", state.path(), &[]).unwrap();
    let error = wrong.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(error.message.contains("00000003"), "{}", error.message);
    assert!(!error.message.contains("not-the-token"));
    // The server's clock was learnt from the refusal; ResetPwd is refused the same way.
    let outcomes = wrong
        .reset(request(&["user00001"], known("Fresh-Passw0rd")))
        .await
        .unwrap();
    assert_eq!(kind(&outcomes[0]), Some(ErrorKind::AuthRefused));
    drop(wrong);

    // A token revoked mid-run: ResetPwd's SEVERE envelope refuses the whole batch.
    let c = connector(&sim, state.path(), &[]);
    c.check().await.unwrap();
    sim.revoke_token(&sim.config().auth_token);
    let outcomes = c
        .reset(request(
            &["user00001", "user00002"],
            known("Fresh-Passw0rd"),
        ))
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| kind(o) == Some(ErrorKind::AuthRefused))
    );
    assert!(sim.history("user00001").is_empty());
    let quota = std::fs::read_to_string(state.path().join("admanager-quota.json")).unwrap();
    assert!(quota.ends_with(r#""used":0}"#), "released: {quota}");
}

#[tokio::test]
async fn per_item_failures_carry_the_vendors_text_unescaped() {
    let sim = AdManagerSim::start(AdManagerConfig::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = connector(&sim, state.path(), &[]);
    c.check().await.unwrap();
    let outcomes = c
        .reset(request(&["user00001", "user00002"], known("short")))
        .await
        .unwrap();
    for outcome in &outcomes {
        assert_eq!(kind(outcome), Some(ErrorKind::Rejected));
        assert!(
            message(outcome).contains("complexity & password history"),
            "{}",
            message(outcome)
        );
        assert!(!message(outcome).contains("&amp;"));
    }
    let outcomes = c
        .reset(request(
            &["user00003", "no&body<x>", "user00004"],
            known("Good-Passw0rd"),
        ))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok() && outcomes[2].result.is_ok());
    assert_eq!(kind(&outcomes[1]), Some(ErrorKind::Rejected));
    assert_eq!(
        message(&outcomes[1]),
        "No such user in the domain: no&body<x>"
    );
    assert_eq!(
        outcomes[0].result.as_ref().unwrap().detail.as_deref(),
        Some("Password reset successful.")
    );
    assert!(sim.history("user00001").is_empty());
    assert_eq!(sim.history("user00004"), ["Good-Passw0rd"]);
}

#[tokio::test]
async fn spanish_messages_are_mapped_by_status_and_code_alone() {
    let sim = AdManagerSim::start(AdManagerConfig {
        locale: Locale::Es,
        daily_limit: 1,
        ..AdManagerConfig::default()
    })
    .await
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = connector(&sim, state.path(), &[]);
    c.check().await.unwrap();
    let outcomes = c
        .reset(request(
            &["user00001", "user00002"],
            known("Buena-Clave-2024"),
        ))
        .await
        .unwrap();
    assert_eq!(
        outcomes[0].result.as_ref().unwrap().detail.as_deref(),
        Some("Contraseña restablecida correctamente.")
    );
    // The server's own quota refusal, per item, in Spanish: still QuotaExhausted.
    assert_eq!(kind(&outcomes[1]), Some(ErrorKind::QuotaExhausted));
    assert!(message(&outcomes[1]).contains("límite diario"));
    let outcomes = c
        .reset(request(&["user00003"], known("mala")))
        .await
        .unwrap();
    assert_eq!(
        kind(&outcomes[0]),
        Some(ErrorKind::QuotaExhausted),
        "envelope"
    );
    sim.common().clock.advance(DAY);
    let outcomes = c
        .reset(request(&["user00003"], known("mala")))
        .await
        .unwrap();
    assert_eq!(kind(&outcomes[0]), Some(ErrorKind::Rejected));
    assert!(message(&outcomes[0]).contains("directiva de contraseñas"));
    let wrong = connector_with(&sim, "otro", tempfile::tempdir().unwrap().path(), &[]).unwrap();
    assert_eq!(
        wrong.check().await.unwrap_err().kind,
        ErrorKind::AuthRefused
    );
}

#[tokio::test]
async fn the_servers_own_quota_refusal_is_quota_exhausted() {
    for refusal in [QuotaRefusal::Envelope, QuotaRefusal::PerItem] {
        let sim = AdManagerSim::start(AdManagerConfig {
            daily_limit: 2,
            quota_refusal: refusal,
            ..AdManagerConfig::default()
        })
        .await
        .unwrap();
        let state = tempfile::tempdir().unwrap();
        let c = connector(&sim, state.path(), &[]);
        c.check().await.unwrap();
        let outcomes = c
            .reset(request(
                &["user00001", "user00002"],
                known("Shared-Passw0rd"),
            ))
            .await
            .unwrap();
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        let outcomes = c
            .reset(request(&["user00003"], known("Shared-Passw0rd")))
            .await
            .unwrap();
        assert_eq!(
            kind(&outcomes[0]),
            Some(ErrorKind::QuotaExhausted),
            "{refusal:?}"
        );
        assert!(sim.history("user00003").is_empty());
        let quota = std::fs::read_to_string(state.path().join("admanager-quota.json")).unwrap();
        assert!(quota.ends_with(r#""used":2}"#), "{quota}");
    }
}

#[tokio::test]
async fn quota_reservations_under_concurrency_never_exceed_the_limit() {
    let sim = AdManagerSim::start(AdManagerConfig {
        users: 40,
        daily_limit: 1000,
        behaviour: Behaviour {
            latency: Duration::from_millis(20),
            ..Behaviour::default()
        },
        ..AdManagerConfig::default()
    })
    .await
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = Arc::new(connector(&sim, state.path(), &[("daily_limit", 10.into())]));
    c.check().await.unwrap();
    // A second run on the same target is refused while this one holds the quota.
    let error = connector_with(&sim, &sim.config().auth_token, state.path(), &[])
        .err()
        .unwrap();
    assert_eq!(error.kind, ErrorKind::InvalidSettings);
    assert!(
        error.message.contains("another rekey run"),
        "{}",
        error.message
    );

    // Half the users get a password the policy refuses: their room is released
    // and taken by others, so exactly ten good resets land.
    let tasks: Vec<_> = (1..=40)
        .map(|i| {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let password = if i % 2 == 0 {
                    format!("Good-{i}-Passw0rd")
                } else {
                    "bad".to_owned()
                };
                c.reset(request(&[&format!("user{i:05}")], known(&password)))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let applied = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let held = outcomes
        .iter()
        .filter(|o| kind(o) == Some(ErrorKind::QuotaExhausted))
        .count();
    assert_eq!(applied, 10);
    assert_eq!(sim.quota_used_today(), 10);
    let rejected = outcomes
        .iter()
        .filter(|o| kind(o) == Some(ErrorKind::Rejected))
        .count();
    assert_eq!(applied + held + rejected, 40, "{outcomes:?}");
    assert!(rejected >= 1, "refused users released their room");
    let changed: usize = (1..=40)
        .map(|i| sim.history(&format!("user{i:05}")).len())
        .sum();
    assert_eq!(changed, 10);
}

#[tokio::test]
async fn the_quota_day_follows_the_servers_clock() {
    let sim = AdManagerSim::start(AdManagerConfig::default())
        .await
        .unwrap();
    // The server lives three days ahead of this machine.
    sim.common().clock.advance(3 * DAY);
    let server_day = |sim: &AdManagerSim| {
        time::OffsetDateTime::from(sim.common().clock.now())
            .date()
            .to_string()
    };
    let state = tempfile::tempdir().unwrap();
    let c = connector(&sim, state.path(), &[("daily_limit", 2.into())]);
    let outcomes = c
        .reset(request(
            &["user00001", "user00002", "user00003"],
            known("Day-One-Passw0rd"),
        ))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok() && outcomes[1].result.is_ok());
    assert_eq!(kind(&outcomes[2]), Some(ErrorKind::QuotaExhausted));
    assert!(
        message(&outcomes[2]).contains("daily_limit"),
        "{}",
        message(&outcomes[2])
    );
    let quota = std::fs::read_to_string(state.path().join("admanager-quota.json")).unwrap();
    assert_eq!(
        quota,
        format!(r#"{{"day":"{}","used":2}}"#, server_day(&sim))
    );

    // The server's next day: the same connector carries on without a new check.
    sim.common().clock.advance(DAY);
    let outcomes = c
        .reset(request(&["user00003"], known("Day-Two-Passw0rd")))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
    let quota = std::fs::read_to_string(state.path().join("admanager-quota.json")).unwrap();
    assert_eq!(
        quota,
        format!(r#"{{"day":"{}","used":1}}"#, server_day(&sim))
    );
    assert_eq!(sim.history("user00003"), ["Day-Two-Passw0rd"]);
}

#[tokio::test]
async fn vendor_generated_passwords_are_set_and_not_returned() {
    let sim = AdManagerSim::start(AdManagerConfig::default())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = connector(
        &sim,
        state.path(),
        &[("match_by", "userPrincipalName".into())],
    );
    let outcomes = c
        .reset(request(
            &["user00001@example.com", "USER00002@EXAMPLE.COM"],
            NewPassword::VendorGenerated,
        ))
        .await
        .unwrap();
    for (outcome, sam) in outcomes.iter().zip(["user00001", "user00002"]) {
        assert!(outcome.result.as_ref().unwrap().vendor_password.is_none());
        assert_eq!(sim.history(sam).len(), 1);
    }
    assert_ne!(sim.password("user00001"), sim.password("user00002"));
    assert_eq!(sim.reset_requests(), 1, "one request for the batch");
}

#[tokio::test]
async fn lists_users_in_pages_by_the_match_attribute() {
    let sim = AdManagerSim::start(AdManagerConfig {
        users: 1200,
        ..AdManagerConfig::default()
    })
    .await
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = connector(&sim, state.path(), &[("match_by", "mail".into())]);
    let report = c.check().await.unwrap();
    assert_eq!(
        report.account, None,
        "the technician is named by sAMAccountName"
    );
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
    assert_eq!(ids.len(), 1201);
    assert!(ids.contains(&"user01200@mail.example.com".to_owned()));
    drop(c);

    let c = connector(&sim, state.path(), &[]);
    let report = c.check().await.unwrap();
    assert_eq!(report.account.as_deref(), Some("helpdesk"));
    assert!(report.detail.contains("helpdesk"), "{}", report.detail);
    let wrong_domain = {
        drop(c);
        let values = vec![
            ("url".to_owned(), SettingValue::Plain(sim.url().into())),
            (
                "auth_token".to_owned(),
                SettingValue::Secret(sim.config().auth_token.clone().into()),
            ),
            (
                "domain".to_owned(),
                SettingValue::Plain("other.example".into()),
            ),
        ];
        let settings = Settings::check(&AdManager::metadata().settings, values).unwrap();
        let context = CreateContext {
            target: "ad".into(),
            state_dir: state.path().to_owned(),
            rate: None,
        };
        AdManager::create(settings, context).unwrap()
    };
    let error = wrong_domain.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidSettings);
    assert!(error.message.contains("other.example"), "{}", error.message);
}

#[tokio::test]
async fn a_build_without_get_auth_info_is_checked_with_search_user() {
    let sim = AdManagerSim::start(AdManagerConfig {
        get_auth_info: false,
        ..AdManagerConfig::default()
    })
    .await
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let c = connector(&sim, state.path(), &[]);
    let report = c.check().await.unwrap();
    assert_eq!(report.account, None);
    assert!(
        report.detail.contains("no GetAuthInfo"),
        "{}",
        report.detail
    );
    let outcomes = c
        .reset(request(&["user00001"], known("Fallback-Passw0rd")))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
    drop(c);
    let wrong = connector_with(&sim, "wrong", state.path(), &[]).unwrap();
    assert_eq!(
        wrong.check().await.unwrap_err().kind,
        ErrorKind::AuthRefused
    );
}
