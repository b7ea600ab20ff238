//! The simulator's strictness, over HTTP: what a connector gets wrong must fail
//! here as it would on a careful real server.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(sim: &InhouseSim) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: format!("{}/directory/v1", sim.url()),
        }
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/{path}", self.base))
            .header("X-Api-Key", key)
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .header("X-Api-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

async fn sim(config: InhouseConfig) -> (InhouseSim, Client) {
    let sim = InhouseSim::start(config).await.unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

#[tokio::test]
async fn keys_and_scopes_are_enforced() {
    let mut config = InhouseConfig::default();
    config.keys.push(ApiKey {
        key: "ro".into(),
        account: "svc-audit".into(),
        scopes: vec![SCOPE_READ.into()],
    });
    let (sim, client) = sim(config).await;
    let (status, body) = client.get("whoami", "ro").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "svc-audit");
    assert_eq!(body["scopes"], json!([SCOPE_READ]));
    let (status, body) = client.get("whoami", "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");
    assert_eq!(client.get("users", "ro").await.0, StatusCode::OK);
    let item = json!({ "items": [{ "id": "u00001", "password": "Fresh-Passw0rd-1" }] });
    let (status, body) = client.post("passwords:reset", "ro", item.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains(SCOPE_WRITE));
    let (status, _) = client.post("passwords:reset", DEFAULT_KEY, item).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.password("u00001").unwrap(), "Fresh-Passw0rd-1");
    let (status, body) = client.get("nothing-here", DEFAULT_KEY).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn content_types_are_enforced() {
    let (sim, client) = sim(InhouseConfig::default()).await;
    let url = format!("{}/passwords:reset", client.base);
    let response = client
        .http
        .post(&url)
        .header("X-Api-Key", DEFAULT_KEY)
        .body(r#"{"items":[{"id":"u00001","password":"Fresh-Passw0rd-1"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = client
        .http
        .get(format!("{}/whoami", client.base))
        .header("X-Api-Key", DEFAULT_KEY)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    assert!(sim.history("u00001").is_empty());
}

#[tokio::test]
async fn a_malformed_reset_changes_nothing() {
    let (sim, client) = sim(InhouseConfig::default()).await;
    let good = json!({ "id": "u00001", "password": "Fresh-Passw0rd-1" });
    let too_many: Vec<Value> = (1..=101)
        .map(|i| json!({ "id": user_id(i), "generate": true }))
        .collect();
    for body in [
        json!({ "items": [good, { "id": "u00002", "password": "" }] }),
        json!({ "items": [good, { "id": "u00002", "pasword": "Fresh-Passw0rd-2" }] }),
        json!({ "items": [good, good] }),
        json!({ "items": [good], "notify": true }),
        json!({ "items": [] }),
        json!({ "items": too_many }),
        json!([good]),
    ] {
        let (status, reply) = client.post("passwords:reset", DEFAULT_KEY, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        assert_eq!(reply["error"], "bad_request");
    }
    let (status, _) = client
        .post(
            "passcodes:reset",
            DEFAULT_KEY,
            json!({ "items": [{ "id": "u00001", "passcode": "12-34-56" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        sim.history("u00001").is_empty(),
        "validated before applying"
    );
    assert!(sim.reset_batches().is_empty());
}

#[tokio::test]
async fn resets_answer_per_item_in_order() {
    let (sim, client) = sim(InhouseConfig {
        failing_users: vec!["u00004".into()],
        ..InhouseConfig::default()
    })
    .await;
    let (status, reply) = client
        .post(
            "passwords:reset",
            DEFAULT_KEY,
            json!({ "items": [
                { "id": "u00001", "password": "Fresh-Passw0rd-1" },
                { "id": "ghost", "password": "Fresh-Passw0rd-2" },
                { "id": "u00002", "password": "weak" },
                { "id": DEFAULT_ACCOUNT, "generate": true },
                { "id": "u00004", "generate": true },
                { "id": "u00003", "generate": true },
            ] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<&str> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["ok", "not_found", "policy", "protected", "error", "ok"]
    );
    assert!(
        !reply.to_string().contains(&sim.password("u00003").unwrap()),
        "a value generated in place is never returned"
    );
    assert!(sim.history("u00003")[0].generated_in_place);
    assert_eq!(
        sim.history("u00004").len(),
        1,
        "an `error` may have applied"
    );
    assert_eq!(sim.reset_batches(), [6]);
}

#[tokio::test]
async fn users_are_paged_by_opaque_cursor() {
    let (sim, client) = sim(InhouseConfig {
        users: 5,
        ..InhouseConfig::default()
    })
    .await;
    let (_, first) = client.get("users?limit=4", DEFAULT_KEY).await;
    assert_eq!(first["users"].as_array().unwrap().len(), 4);
    let next = first["next"].as_str().unwrap().to_owned();
    let (_, second) = client
        .get(&format!("users?limit=4&cursor={next}"), DEFAULT_KEY)
        .await;
    assert_eq!(second["users"].as_array().unwrap().len(), 2);
    assert_eq!(second["next"], Value::Null);
    assert_eq!(first["users"][0]["id"], DEFAULT_ACCOUNT, "in id order");
    assert_eq!(second["users"][1]["id"], "u00005");
    assert_eq!(sim.users().len(), 6);
    for bad in [
        "users?limit=0",
        "users?limit=201",
        "users?cursor=zz",
        "users?page=2",
    ] {
        assert_eq!(
            client.get(bad, DEFAULT_KEY).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn generate_makes_values_and_sets_nothing() {
    let (sim, client) = sim(InhouseConfig::default()).await;
    let (status, reply) = client
        .post("passcodes:generate", DEFAULT_KEY, json!({ "count": 3 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["passcodes"].as_array().unwrap().len(), 3);
    assert_eq!(sim.handed_out(Credential::Passcode).len(), 3);
    for count in [json!(0), json!(101), json!("3")] {
        let (status, _) = client
            .post("passwords:generate", DEFAULT_KEY, json!({ "count": count }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert!(sim.users().iter().all(|u| sim.history(u).is_empty()));
}

#[tokio::test]
async fn too_many_requests_get_429_with_retry_after() {
    let (_sim, client) = sim(InhouseConfig {
        rate_limit: Some(2),
        ..InhouseConfig::default()
    })
    .await;
    let mut limited = None;
    for _ in 0..5 {
        let response = client
            .http
            .get(format!("{}/whoami", client.base))
            .header("X-Api-Key", DEFAULT_KEY)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert_eq!(limited.as_deref(), Some("1"));
}
