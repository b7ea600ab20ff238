//! Requests real clients send, replayed from the fixtures in `tests/golden/` at
//! the workspace root against the simulators: each must be accepted. The
//! simulators are strict, but never stricter than the real product is with
//! the code that actually talks to it.
//!
//! - Odin: every request shape odins-spear (2.2.6 and 2.3.0) sends for login,
//!   refresh, session, user lookup, the generators and the password puts.
//! - SmarterMail: the requests of the vendor's own script (seed 000).

use std::collections::HashMap;

use rekey_sim::broadworks::{BroadWorksConfig, BroadWorksSim, Credential};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use reqwest::{Client, Method};
use serde_json::Value;

fn fixture(path: &str) -> Value {
    let path = format!("{}/../../tests/golden/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Replaces every `{name}` in the strings of `value`.
fn fill(value: &Value, vars: &HashMap<&str, String>) -> Value {
    match value {
        Value::String(text) => {
            let mut text = text.clone();
            for (name, replacement) in vars {
                text = text.replace(&format!("{{{name}}}"), replacement);
            }
            Value::String(text)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `reply` has the value a client reads at `path` (`a`, `[].a`, `a[].b`).
fn has(reply: &Value, path: &str) -> bool {
    match path.split_once("[].") {
        Some(("", rest)) => reply
            .as_array()
            .is_some_and(|items| !items.is_empty() && items.iter().all(|i| has(i, rest))),
        Some((key, rest)) => has(&reply[key], &format!("[].{rest}")),
        None => !reply[path].is_null(),
    }
}

/// Sends one fixture request as the client does: its headers only, a JSON body
/// only when it has one, the query in its order.
async fn send(base: &str, request: &Value) -> (u16, Value) {
    let method = Method::from_bytes(request["method"].as_str().unwrap().as_bytes()).unwrap();
    let mut url = format!("{base}{}", request["path"].as_str().unwrap());
    if let Some(query) = request["query"].as_array() {
        let pairs: Vec<(&str, &str)> = query
            .iter()
            .map(|pair| (pair[0].as_str().unwrap(), pair[1].as_str().unwrap()))
            .collect();
        url.push('?');
        url.push_str(&serde_urlencoded::to_string(&pairs).unwrap());
    }
    let mut builder = Client::new().request(method, url);
    for (name, value) in request["headers"].as_object().into_iter().flatten() {
        builder = builder.header(name, value.as_str().unwrap());
    }
    if let Some(body) = request.get("body") {
        builder = builder.body(body.to_string());
    }
    if let Some(form) = request["form"].as_object() {
        let pairs: Vec<(&str, &str)> = form
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        builder = builder.form(&pairs);
    }
    if let Some(json) = request.get("json") {
        builder = builder.json(json);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn shape(name: &str) -> Value {
    let fixture = fixture("broadworks/odins-spear-requests.json");
    fixture["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no request shape {name}"))
        .clone()
}

/// Logs in with odins-spear's login shape, then sends shape `name`: it must be
/// answered 2xx with JSON holding what odins-spear reads. Returns the
/// simulator and the reply.
async fn replay_odins_spear(name: &str) -> (BroadWorksSim, Value) {
    let sim = BroadWorksSim::start(BroadWorksConfig::default())
        .await
        .unwrap();
    let config = sim.config();
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("username", config.username.clone()),
        ("password", config.password.clone()),
        ("serviceProviderId", config.service_provider_id.clone()),
        ("groupId", config.group_id.clone()),
        ("userId", sim.user_id(1)),
        ("newPassword", "Spear-Passw0rd-7".to_owned()),
        ("newPasscode", "2468".to_owned()),
    ]);
    let (status, reply) = send(&sim.url(), &fill(&shape("login"), &vars)).await;
    assert_eq!(status, 200, "login: {reply}");
    vars.insert("token", reply["token"].as_str().unwrap().to_owned());
    let request = fill(&shape(name), &vars);
    let (status, reply) = send(&sim.url(), &request).await;
    assert!((200..300).contains(&status), "{name}: {status} {reply}");
    for read in request["reads"].as_array().unwrap() {
        let read = read.as_str().unwrap();
        assert!(has(&reply, read), "{name}: no {read} in {reply}");
    }
    (sim, reply)
}

macro_rules! odins_spear_shapes {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            replay_odins_spear(stringify!($name)).await;
        }
    )*};
}

odins_spear_shapes!(
    login,
    refresh,
    session,
    user_by_id,
    group_users,
    user_password_info,
    passwords_generate,
    passcodes_generate,
    sip_password_generate,
    sip_passwords_generate,
);

#[tokio::test]
async fn put_sip_password() {
    let (sim, _) = replay_odins_spear("put_sip_password").await;
    assert_eq!(
        sim.sip_password(&sim.user_id(1)).unwrap(),
        "Spear-Passw0rd-7"
    );
}

#[tokio::test]
async fn put_web_password() {
    let (sim, _) = replay_odins_spear("put_web_password").await;
    assert_eq!(
        sim.history(&sim.user_id(1), Credential::Web),
        ["Spear-Passw0rd-7"]
    );
}

#[tokio::test]
async fn put_web_password_2_3() {
    let (sim, _) = replay_odins_spear("put_web_password_2_3").await;
    assert_eq!(
        sim.web_password(&sim.user_id(1)).unwrap(),
        "Spear-Passw0rd-7"
    );
}

#[tokio::test]
async fn put_passcode() {
    let (sim, reply) = replay_odins_spear("put_passcode").await;
    assert_eq!(reply, serde_json::json!([]));
    assert_eq!(sim.passcode(&sim.user_id(1)).unwrap(), "2468");
}

#[tokio::test]
async fn every_odins_spear_shape_has_a_test() {
    let fixture = fixture("broadworks/odins-spear-requests.json");
    let tested = [
        "login",
        "refresh",
        "session",
        "user_by_id",
        "group_users",
        "user_password_info",
        "passwords_generate",
        "passcodes_generate",
        "sip_password_generate",
        "sip_passwords_generate",
        "put_sip_password",
        "put_web_password",
        "put_web_password_2_3",
        "put_passcode",
    ];
    for request in fixture["requests"].as_array().unwrap() {
        let name = request["name"].as_str().unwrap();
        assert!(tested.contains(&name), "{name} has no test");
    }
}

/// The vendor's script (seed 000): a form-encoded login, the user list, and a
/// post-user per user with the bearer token, all accepted.
#[tokio::test]
async fn the_smartermail_seed_scripts_requests_succeed() {
    let sim = SmarterMailSim::start(SmarterMailConfig::default())
        .await
        .unwrap();
    let fixture = fixture("smartermail/seed-000-requests.json");
    let requests = fixture["requests"].as_array().unwrap();
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("domain_admin_email", sim.domain_admin()),
        ("domain_admin_password", sim.config().admin_password.clone()),
        // The script's placeholder value has no digit; the simulated policy wants one.
        ("password_to_set", "Seed-Script-Passw0rd".to_owned()),
    ]);
    let (status, login) = send(&sim.url(), &fill(&requests[0], &vars)).await;
    assert_eq!(status, 200);
    for read in requests[0]["reads"].as_array().unwrap() {
        assert!(login[read.as_str().unwrap()].is_string(), "{read}: {login}");
    }
    vars.insert(
        "accessToken",
        login["accessToken"].as_str().unwrap().to_owned(),
    );
    let (status, listed) = send(&sim.url(), &fill(&requests[1], &vars)).await;
    assert_eq!(status, 200);
    assert!(has(&listed, "userData[].emailAddress"), "{listed}");
    let emails: Vec<String> = listed["userData"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["emailAddress"].as_str().unwrap().to_owned())
        .filter(|email| *email != sim.domain_admin())
        .collect();
    assert_eq!(emails.len(), sim.config().users);
    for email in &emails {
        vars.insert("email", email.clone());
        let (status, reply) = send(&sim.url(), &fill(&requests[2], &vars)).await;
        assert_eq!(
            (status, &reply["success"]),
            (200, &Value::Bool(true)),
            "{reply}"
        );
        assert_eq!(sim.history(email), ["Seed-Script-Passw0rd"]);
    }
}

