//! The simulator's own strictness, driven with plain HTTP.

use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

use super::*;

const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

async fn sim(config: OracleConfig) -> OracleSim {
    OracleSim::start(config).await.unwrap()
}

fn put(sim: &OracleSim, path: &str) -> RequestBuilder {
    Client::new()
        .put(format!("{}/cloudapi/restapi/{path}", sim.url()))
        .basic_auth("COADMIN", Some(ADMIN_PASSWORD))
}

fn chars(password: &str) -> Value {
    password.chars().map(|c| c.to_string()).collect()
}

async fn status_and_text(request: RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn basic_auth_and_rights() {
    let sim = sim(OracleConfig::default()).await;
    let url = format!("{}/cloudapi/restapi/user", sim.url());
    let client = Client::new();
    let (status, body) = status_and_text(client.get(&url)).await;
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, _) = status_and_text(client.get(&url).basic_auth("COADMIN", Some("nope"))).await;
    assert_eq!(status, 401);
    // Login ids are case-insensitive; passwords are not.
    let response = client
        .get(&url)
        .basic_auth("coadmin", Some(ADMIN_PASSWORD))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let users: Vec<Value> = response.json().await.unwrap();
    assert_eq!(users.len(), 11);
    assert_eq!(users[0]["loginId"], "COADMIN");
    assert_eq!(users[1]["loginId"], "USER0001");
    assert_eq!(users[1]["organization"]["name"], "sfo");
    assert!(users.iter().all(|u| u.get("password").is_none()));
    // An ordinary user authenticates but lacks administration rights.
    let (status, _) = status_and_text(
        client
            .get(&url)
            .basic_auth("USER0001", Some("Initial-1-Passw0rd")),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn manual_reset_takes_character_arrays_and_is_all_or_nothing() {
    let sim = sim(OracleConfig::default()).await;
    let body = json!([
        {"loginId": "USER0001", "password": chars("New-Pass-01")},
        {"loginId": "user0002", "password": chars("New-Pass-02")},
    ]);
    let response = put(&sim, "user/manual-reset-pwd/true")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // One User object, as documented.
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["loginId"], "USER0001");
    assert_eq!(echoed["changePwdAtNextLogin"], false);
    assert!(echoed.get("password").is_none());
    assert_eq!(sim.password("USER0002").unwrap(), "New-Pass-02");
    assert_eq!(sim.notifications().len(), 2);
    assert!(sim.changes("USER0001")[0].emailed);

    // Each of these fails the whole batch with 400, and nothing changes.
    let bad_entries = [
        json!({"loginId": "NOBODY", "password": chars("Other-Pass-9")}),
        json!({"loginId": "USER0003"}),
        json!({"loginId": "USER0003", "password": "Other-Pass-9"}),
        json!({"loginId": "USER0003", "password": ["Ot", "her-Pass-9"]}),
        json!({"loginId": "USER0003", "password": chars("Other-Päss-9")}),
        json!({"loginId": "USER0003", "password": chars("Other\u{7}Pass-9")}),
        json!({"loginId": "USER0003", "password": []}),
        json!({"loginId": "USER0001", "password": chars("Other-Pass-9")}),
    ];
    for bad in bad_entries {
        let body = json!([{"loginId": "USER0001", "password": chars("Other-Pass-1")}, bad]);
        let (status, text) =
            status_and_text(put(&sim, "user/manual-reset-pwd/false").json(&body)).await;
        assert_eq!((status, text.as_str()), (400, INVALID_INPUT), "{bad}");
    }
    let (status, _) =
        status_and_text(put(&sim, "user/manual-reset-pwd/false").json(&json!([]))).await;
    assert_eq!(status, 400);
    assert_eq!(sim.history("USER0001"), ["New-Pass-01"]);
    assert!(sim.history("USER0003").is_empty());

    // The identity domain's policy: 500, and again nothing changes.
    let body = json!([
        {"loginId": "USER0004", "password": chars("Good-Pass-4")},
        {"loginId": "USER0005", "password": chars("short1A")},
    ]);
    let (status, text) =
        status_and_text(put(&sim, "user/manual-reset-pwd/false").json(&body)).await;
    assert_eq!((status, text.as_str()), (500, IDENTITY_ERROR));
    assert!(sim.history("USER0004").is_empty());
    assert_eq!(sim.notifications().len(), 2, "false sends no e-mail");

    let calls = sim.reset_calls();
    assert_eq!(calls.len(), 11);
    assert_eq!(calls[0].users, 2);
    assert_eq!(calls.last().unwrap().status, 500);
}

#[tokio::test]
async fn manual_reset_is_strict_about_the_request() {
    let sim = sim(OracleConfig::default()).await;
    let body = json!([{"loginId": "USER0001", "password": chars("New-Pass-01")}]);
    let (status, _) = status_and_text(put(&sim, "user/manual-reset-pwd/yes").json(&body)).await;
    assert_eq!(status, 404);
    let (status, _) = status_and_text(
        put(&sim, "user/manual-reset-pwd/true")
            .header("Content-Type", "text/plain")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = status_and_text(
        put(&sim, "user/manual-reset-pwd/true")
            .header("Accept", "application/xml")
            .json(&body),
    )
    .await;
    assert_eq!(status, 406);
    let (status, _) = status_and_text(
        put(&sim, "user/manual-reset-pwd/true").json(&json!({"loginId": "USER0001"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(sim.history("USER0001").is_empty());

    // Configured to take a plain string, as Jackson would.
    let lenient = OracleSim::start(OracleConfig {
        accept_plain_password: true,
        ..OracleConfig::default()
    })
    .await
    .unwrap();
    let body = json!([{"loginId": "USER0001", "password": "Plain-Pass-1"}]);
    let (status, _) =
        status_and_text(put(&lenient, "user/manual-reset-pwd/false").json(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(lenient.password("USER0001").unwrap(), "Plain-Pass-1");
}

#[tokio::test]
async fn auto_reset_makes_and_mails_passwords() {
    let sim = sim(OracleConfig {
        disabled: vec!["USER0003".into()],
        locked: vec!["USER0004".into()],
        ..OracleConfig::default()
    })
    .await;
    let (status, text) =
        status_and_text(put(&sim, "user/auto-reset-pwd").json(&json!(["USER0001", "NOBODY"])))
            .await;
    assert_eq!((status, text.as_str()), (400, INVALID_INPUT));
    assert!(sim.history("USER0001").is_empty());

    let response = put(&sim, "user/auto-reset-pwd")
        .json(&json!(["user0001", "USER0002", "USER0003"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let map: BTreeMap<String, String> = response.json().await.unwrap();
    assert_eq!(map["USER0001"], "");
    assert_eq!(map["USER0002"], "");
    assert_eq!(map["USER0003"], DISABLED_MESSAGE);
    let change = &sim.changes("USER0001")[0];
    assert!(change.vendor_made && change.emailed);
    assert!(sim.config().policy.accepts(&change.password));
    assert_eq!(sim.password("USER0001").unwrap(), change.password);
    assert!(sim.history("USER0003").is_empty());
    assert_eq!(sim.notifications().len(), 2);

    let (status, text) = status_and_text(put(&sim, "user/USER0005/auto-reset-pwd")).await;
    assert_eq!((status, text.as_str()), (200, "Success"));
    assert_eq!(sim.history("USER0005").len(), 1);
    let (status, _) = status_and_text(put(&sim, "user/NOBODY/auto-reset-pwd")).await;
    assert_eq!(status, 400);

    assert_eq!(sim.is_locked("USER0004"), Some(true));
    let (status, _) =
        status_and_text(put(&sim, "user/change-lock").json(&json!([{"loginId": "USER0004"}])))
            .await;
    assert_eq!(status, 200);
    assert_eq!(sim.is_locked("USER0004"), Some(false));
}

#[tokio::test]
async fn manual_reset_can_answer_an_array() {
    let sim = sim(OracleConfig {
        manual_reset_reply: ManualResetReply::Array,
        ..OracleConfig::default()
    })
    .await;
    let body = json!([
        {"loginId": "USER0001", "password": chars("New-Pass-01")},
        {"loginId": "user0002", "password": chars("New-Pass-02")},
    ]);
    let response = put(&sim, "user/manual-reset-pwd/false")
        .json(&body)
        .send()
        .await
        .unwrap();
    let echoed: Vec<Value> = response.json().await.unwrap();
    assert_eq!(echoed.len(), 2);
    assert_eq!(echoed[1]["loginId"], "USER0002");
    assert!(echoed.iter().all(|u| u.get("password").is_none()));
}
