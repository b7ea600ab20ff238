//! The request shapes a real Odin client sends (odins-spear 2.2.6 and 2.3.0,
//! kept in `tests/golden/broadworks/` at the workspace root): the connector's
//! login and its three password puts have the same method, path and body
//! fields. A recording fake stands in for the server.

use rekey_api::{
    Connector, CreateContext, CredentialKind, NewPassword, Plugin, ResetItem, ResetRequest,
    SettingValue, Settings,
};
use rekey_broadworks::BroadWorks;
use rekey_sim::recorder::{Canned, Recorded, Recorder};
use serde_json::{Value, json};

const USER: &str = "john.smith@testdomain.net";

fn shape(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/golden/broadworks/odins-spear-requests.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    fixture["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
        .clone()
}

fn body_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// Asserts that `sent` has `name`'s method, path and JSON content type, and the
/// shape's body fields plus at most `extra`.
fn same_shape(sent: &Recorded, name: &str, extra: &[&str]) {
    let shape = shape(name);
    assert_eq!(sent.method, shape["method"], "{name}");
    assert_eq!(sent.path, shape["path"], "{name}");
    assert_eq!(
        sent.header("content-type"),
        Some("application/json"),
        "{name}"
    );
    let mut expected = body_keys(&shape["body"]);
    expected.extend(extra.iter().map(|k| (*k).to_owned()));
    expected.sort();
    assert_eq!(body_keys(&sent.json().unwrap()), expected, "{name}");
}

#[tokio::test]
async fn login_and_the_three_password_puts_have_odins_spears_shapes() {
    // A JWT whose `exp` is far off, so the connector never refreshes.
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";
    let recorder = Recorder::start([
        (
            "POST",
            "/api/v2/auth/token",
            Canned::json(json!({ "token": token }).to_string()),
        ),
        ("PUT", "/api/v2/users/passwords", Canned::json("{}")),
        (
            "GET",
            "/api/v2/users/authentication",
            Canned::json(json!({ "userId": USER, "userName": "john.smith" }).to_string()),
        ),
        (
            "PUT",
            "/api/v2/users/authentication",
            Canned::json(
                json!({ "userId": USER, "userName": "john.smith", "newPassword": "" }).to_string(),
            ),
        ),
        ("PUT", "/api/v2/users/portal-passcode", Canned::json("[]")),
    ])
    .await
    .unwrap();
    let values = vec![
        ("url".to_owned(), SettingValue::Plain(recorder.url().into())),
        (
            "username".to_owned(),
            SettingValue::Plain("odin-admin".into()),
        ),
        (
            "password".to_owned(),
            SettingValue::Secret("Odin-Passw0rd!".into()),
        ),
        (
            "service_provider_id".to_owned(),
            SettingValue::Plain("ServiceProvider1".into()),
        ),
        ("group_id".to_owned(), SettingValue::Plain("Group1".into())),
    ];
    let settings = Settings::check(&BroadWorks::metadata().settings, values).unwrap();
    let c = BroadWorks::create(
        settings,
        CreateContext {
            target: "pbx".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )
    .unwrap();
    for (kind, value) in [
        (CredentialKind::Password, "Web-Passw0rd-1"),
        (CredentialKind::Sip, "Sip-Passw0rd-1"),
        (CredentialKind::Passcode, "2468"),
    ] {
        let outcomes = c
            .reset(ResetRequest {
                kind,
                items: vec![ResetItem {
                    user: USER.into(),
                    password: NewPassword::Known(value.into()),
                }],
            })
            .await
            .unwrap();
        assert!(outcomes[0].result.is_ok(), "{kind}: {outcomes:?}");
    }

    let logins = recorder.requests_to("/api/v2/auth/token");
    assert_eq!(logins.len(), 1, "one login");
    same_shape(&logins[0], "login", &[]);
    assert_eq!(
        logins[0].json().unwrap(),
        json!({ "username": "odin-admin", "password": "Odin-Passw0rd!" })
    );
    let bearer = format!("Bearer {token}");
    let puts: Vec<Recorded> = recorder
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 3);
    for put in &puts {
        assert_eq!(put.header("authorization"), Some(bearer.as_str()));
        assert_eq!(put.json().unwrap()["userId"], USER);
    }
    // The web password as odins-spear 2.2.6 and Odin's own UI send it
    // (`newPassword`; 2.3.0's `password` is accepted by servers too).
    same_shape(&puts[0], "put_web_password", &[]);
    assert_eq!(puts[0].json().unwrap()["newPassword"], "Web-Passw0rd-1");
    // The SIP password adds the user's `userName`, read first, as Odin's UI does.
    same_shape(&puts[1], "put_sip_password", &["userName"]);
    assert_eq!(puts[1].json().unwrap()["userName"], "john.smith");
    same_shape(&puts[2], "put_passcode", &[]);
    assert_eq!(puts[2].json().unwrap()["newPasscode"], "2468");
}
