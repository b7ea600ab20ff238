//! The simulator's own strictness, over HTTP.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use super::*;

struct Odin {
    sim: BroadWorksSim,
    http: Client,
    token: String,
}

impl Odin {
    async fn start(config: BroadWorksConfig) -> Odin {
        let sim = BroadWorksSim::start(config).await.unwrap();
        let http = Client::new();
        let reply: Value = http
            .post(format!("{}/api/v2/auth/token", sim.url()))
            .json(&json!({ "username": "odin-admin", "password": "Odin-Admin-Passw0rd!" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = reply["token"].as_str().unwrap().to_owned();
        Odin { sim, http, token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v2/{path}", self.sim.url()))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
}

const GROUP: &str = "serviceProviderId=ServiceProvider1&groupId=Group1";

#[tokio::test]
async fn tokens_are_jwts_with_exp_and_are_checked() {
    let odin = Odin::start(BroadWorksConfig {
        token_lifetime: Duration::from_secs(60),
        ..BroadWorksConfig::default()
    })
    .await;
    let payload = odin.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );
    assert_eq!(odin.get(&format!("users?{GROUP}")).await.0, StatusCode::OK);

    // No token, a wrong one, an expired one: 401 with Odin's error body.
    let url = format!("{}/api/v2/users?{GROUP}", odin.sim.url());
    let response = odin.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 401);
    assert_eq!(body["error"], "Unauthorized");
    assert!(body["details"].is_string());
    odin.sim.common().clock.advance(Duration::from_secs(61));
    assert_eq!(
        odin.get(&format!("users?{GROUP}")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = odin.call(Method::PUT, "auth/token", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an expired token cannot be refreshed"
    );
    assert_eq!(odin.sim.failed_refreshes(), 1);

    // Bad credentials and bodies that are not JSON.
    let login = format!("{}/api/v2/auth/token", odin.sim.url());
    let response = odin
        .http
        .post(&login)
        .json(&json!({ "username": "odin-admin", "password": "nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = odin
        .http
        .post(&login)
        .body(r#"{"username":"odin-admin","password":"Odin-Admin-Passw0rd!"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(odin.sim.logins(), 1);
    assert_eq!(odin.sim.failed_logins(), 1);
}

#[tokio::test]
async fn generators_answer_singular_or_plural() {
    let odin = Odin::start(BroadWorksConfig::default()).await;
    let (status, body) = odin.get(&format!("password/generate?{GROUP}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["password"].is_string() && body.get("passwords").is_none());
    let (_, body) = odin
        .get(&format!("password/generate?{GROUP}&limit=100"))
        .await;
    assert_eq!(body["passwords"].as_array().unwrap().len(), 100);
    let (status, body) = odin
        .get(&format!("passcode/generate?{GROUP}&limit=101"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], 400);
    let (_, body) = odin
        .get(&format!("passcode/generate?{GROUP}&limit=3"))
        .await;
    for code in body["passcodes"].as_array().unwrap() {
        let code = code.as_str().unwrap();
        assert_eq!(code.len(), 8);
        assert_eq!(odin.sim.passcode_violation(code), None);
        assert!(odin.sim.was_generated(code));
    }
    let (_, body) = odin.get(&format!("passcode/generate?{GROUP}")).await;
    assert!(body["passcode"].is_string());
    // System-wide, as odins-spear's bulk SIP path asks: the system's rules.
    let (status, body) = odin.get("password/generate?limit=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["passwords"].as_array().unwrap().len(), 5);
    let (status, _) = odin.get("passcode/generate?limit=5").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "passcodes need the group");
    let (status, _) = odin
        .get("password/generate?serviceProviderId=ServiceProvider1&limit=5")
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a provider without its group"
    );
    let (status, body) = odin
        .get("password/generate?serviceProviderId=ServiceProvider1&groupId=Nope&limit=5")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["details"]
            .as_str()
            .unwrap()
            .contains("Group not found")
    );
    // The SIP generator ignores limit: one value, singular.
    let (_, body) = odin.get("sip-password/generate?limit=5").await;
    assert!(body["password"].is_string() && body.get("passwords").is_none());
    assert_eq!(
        odin.sim.generate_calls(),
        GenerateCalls {
            password: 5,
            passcode: 4,
            sip: 1
        }
    );
}

#[tokio::test]
async fn resets_keep_the_rules_and_the_history() {
    let odin = Odin::start(BroadWorksConfig {
        without_authentication: 1,
        ..BroadWorksConfig::default()
    })
    .await;
    let user = odin.sim.user_id(1);
    let put = |path: &'static str, body: Value| odin.call(Method::PUT, path, Some(body));

    let (status, body) = put(
        "users/portal-passcode",
        json!({"userId": user, "newPasscode": "7890"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["details"]
            .as_str()
            .unwrap()
            .starts_with("[Error 4962]")
    );
    let (status, body) = put(
        "users/portal-passcode",
        json!({"userId": user, "newPasscode": "2468"}),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    assert_eq!(odin.sim.passcode(&user).unwrap(), "2468");

    let (status, _) = put(
        "users/passwords",
        json!({"userId": user, "newPassword": "short"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = put(
        "users/passwords",
        json!({"userId": user, "password": "Legacy-Field-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "odins-spear 2.3.0's field name");
    assert_eq!(odin.sim.history(&user, Credential::Web), ["Legacy-Field-1"]);

    let (status, body) = odin
        .get(&format!("users/authentication?userId={user}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["userName"], "user0001");
    let (status, _) = put(
        "users/authentication",
        json!({"userId": user, "userName": "someone", "newPassword": "Sip-Pass-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the userName must match");
    let (status, _) = put(
        "users/authentication",
        json!({"userId": user, "userName": "user0001", "newPassword": "Sip-Pass-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(odin.sim.sip_password(&user).unwrap(), "Sip-Pass-1");

    // The last user lacks the Authentication service.
    let last = odin.sim.user_id(10);
    assert!(!odin.sim.has_authentication(&last));
    let (status, body) = put(
        "users/authentication",
        json!({"userId": last, "newPassword": "Sip-Pass-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["details"].as_str().unwrap().contains("Authentication"));

    // User ids are case-sensitive; unknown ones are 404.
    let (status, body) = put(
        "users/passwords",
        json!({"userId": user.to_uppercase(), "newPassword": "Good-Pass-123"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "Not Found");

    // Bodies must be declared JSON.
    let response = odin
        .http
        .put(format!("{}/api/v2/users/passwords", odin.sim.url()))
        .bearer_auth(&odin.token)
        .body(json!({"userId": user, "newPassword": "Good-Pass-123"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(odin.sim.history(&user, Credential::Web).len(), 1);
}

#[tokio::test]
async fn users_are_found_system_wide_by_filter() {
    let odin = Odin::start(BroadWorksConfig::default()).await;
    let user = odin.sim.user_id(3);
    let (status, body) = odin.get(&format!("users?userId={user}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["userId"], user.as_str(), "one user's object");
    assert_eq!(body["groupId"], "Group1");
    let (status, _) = odin.get("users?userId=nobody@testdomain.net").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = odin.get("users?lastName=*00*&limit=4").await;
    assert_eq!(body.as_array().unwrap().len(), 4);
    let (_, body) = odin.get("users?userId=user001*").await;
    assert_eq!(body.as_array().unwrap().len(), 1, "user0010");
    let (_, body) = odin.get("users?serviceProviderId=ServiceProvider1").await;
    assert_eq!(body.as_array().unwrap().len(), 10);
    let (_, body) = odin.get(&format!("users?{GROUP}&extension=1002")).await;
    assert_eq!(body[0]["userId"], odin.sim.user_id(2).as_str());
    for (query, status) in [
        ("users", StatusCode::BAD_REQUEST),
        ("users?groupId=Group1", StatusCode::BAD_REQUEST),
        ("users?lastName=*smith", StatusCode::BAD_REQUEST),
        ("users?serviceProviderId=Nope", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(odin.get(query).await.0, status, "{query}");
    }

    let (status, body) = odin.get(&format!("users/password?userId={user}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["userId"], user.as_str());
    assert_ne!(
        body["password"],
        odin.sim.web_password(&user).unwrap().as_str()
    );
    let (status, body) = odin.get("auth/session").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["username"], "odin-admin");
    assert!(body["expiration"].as_u64().is_some());
}