/// The real server binds JSON field names without regard to case (.NET), so a
/// client that writes `Username` or `UserData` is understood.
#[tokio::test]
async fn the_smartermail_server_binds_field_names_without_case() {
    let sim = SmarterMailSim::start(SmarterMailConfig::default())
        .await
        .unwrap();
    let http = Client::new();
    let api = |path: &str| format!("{}/api/v1/{path}", sim.url());
    let login: Value = http
        .post(api("auth/authenticate-user"))
        .json(&serde_json::json!({ "Username": sim.domain_admin(), "PASSWORD": sim.config().admin_password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["success"], true, "{login}");
    let refreshed: Value = http
        .post(api("auth/refresh-token"))
        .json(&serde_json::json!({ "Token": login["refreshToken"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["success"], true, "{refreshed}");
    let user = sim.users()[1].clone();
    let reply: Value = http
        .post(api("settings/domain/post-user"))
        .bearer_auth(refreshed["accessToken"].as_str().unwrap())
        .json(&serde_json::json!({ "Email": user, "UserData": { "Password": "Case-Blind-Passw0rd" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["success"], true, "{reply}");
    assert_eq!(sim.history(&user), ["Case-Blind-Passw0rd"]);
    let form = http
        .post(api("auth/authenticate-user"))
        .form(&[
            ("USERNAME", sim.domain_admin()),
            ("Password", sim.config().admin_password.clone()),
        ])
        .send()
        .await
        .unwrap();
    let form: Value = form.json().await.unwrap();
    assert_eq!(form["success"], true, "{form}");
}
