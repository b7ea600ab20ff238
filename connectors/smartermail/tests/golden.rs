//! The vendor's own script (seed 000, kept as request shapes in
//! `tests/golden/smartermail/` at the workspace root): the connector logs in
//! with the same fields, lists users at the same path, and sends `post-user`
//! with the script's body shape and bearer token. A recording fake stands in
//! for the server.

use rekey_api::{
    Connector, CreateContext, CredentialKind, NewPassword, Plugin, ResetItem, ResetRequest,
    SettingValue, Settings,
};
use rekey_sim::recorder::{Canned, Recorder};
use rekey_smartermail::SmarterMail;
use serde_json::{Value, json};

fn script() -> Value {
    let path = format!(
        "{}/../../tests/golden/smartermail/seed-000-requests.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn shape<'a>(script: &'a Value, name: &str) -> &'a Value {
    script["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
}

/// The keys of a JSON object, sorted; nested objects as `outer.inner`.
fn keys(value: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, inner) in value.as_object().into_iter().flatten() {
        match inner {
            Value::Object(_) => keys.extend(keys_of(key, inner)),
            _ => keys.push(key.clone()),
        }
    }
    keys.sort();
    keys
}

fn keys_of(prefix: &str, value: &Value) -> Vec<String> {
    keys(value)
        .into_iter()
        .map(|k| format!("{prefix}.{k}"))
        .collect()
}

#[tokio::test]
async fn the_connector_sends_the_scripts_requests() {
    let login = json!({
        "emailAddress": "admin@example.com", "isAdmin": false, "isDomainAdmin": true,
        "accessToken": "access-1", "refreshToken": "refresh-1",
        "accessTokenExpiration": "2099-01-01T00:00:00Z", "username": "admin@example.com",
        "success": true, "resultCode": 200, "message": null,
    });
    let users = json!({ "success": true, "userData": [{ "emailAddress": "jsmith@example.com" }] });
    let recorder = Recorder::start([
        (
            "POST",
            "/api/v1/auth/authenticate-user",
            Canned::json(login.to_string()),
        ),
        (
            "GET",
            "/api/v1/settings/domain/list-users",
            Canned::json(users.to_string()),
        ),
        (
            "POST",
            "/api/v1/settings/domain/post-user",
            Canned::json(r#"{"success":true,"resultCode":200,"message":null}"#),
        ),
    ])
    .await
    .unwrap();
    let values = vec![
        ("url".to_owned(), SettingValue::Plain(recorder.url().into())),
        (
            "username".to_owned(),
            SettingValue::Plain("admin@example.com".into()),
        ),
        (
            "password".to_owned(),
            SettingValue::Secret("Admin-Passw0rd!".into()),
        ),
    ];
    let settings = Settings::check(&SmarterMail::metadata().settings, values).unwrap();
    let c = SmarterMail::create(
        settings,
        CreateContext {
            target: "mail".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )
    .unwrap();
    c.check().await.unwrap();
    let listed = c.list_users(None).await.unwrap();
    assert_eq!(listed.users[0].id, "jsmith@example.com");
    let outcomes = c
        .reset(ResetRequest {
            kind: CredentialKind::Password,
            items: vec![ResetItem {
                user: "jsmith@example.com".into(),
                password: NewPassword::Known("New-Passw0rd!".into()),
            }],
        })
        .await
        .unwrap();
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");

    let script = script();
    // Login: the script's fields, as JSON (the reference's choice; the script
    // posts a form, which the server takes too).
    let logins = recorder.requests_to("/api/v1/auth/authenticate-user");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].method, "POST");
    assert_eq!(
        keys(&logins[0].json().unwrap()),
        keys(&shape(&script, "authenticate-user")["form"])
    );
    for name in ["list-users", "post-user"] {
        let expected = shape(&script, name);
        let path = expected["path"].as_str().unwrap();
        let sent = recorder.requests_to(path);
        assert_eq!(sent.len(), 1, "{name}");
        assert_eq!(sent[0].method, expected["method"], "{name}");
        assert_eq!(sent[0].query, None, "{name}");
        assert_eq!(
            sent[0].header("authorization"),
            Some("Bearer access-1"),
            "{name}"
        );
    }
    let post = &recorder.requests_to("/api/v1/settings/domain/post-user")[0];
    assert_eq!(
        post.json().unwrap(),
        json!({ "email": "jsmith@example.com", "userData": { "password": "New-Passw0rd!" } }),
        "the script's body, nothing more"
    );
    assert_eq!(
        keys(&post.json().unwrap()),
        keys(&shape(&script, "post-user")["json"])
    );
}
