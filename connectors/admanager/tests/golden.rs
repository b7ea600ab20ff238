//! The vendor's own samples (seed 003, kept in `tests/golden/admanager/` at the
//! workspace root): the connector's ResetPwd carries the sample's parameters, and
//! it reads the sample's reply to the right outcome. A recording fake stands in
//! for the server, so the reply is the document's, byte for byte.

use std::collections::BTreeMap;

use rekey_admanager::AdManager;
use rekey_api::{
    Connector, CreateContext, CredentialKind, ErrorKind, NewPassword, Plugin, ResetItem,
    ResetRequest, SettingValue, Settings, UserOutcome,
};
use rekey_sim::recorder::{Canned, Recorded, Recorder};
use serde_json::Value;

const USERS: [&str; 2] = ["colin.altonen", "Coleman"];

fn golden(name: &str) -> String {
    let path = format!(
        "{}/../../tests/golden/admanager/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The parameters of the document's sample request `n` (1-based), as printed:
/// the sample is not URL-encoded, so it is split, not decoded.
fn sample_params(n: usize) -> BTreeMap<String, String> {
    let requests = golden("seed-003-requests.txt");
    let line = requests.lines().nth(n - 1).unwrap();
    let (path, query) = line.split_once('?').unwrap();
    assert!(path.ends_with("/RestAPI/ResetPwd"), "{path}");
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

async fn recorder(reply: &str) -> Recorder {
    let auth = serde_json::json!({
        "AdmpAuthObject": serde_json::json!({
            "LOGIN_NAME": "admin",
            "domainNameList": [{ "DOMAIN_NAME": "admanagerplus.com" }],
        }).to_string(),
    });
    Recorder::start([
        (
            "POST",
            "/RestAPI/GetAuthInfo",
            Canned::json(auth.to_string()),
        ),
        ("POST", "/RestAPI/ResetPwd", Canned::json(reply.to_owned())),
    ])
    .await
    .unwrap()
}

/// A connector configured as the sample's caller: its token, domain and
/// `PRODUCT_NAME`.
fn connector(recorder: &Recorder, state: &std::path::Path) -> AdManager {
    let sample = sample_params(1);
    let values = vec![
        ("url".to_owned(), SettingValue::Plain(recorder.url().into())),
        (
            "auth_token".to_owned(),
            SettingValue::Secret(sample["AuthToken"].as_str().into()),
        ),
        (
            "domain".to_owned(),
            SettingValue::Plain(sample["domainName"].clone().into()),
        ),
        (
            "product_name".to_owned(),
            SettingValue::Plain(sample["PRODUCT_NAME"].clone().into()),
        ),
    ];
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

fn request(password: NewPassword) -> ResetRequest {
    ResetRequest {
        kind: CredentialKind::Password,
        items: USERS
            .iter()
            .map(|user| ResetItem {
                user: (*user).to_owned(),
                password: password.clone(),
            })
            .collect(),
    }
}

/// A ResetPwd's parameters, `inputFormat` read as JSON so that only its value
/// counts, not its spelling.
fn comparable(params: BTreeMap<String, String>) -> BTreeMap<String, Value> {
    params
        .into_iter()
        .map(|(name, value)| {
            let value = match name.as_str() {
                "inputFormat" => serde_json::from_str(&value).unwrap(),
                _ => Value::String(value),
            };
            (name, value)
        })
        .collect()
}

/// The one ResetPwd the connector sent: a POST with a form body (the
/// connector's documented way: the sample's GET puts the token and password in
/// the URL), no query string.
fn sent(recorder: &Recorder) -> BTreeMap<String, String> {
    let requests: Vec<Recorded> = recorder.requests_to("/RestAPI/ResetPwd");
    assert_eq!(requests.len(), 1, "one request for the two users");
    let reset = &requests[0];
    assert_eq!(reset.method, "POST");
    assert_eq!(reset.query, None);
    assert_eq!(
        reset.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    reset.form_pairs().into_iter().collect()
}

fn applied(outcomes: &[UserOutcome]) {
    assert_eq!(outcomes.len(), 2);
    for (outcome, user) in outcomes.iter().zip(USERS) {
        assert_eq!(outcome.user, user);
        let applied = outcome.result.as_ref().unwrap();
        assert_eq!(applied.detail.as_deref(), Some("Successfully modified."));
    }
}

#[tokio::test]
async fn a_known_value_is_sent_as_the_samples_request_2_and_its_reply_is_read() {
    let recorder = recorder(&golden("seed-003-reply.json")).await;
    let state = tempfile::tempdir().unwrap();
    let c = connector(&recorder, state.path());
    let sample = sample_params(2);
    let outcomes = c
        .reset(request(NewPassword::Known(sample["pwd"].as_str().into())))
        .await
        .unwrap();
    applied(&outcomes);
    let sent = sent(&recorder);
    assert_eq!(comparable(sent.clone()), comparable(sample));
    // Request 1 is request 2 without `passwordType` (which defaults to a given
    // value), with another password.
    for (name, value) in comparable(sample_params(1)) {
        if name == "pwd" {
            continue;
        }
        assert_eq!(comparable(sent.clone()).get(&name), Some(&value), "{name}");
    }
}

#[tokio::test]
async fn a_vendor_generated_reset_is_sent_as_the_samples_request_3() {
    let recorder = recorder(&golden("seed-003-reply.json")).await;
    let state = tempfile::tempdir().unwrap();
    let c = connector(&recorder, state.path());
    let outcomes = c
        .reset(request(NewPassword::VendorGenerated))
        .await
        .unwrap();
    applied(&outcomes);
    for outcome in &outcomes {
        assert!(outcome.result.as_ref().unwrap().vendor_password.is_none());
    }
    assert_eq!(comparable(sent(&recorder)), comparable(sample_params(3)));
}

/// The document as printed wraps lines inside values (`"colin.alton en"`): a
/// reply naming no user asked for is never taken for a success.
#[tokio::test]
async fn the_literal_sample_with_its_wrapped_values_is_never_a_success() {
    let recorder = recorder(&golden("seed-003-reply.literal.txt")).await;
    let state = tempfile::tempdir().unwrap();
    let c = connector(&recorder, state.path());
    let outcomes = c
        .reset(request(NewPassword::Known("Test@123".into())))
        .await
        .unwrap();
    for outcome in &outcomes {
        let error = outcome.result.as_ref().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Fatal, "unknown: {}", outcome.user);
        assert!(!error.kind.definitely_not_applied());
    }
}
