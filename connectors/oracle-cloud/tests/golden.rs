//! The vendor's own samples (seed 002, kept in `tests/golden/oracle-cloud/` at
//! the workspace root): the connector's manual-reset-pwd body is the sample's,
//! and no shape of the documented reply (one `User` object, as documented; an
//! array; even the document's two objects one after the other) changes the
//! outcome. Also against the simulator answering either shape.

use rekey_api::{
    Connector, CreateContext, CredentialKind, NewPassword, Plugin, ResetItem, ResetRequest,
    SettingValue, Settings, UserOutcome,
};
use rekey_oracle_cloud::OracleCloud;
use rekey_sim::oracle::{ManualResetReply, OracleConfig, OracleSim};
use rekey_sim::recorder::{Canned, Recorder};
use serde_json::{Value, json};

const PATH: &str = "/cloudapi/restapi/user/manual-reset-pwd/true";

fn golden(name: &str) -> String {
    let path = format!(
        "{}/../../tests/golden/oracle-cloud/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn connector(url: &str, password: &str) -> OracleCloud {
    let values = vec![
        ("url".to_owned(), SettingValue::Plain(url.into())),
        ("username".to_owned(), SettingValue::Plain("COADMIN".into())),
        ("password".to_owned(), SettingValue::Secret(password.into())),
        ("notify".to_owned(), SettingValue::Plain(true.into())),
    ];
    let settings = Settings::check(&OracleCloud::metadata().settings, values).unwrap();
    OracleCloud::create(
        settings,
        CreateContext {
            target: "p6".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )
    .unwrap()
}

fn request(users: &[&str], password: &str) -> ResetRequest {
    ResetRequest {
        kind: CredentialKind::Password,
        items: users
            .iter()
            .map(|user| ResetItem {
                user: (*user).to_owned(),
                password: NewPassword::Known(password.into()),
            })
            .collect(),
    }
}

/// A fake tenant holding the sample's users that answers manual-reset-pwd with
/// `reply`.
async fn recorder(reply: String) -> Recorder {
    let users = json!([
        { "loginId": "JSMITH", "emailAddress": "jsmith@pgbu.com", "firstName": "Jim", "lastName": "Smith", "disabled": false, "locked": false },
        { "loginId": "DPATEL", "emailAddress": "dpatel@pgbu.com", "firstName": "Dev", "lastName": "Patel", "disabled": false, "locked": false },
    ]);
    Recorder::start([
        (
            "GET",
            "/cloudapi/restapi/user",
            Canned::json(users.to_string()),
        ),
        ("PUT", PATH, Canned::json(reply)),
    ])
    .await
    .unwrap()
}

fn all_reset(outcomes: &[UserOutcome]) {
    assert_eq!(outcomes.len(), 2);
    for outcome in outcomes {
        assert!(outcome.result.is_ok(), "{outcome:?}");
    }
}

/// Sends the sample's users their sample password; the body must be the
/// sample's (`sample` names the fixture), whatever the key order and spacing.
async fn sends_the_sample(sample: &str, reply: String) -> Vec<UserOutcome> {
    let expected: Value = serde_json::from_str(&golden(sample)).unwrap();
    let password: String = expected[0]["password"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let recorder = recorder(reply).await;
    let c = connector(&recorder.url(), "Admin-Passw0rd!");
    let outcomes = c
        .reset(request(&["JSMITH", "DPATEL"], &password))
        .await
        .unwrap();
    let puts = recorder.requests_to(PATH);
    assert_eq!(puts.len(), 1, "one request for the batch");
    assert_eq!(puts[0].method, "PUT");
    assert_eq!(puts[0].header("content-type"), Some("application/json"));
    assert_eq!(puts[0].json().unwrap(), expected);
    outcomes
}

#[tokio::test]
async fn the_request_is_the_samples_and_the_documented_object_reply_is_read() {
    let outcomes = sends_the_sample("seed-002-curl-body.json", golden("seed-002-reply.json")).await;
    all_reset(&outcomes);
    let outcomes = sends_the_sample("seed-002-request.json", golden("seed-002-reply.json")).await;
    all_reset(&outcomes);
}

#[tokio::test]
async fn no_reply_shape_changes_the_outcome() {
    let one: Value = serde_json::from_str(&golden("seed-002-reply.json")).unwrap();
    for reply in [
        golden("seed-002-reply.literal.txt"),
        json!([one.clone(), one]).to_string(),
    ] {
        let outcomes = sends_the_sample("seed-002-curl-body.json", reply).await;
        all_reset(&outcomes);
    }
}

#[tokio::test]
async fn the_simulator_answering_an_object_or_an_array() {
    for shape in [ManualResetReply::Object, ManualResetReply::Array] {
        let sim = OracleSim::start(OracleConfig {
            manual_reset_reply: shape,
            ..OracleConfig::default()
        })
        .await
        .unwrap();
        let c = connector(&sim.url(), &sim.config().admin_password);
        let users = ["USER0001", "USER0002", "USER0003"];
        let outcomes = c.reset(request(&users, "Golden-Passw0rd-1")).await.unwrap();
        assert!(outcomes.iter().all(|o| o.result.is_ok()), "{shape:?}");
        for user in users {
            assert_eq!(sim.history(user), ["Golden-Passw0rd-1"], "{shape:?}");
        }
        assert_eq!(sim.reset_calls().len(), 1);
    }
}
