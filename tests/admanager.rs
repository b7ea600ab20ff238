//! The real `rekey` binary and ADManager Plus connector library against the
//! ADManager simulator.

use std::collections::HashSet;
use std::time::Duration;

use rekey_sim::admanager::{AdManagerConfig, AdManagerSim, Locale, ReplyShape};
use rekey_tests::{Scratch, runtime, with_status};

const DAY: Duration = Duration::from_secs(86_400);

fn scratch(sim: &AdManagerSim, token: &str, extra: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("ADMP_AUTH_TOKEN", token);
    scratch.config(&format!(
        r#"
[targets.ad]
connector = "admanager"
url = "{url}"
auth_token = {{ env = "ADMP_AUTH_TOKEN" }}
domain = "{domain}"
{extra}
"#,
        url = sim.url(),
        domain = sim.config().domain,
    ));
    scratch
}

fn users_file(scratch: &Scratch, name: &str, users: &[String]) {
    std::fs::write(scratch.path(name), users.join("\n") + "\n").unwrap();
}

/// Every byte that is not alphanumeric as `%XX`, in upper and lower case hex.
fn percent_encodings(value: &str) -> [String; 2] {
    let encode = |upper: bool| {
        value
            .bytes()
            .map(|b| match b {
                b if b.is_ascii_alphanumeric() => char::from(b).to_string(),
                b if upper => format!("%{b:02X}"),
                b => format!("%{b:02x}"),
            })
            .collect::<String>()
    };
    [encode(true), encode(false)]
}

