//! The connector against a fake MyDirectory (`fake_directory`), in-process: the
//! conformance kit, then what this directory does that the kit cannot know.

mod fake_directory;

use std::time::Duration;

use fake_directory::{ADMIN, ADMIN_PASSWORD, FakeDirectory};
use rekey_api::testing::{Value, create, json, setting_values};
use rekey_api::{Connector, CredentialKind, ErrorKind, NewPassword, ResetItem, ResetRequest};
use rekey_conformance::{InProcess, Kit};
use rekey_mydirectory::MyDirectory;

fn settings(directory: &FakeDirectory) -> Value {
    json!({ "url": directory.url(), "username": ADMIN, "password": ADMIN_PASSWORD })
}

fn reset(pairs: &[(&str, &str)]) -> ResetRequest {
    let items = pairs.iter().map(|(user, value)| ResetItem {
        user: (*user).into(),
        password: NewPassword::Known((*value).into()),
    });
    ResetRequest { kind: CredentialKind::Password, items: items.collect() }
}

#[tokio::test(flavor = "multi_thread")]
async fn keeps_rekeys_contract() {
    let directory = FakeDirectory::start(120, Duration::from_secs(3600)).await;
    let kit =
        Kit::new(setting_values::<MyDirectory>(settings(&directory)), "N3w-Passw0rd-1".into());
    let report = kit.run(&InProcess::<MyDirectory>::new(std::env::temp_dir())).await;
    report.assert_passed();
    assert_eq!(
        directory.password("u001").as_deref(),
        Some("Initial-Passw0rd-1"),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resets_each_user_with_its_own_outcome() {
    let directory = FakeDirectory::start(3, Duration::from_secs(3600)).await;
    let connector = create::<MyDirectory>(settings(&directory)).unwrap();
    assert_eq!(connector.check().await.unwrap().account.as_deref(), Some(ADMIN));
    // One user a call (the default batching), as rekey sends them.
    let mut outcomes = Vec::new();
    for pair in [("u001", "N3w-Passw0rd-1"), ("u002", "weak"), ("nobody", "N3w-Passw0rd-3")] {
        outcomes.extend(connector.reset(reset(&[pair])).await.unwrap());
    }
    assert!(outcomes[0].result.is_ok());
    assert_eq!(directory.password("u001").as_deref(), Some("N3w-Passw0rd-1"));
    let weak = outcomes[1].result.as_ref().unwrap_err();
    assert_eq!(weak.kind, ErrorKind::PolicyRejected);
    assert!(weak.message.contains("12 characters or more"), "{}", weak.message);
    assert_eq!(outcomes[2].result.as_ref().unwrap_err().kind, ErrorKind::UserNotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_in_again_before_the_token_expires() {
    let directory = FakeDirectory::start(3, Duration::from_secs(2)).await;
    let connector = create::<MyDirectory>(settings(&directory)).unwrap();
    connector.check().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let outcomes = connector.reset(reset(&[("u001", "N3w-Passw0rd-1")])).await.unwrap();
    assert!(outcomes[0].result.is_ok());
    assert_eq!(directory.logins(), 2);
    assert_eq!(directory.refused(), 0, "no request left with an expired token");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_refused_at_check() {
    let directory = FakeDirectory::start(1, Duration::from_secs(3600)).await;
    let mut wrong = settings(&directory);
    wrong["password"] = json!("not-the-password");
    let connector = create::<MyDirectory>(wrong).unwrap();
    let error = connector.check().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AuthRefused);
    assert!(error.message.contains("invalid username or password"), "{}", error.message);
}
