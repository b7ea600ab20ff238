//! The connector against both shapes of per-user results the simulator can give:
//! with `status` (production builds) and the vendor's documented sample's, ids
//! and `statusMessage` only (vendor-apis.md §5).

use rekey_admanager::AdManager;
use rekey_api::{
    Connector, CreateContext, CredentialKind, ErrorKind, NewPassword, Plugin, ResetItem,
    ResetRequest, SettingValue, Settings, UserOutcome,
};
use rekey_sim::admanager::{AdManagerConfig, AdManagerSim, Locale, QuotaRefusal, ReplyShape};
use serde_json::Value;

const SHAPES: [ReplyShape; 2] = [ReplyShape::Status, ReplyShape::Seed];

async fn sim(shape: ReplyShape, config: AdManagerConfig) -> AdManagerSim {
    AdManagerSim::start(AdManagerConfig {
        reply_shape: shape,
        ..config
    })
    .await
    .unwrap()
}

fn connector(sim: &AdManagerSim, state: &std::path::Path, extra: &[(&str, Value)]) -> AdManager {
    let mut values = vec![
        ("url".to_owned(), SettingValue::Plain(sim.url().into())),
        (
            "auth_token".to_owned(),
            SettingValue::Secret(sim.config().auth_token.as_str().into()),
        ),
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
    .unwrap()
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

fn used(state: &std::path::Path) -> String {
    std::fs::read_to_string(state.join("admanager-quota.json")).unwrap()
}

#[tokio::test]
async fn successes_are_read_from_either_shape() {
    for shape in SHAPES {
        let sim = sim(shape, AdManagerConfig::default()).await;
        let state = tempfile::tempdir().unwrap();
        let c = connector(&sim, state.path(), &[]);
        c.check().await.unwrap();
        let outcomes = c
            .reset(request(
                &["user00001", "USER00002", "user00003"],
                known("Shared-Passw0rd"),
            ))
            .await
            .unwrap();
        let detail = match shape {
            ReplyShape::Status => "Password reset successful.",
            ReplyShape::Seed => "Successfully modified.",
        };
        for outcome in &outcomes {
            let applied = outcome.result.as_ref().unwrap();
            assert_eq!(applied.detail.as_deref(), Some(detail), "{shape:?}");
        }
        assert_eq!(sim.password("user00002").unwrap(), "Shared-Passw0rd");
        let outcomes = c
            .reset(request(&["user00004"], NewPassword::VendorGenerated))
            .await
            .unwrap();
        assert!(outcomes[0].result.is_ok(), "{shape:?}: {outcomes:?}");
        assert_eq!(sim.history("user00004").len(), 1);
        assert!(used(state.path()).ends_with(r#""used":4}"#));
    }
}

#[tokio::test]
async fn failures_without_status_are_unknown_and_never_success() {
    for shape in SHAPES {
        let sim = sim(shape, AdManagerConfig::default()).await;
        let state = tempfile::tempdir().unwrap();
        let c = connector(&sim, state.path(), &[]);
        c.check().await.unwrap();
        let outcomes = c
            .reset(request(
                &["user00001", "nobody", "user00002"],
                known("short"),
            ))
            .await
            .unwrap();
        let outcomes_ok = c
            .reset(request(&["user00003", "nobody"], known("Good-Passw0rd")))
            .await
            .unwrap();
        assert!(outcomes_ok[0].result.is_ok());
        let unknown_user = &outcomes_ok[1];
        match shape {
            // With a status the failures are definite.
            ReplyShape::Status => {
                assert!(
                    outcomes
                        .iter()
                        .all(|o| kind(o) == Some(ErrorKind::Rejected))
                );
                assert_eq!(kind(unknown_user), Some(ErrorKind::Rejected));
                assert!(used(state.path()).ends_with(r#""used":1}"#));
            }
            // Without one, a text that is not a known success leaves the outcome
            // unknown: the password is kept, and the quota keeps counting it.
            ReplyShape::Seed => {
                for outcome in outcomes.iter().chain([unknown_user]) {
                    let error = outcome.result.as_ref().unwrap_err();
                    assert_eq!(error.kind, ErrorKind::Fatal);
                    assert!(!error.kind.definitely_not_applied());
                    assert!(error.message.contains("no status"), "{}", error.message);
                }
                assert!(
                    unknown_user
                        .result
                        .as_ref()
                        .unwrap_err()
                        .message
                        .starts_with("No such user in the domain: nobody")
                );
                assert!(used(state.path()).ends_with(r#""used":5}"#));
            }
        }
        assert!(sim.history("user00001").is_empty());
    }
}

#[tokio::test]
async fn success_messages_extend_the_known_texts() {
    let sim = sim(
        ReplyShape::Seed,
        AdManagerConfig {
            locale: Locale::Es,
            ..AdManagerConfig::default()
        },
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let c = connector(&sim, state.path(), &[]);
    let outcomes = c
        .reset(request(&["user00001"], known("Buena-Clave-2024")))
        .await
        .unwrap();
    let error = outcomes[0].result.as_ref().unwrap_err();
    assert_eq!(error.kind, ErrorKind::Fatal, "an unknown text");
    assert!(error.message.starts_with("Modificado correctamente."));
    assert_eq!(sim.password("user00001").unwrap(), "Buena-Clave-2024");
    drop(c);
    let c = connector(
        &sim,
        state.path(),
        &[(
            "success_messages",
            serde_json::json!(["Otro texto", "  MODIFICADO   correctamente. "]),
        )],
    );
    let outcomes = c
        .reset(request(&["user00002"], known("Buena-Clave-2024")))
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
}

#[tokio::test]
async fn the_servers_quota_refusal_is_read_from_either_shape() {
    for shape in SHAPES {
        let sim = sim(
            shape,
            AdManagerConfig {
                daily_limit: 1,
                quota_refusal: QuotaRefusal::PerItem,
                ..AdManagerConfig::default()
            },
        )
        .await;
        let state = tempfile::tempdir().unwrap();
        let c = connector(&sim, state.path(), &[]);
        let outcomes = c
            .reset(request(
                &["user00001", "user00002"],
                known("Shared-Passw0rd"),
            ))
            .await
            .unwrap();
        assert!(outcomes[0].result.is_ok());
        assert_eq!(
            kind(&outcomes[1]),
            Some(ErrorKind::QuotaExhausted),
            "{shape:?}"
        );
    }
}