#[test]
fn resets_every_user_with_generated_passwords_one_request_each() {
    let rt = runtime();
    let sim = rt
        .block_on(AdManagerSim::start(AdManagerConfig {
            users: 200,
            daily_limit: 1000,
            ..AdManagerConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, &sim.config().auth_token, "daily_limit = 1000");
    scratch
        .run(&["reset", "ad", "--all", "--out", "results.csv", "--yes"])
        .expect_code(0);
    let rows = scratch.results("results.csv");
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 200);
    let mut distinct = HashSet::new();
    for row in &reset {
        assert_eq!(
            Some(row.password.clone()),
            sim.password(&row.user),
            "{}",
            row.user
        );
        assert_eq!(
            sim.history(&row.user),
            std::slice::from_ref(&row.password),
            "set once"
        );
        distinct.insert(row.password.clone());
    }
    assert_eq!(distinct.len(), 200);
    assert_eq!(sim.reset_requests(), 200, "one user per request");
    // The token's own technician is never reset.
    let own = rows.iter().find(|r| r.user == "helpdesk").unwrap();
    assert_eq!(own.status, "skipped");
    assert!(sim.history("helpdesk").is_empty());
}

#[test]
fn a_known_value_of_every_printable_character_is_batched_and_never_in_a_url() {
    let rt = runtime();
    let sim = rt
        .block_on(AdManagerSim::start(AdManagerConfig {
            users: 60,
            daily_limit: 100,
            ..AdManagerConfig::default()
        }))
        .unwrap();
    let mut scratch = scratch(&sim, &sim.config().auth_token, "daily_limit = 100");
    let printable: String = (' '..='~').collect();
    scratch.env("NEW_PASSWORD", &printable);
    let users: Vec<String> = (1..=60).map(|i| format!("user{i:05}")).collect();
    users_file(&scratch, "users.txt", &users);
    scratch
        .run(&[
            "reset",
            "ad",
            "--users",
            "users.txt",
            "--password-env",
            "NEW_PASSWORD",
            "--out",
            "results.csv",
        ])
        .expect_code(0);
    let rows = scratch.results("results.csv");
    assert_eq!(with_status(&rows, "reset").len(), 60);
    for user in &users {
        assert_eq!(
            sim.history(user),
            std::slice::from_ref(&printable),
            "{user}"
        );
    }
    assert_eq!(sim.reset_requests(), 2, "batches of 50 share the value");

    let token = sim.config().auth_token.clone();
    let mut forbidden = vec![printable.clone(), token.clone()];
    forbidden.extend(percent_encodings(&printable));
    forbidden.push(printable.replace(' ', "+"));
    forbidden.extend(percent_encodings(&token));
    let requests = sim.common().requests();
    assert!(!requests.is_empty());
    for logged in &requests {
        assert!(
            logged.uri.starts_with("/RestAPI/") && !logged.uri.contains('?'),
            "{}",
            logged.uri
        );
        for secret in &forbidden {
            assert!(
                !logged.uri.contains(secret.as_str()),
                "a secret in {}",
                logged.uri
            );
        }
    }
}

#[test]
fn the_daily_limit_stops_the_job_and_the_next_day_carries_on() {
    let rt = runtime();
    let sim = rt
        .block_on(AdManagerSim::start(AdManagerConfig {
            users: 50,
            ..AdManagerConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, &sim.config().auth_token, "daily_limit = 30");
    let users: Vec<String> = (1..=50).map(|i| format!("user{i:05}")).collect();
    users_file(&scratch, "users.txt", &users);
    let run = scratch.run(&["reset", "ad", "--users", "users.txt", "--out", "day1.csv"]);
    run.expect_code(3);
    assert!(run.stderr.contains("quota exhausted"), "{}", run.stderr);
    let rows = scratch.results("day1.csv");
    assert_eq!(with_status(&rows, "reset").len(), 30);
    let skipped: Vec<String> = with_status(&rows, "skipped")
        .iter()
        .map(|r| r.user.clone())
        .collect();
    assert_eq!(skipped.len(), 20);
    assert_eq!(sim.quota_used_today(), 30);
    for row in with_status(&rows, "reset") {
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
    for user in &skipped {
        assert!(sim.history(user).is_empty(), "{user} was not to be sent");
    }

    // The vendor's next day: resuming the job resets the skipped users, nobody
    // twice, and rewrites the results file complete.
    sim.common().clock.advance(DAY);
    let job = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .unwrap()
        .to_owned();
    scratch.run(&["resume", &job]).expect_code(0);
    let rows = scratch.results("day1.csv");
    assert_eq!(with_status(&rows, "reset").len(), 50);
    for row in &rows {
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
    for user in &users {
        assert_eq!(sim.history(user).len(), 1, "{user} reset exactly once");
    }
    assert_eq!(sim.quota_used_today(), 20);

    // A fresh run on the new day is held to the same limit, counted across runs.
    users_file(&scratch, "again.txt", &users[..15]);
    let run = scratch.run(&["reset", "ad", "--users", "again.txt", "--out", "again.csv"]);
    run.expect_code(3);
    assert_eq!(
        with_status(&scratch.results("again.csv"), "reset").len(),
        10
    );
    assert_eq!(sim.quota_used_today(), 30);
}

#[test]
fn a_refused_token_stops_before_any_change() {
    let rt = runtime();
    let sim = rt
        .block_on(AdManagerSim::start(AdManagerConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "revoked-token-1234", "");
    let run = scratch.run(&["reset", "ad", "--all", "--out", "results.csv"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("authentication refused"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("revoked-token-1234"));
    assert_eq!(sim.reset_requests(), 0);
    for user in sim.users() {
        assert!(sim.history(&user).is_empty(), "{user} was changed");
    }
    let run = scratch.run(&["check", "ad"]);
    run.expect_code(2);
    assert!(
        run.stdout.contains("authentication refused"),
        "{}",
        run.stdout
    );
}

/// The vendor's documented reply shape (seed 003): ids and `statusMessage` only.
#[test]
fn replies_without_status_are_read_and_an_unknown_text_is_never_a_success() {
    let rt = runtime();
    let sim = rt
        .block_on(AdManagerSim::start(AdManagerConfig {
            users: 12,
            reply_shape: ReplyShape::Seed,
            ..AdManagerConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, &sim.config().auth_token, "");
    let mut users: Vec<String> = (1..=12).map(|i| format!("user{i:05}")).collect();
    users.push("nobody".into());
    users_file(&scratch, "users.txt", &users);
    scratch
        .run(&[
            "reset",
            "ad",
            "--users",
            "users.txt",
            "--out",
            "results.csv",
        ])
        .expect_code(1);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 13);
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 12);
    for row in &reset {
        assert_eq!(
            Some(row.password.clone()),
            sim.password(&row.user),
            "{}",
            row.user
        );
        assert_eq!(row.detail, "Successfully modified.");
    }
    let unknown = rows.iter().find(|r| r.user == "nobody").unwrap();
    assert_eq!(unknown.status, "failed");
    assert!(
        unknown.detail.contains("No such user"),
        "{}",
        unknown.detail
    );
    assert!(
        !unknown.password.is_empty(),
        "an unknown outcome keeps the password"
    );
}

#[test]
fn success_messages_are_a_list_in_the_config() {
    let rt = runtime();
    let sim = rt
        .block_on(AdManagerSim::start(AdManagerConfig {
            users: 2,
            reply_shape: ReplyShape::Seed,
            locale: Locale::Es,
            ..AdManagerConfig::default()
        }))
        .unwrap();
    // The Spanish "Modificado correctamente." is a success only when listed.
    let listed = r#"success_messages = ["Password changed.", "Modificado correctamente."]"#;
    let listing = scratch(&sim, &sim.config().auth_token, listed);
    listing
        .run(&["reset", "ad", "--user", "user00001", "--out", "out.csv"])
        .expect_code(0);
    let rows = listing.results("out.csv");
    assert_eq!(rows[0].status, "reset", "{rows:?}");
    assert_eq!(sim.password("user00001"), Some(rows[0].password.clone()));

    // The old form, one text a line in a string, is refused by name before
    // anything is sent.
    let old = "success_messages = \"Modificado correctamente.\"";
    let string = scratch(&sim, &sim.config().auth_token, old);
    let run = string.run(&["reset", "ad", "--user", "user00002", "--out", "out.csv"]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("setting `success_messages` must be a list of strings"),
        "{}",
        run.stderr
    );
    assert!(sim.history("user00002").is_empty());
}
