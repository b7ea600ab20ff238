//! The simulator's protocol, driven with raw HTTP requests.

use base64::Engine as _;
use serde_json::Value;

use super::*;

const TOKEN: &str = "a70d9e6c-4167-4de4-a6a1-3b3aff50c82e";

async fn call(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "logical failures are HTTP 200");
    response.json().await.unwrap()
}

fn url(sim: &AdManagerSim, call: &str) -> String {
    format!("{}/RestAPI/{call}", sim.url())
}

fn common<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("AuthToken", TOKEN),
        ("PRODUCT_NAME", "tests"),
        ("domainName", "example.com"),
    ]
}

#[tokio::test]
async fn get_with_query_parameters_and_base64() {
    let sim = AdManagerSim::start(AdManagerConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let pwd = b64("Query+Base64 Pass&1");
    let input = b64(
        r#"[{"SAMACCOUNTNAME":"USER00001"},{"objectSid":"S-1-5-21-1004336348-1177238915-682003330-1102"}]"#,
    );
    let mut params = common();
    params.extend([
        ("isEncoded", "true"),
        ("pwd", &pwd),
        ("inputFormat", &input),
    ]);
    params.push(("mustChangePassword", "true"));
    let reply = call(http.get(url(&sim, "ResetPwd")).query(&params)).await;
    let items = reply.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["status"], "1", "{item}");
        assert_eq!(item["reset"], "yes");
        assert_eq!(item["statusMessage"], "Password reset successful.");
    }
    assert_eq!(items[1]["sAMAccountName"], "user00002");
    assert_eq!(sim.password("user00001").unwrap(), "Query+Base64 Pass&1");
    assert_eq!(sim.must_change("user00002"), Some(true));
    assert_eq!(sim.quota_used_today(), 2);
}

#[tokio::test]
async fn requests_are_checked_strictly() {
    let sim = AdManagerSim::start(AdManagerConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let code = |v: &Value| v["ERROR_CODE"].as_str().unwrap_or_default().to_owned();
    // A JSON body is not read, as a servlet would not: no token.
    let body = serde_json::json!({ "AuthToken": TOKEN }).to_string();
    let reply = call(
        http.post(url(&sim, "GetAuthInfo"))
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(reply["SEVERITY"], "SEVERE");
    assert_eq!(code(&reply), ERROR_CODE_AUTH);
    // A raw `#` in a form body.
    let reply = call(
        http.post(url(&sim, "GetAuthInfo"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("AuthToken={TOKEN}&x=a#b")),
    )
    .await;
    assert_eq!(code(&reply), ERROR_CODE_REQUEST);
    // Missing PRODUCT_NAME, a foreign domain, a missing pwd.
    let mut params = common();
    params.retain(|(k, _)| *k != "PRODUCT_NAME");
    params.push(("inputFormat", r#"[{"sAMAccountName":"user00001"}]"#));
    let reply = call(http.post(url(&sim, "ResetPwd")).form(&params)).await;
    assert_eq!(code(&reply), ERROR_CODE_REQUEST);
    let mut params = common();
    params[2].1 = "other.example";
    let reply = call(http.post(url(&sim, "SearchUser")).form(&params)).await;
    assert_eq!(code(&reply), ERROR_CODE_REQUEST);
    let mut params = common();
    params.push(("inputFormat", r#"[{"sAMAccountName":"user00001"}]"#));
    let reply = call(http.post(url(&sim, "ResetPwd")).form(&params)).await;
    assert_eq!(code(&reply), ERROR_CODE_REQUEST);
    assert_eq!(reply["STATUS_MESSAGE"], "Mandatory parameter missing: pwd");
    let status = http
        .put(url(&sim, "ResetPwd"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 405);
    assert!(sim.history("user00001").is_empty());
}

#[tokio::test]
async fn unknown_users_policy_and_quota_fail_per_item() {
    let sim = AdManagerSim::start(AdManagerConfig {
        daily_limit: 1,
        quota_refusal: QuotaRefusal::PerItem,
        ..AdManagerConfig::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let mut params = common();
    params.push(("pwd", "Good-Passw0rd"));
    params.push(("inputFormat", r#"[{"sAMAccountName":"nobody"},{"mail":"user00001@mail.example.com"},{"employeeID":"e00002"},{"cn":"x"}]"#));
    let reply = call(http.post(url(&sim, "ResetPwd")).form(&params)).await;
    let items = reply.as_array().unwrap();
    assert_eq!(items[0]["status"], "0");
    assert_eq!(items[0]["sAMAccountName"], "nobody", "the input is echoed");
    assert_eq!(items[1]["status"], "1");
    assert_eq!(items[2]["status"], "0");
    assert_eq!(items[2]["ERROR_CODE"], ERROR_CODE_QUOTA);
    assert!(
        items[2]["statusMessage"]
            .as_str()
            .unwrap()
            .contains("&amp;")
    );
    assert_eq!(items[3]["status"], "0");
    assert_eq!(sim.quota_used_today(), 1, "successes only");
}

#[tokio::test]
async fn search_unlock_and_legacy_tokens() {
    let sim = AdManagerSim::start(AdManagerConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut params = common();
    params.extend([("startIndex", "6"), ("range", "5")]);
    let reply = call(http.post(url(&sim, "SearchUser")).form(&params)).await;
    assert_eq!(reply["count"], 21);
    assert_eq!(reply["status"], "SUCCESS");
    let page = reply["UsersList"].as_array().unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(page[0]["SAM_ACCOUNT_NAME"], "user00005");
    assert_eq!(page[0]["LOGON_NAME"], "user00005@example.com");
    let mut params = common();
    params.push(("filter", "(mail:equal:USER00007@mail.example.com)"));
    let reply = call(http.post(url(&sim, "SearchUser")).form(&params)).await;
    assert_eq!(reply["UsersList"][0]["SAM_ACCOUNT_NAME"], "user00007");

    sim.lock_out("user00003");
    let mut params = common();
    params.push(("inputFormat", r#"[{"sAMAccountName":"user00003"}]"#));
    let reply = call(http.post(url(&sim, "UnlockUser")).form(&params)).await;
    assert_eq!(reply[0]["status"], "1");
    assert!(!sim.is_locked("user00003"));
    assert_eq!(sim.quota_used_today(), 1, "unlocks count too");

    let login = [
        ("loginName", "helpdesk"),
        ("password", "Helpdesk-Passw0rd!"),
        ("domainName", "example.com"),
        ("AuthToken", TOKEN),
    ];
    let reply = call(http.post(url(&sim, "APIAuthToken")).query(&login)).await;
    assert_eq!(reply["LoginStatus"], "true");
    let ticket = reply["AuthTicket"].as_str().unwrap().to_owned();
    let reply = call(
        http.get(url(&sim, "GetAuthInfo"))
            .query(&[("AuthToken", &ticket)]),
    )
    .await;
    let auth: Value = serde_json::from_str(reply["AdmpAuthObject"].as_str().unwrap()).unwrap();
    assert_eq!(auth["LOGIN_NAME"], "helpdesk");
    let reply = call(
        http.get(url(&sim, "GetAuthInfo"))
            .query(&[("AuthToken", TOKEN)]),
    )
    .await;
    assert_eq!(
        reply["ERROR_CODE"], ERROR_CODE_AUTH,
        "the old token was invalidated"
    );
    let reply = call(
        http.post(url(&sim, "APIAuthToken"))
            .query(&[("loginName", "helpdesk"), ("password", "wrong")]),
    )
    .await;
    assert_eq!(reply["SEVERITY"], "SEVERE");
    assert!(reply.get("ERROR_CODE").is_none());
}

#[tokio::test]
async fn the_seed_shape_answers_with_ids_and_messages_only() {
    let sim = AdManagerSim::start(AdManagerConfig {
        reply_shape: ReplyShape::Seed,
        ..AdManagerConfig::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let mut params = common();
    params.push(("pwd", "Good-Passw0rd"));
    params.push((
        "inputFormat",
        r#"[{"sAMAccountName":"user00001"},{"sAMAccountName":"nobody"}]"#,
    ));
    let reply = call(http.post(url(&sim, "ResetPwd")).form(&params)).await;
    let items = reply.as_array().unwrap();
    assert_eq!(items[0]["statusMessage"], "Successfully modified.");
    assert_eq!(items[0]["sAMAccountName"], "user00001");
    assert_eq!(
        items[0]["objectSID"],
        sim.attribute("user00001", "objectSID").unwrap()
    );
    assert!(
        items[1]["statusMessage"]
            .as_str()
            .unwrap()
            .starts_with("No such user")
    );
    for item in items {
        assert!(
            item.get("status").is_none() && item.get("reset").is_none(),
            "{item}"
        );
    }
    assert_eq!(sim.password("user00001").unwrap(), "Good-Passw0rd");
}
