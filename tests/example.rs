//! The real `rekey` binary and the example connector library against the Acme
//! Directory simulator: what an in-house team's connector looks like from the
//! operator's side.

use std::collections::HashSet;

use rekey_sim::inhouse::{
    ApiKey, Credential, DEFAULT_ACCOUNT, DEFAULT_KEY, InhouseConfig, InhouseSim, SCOPE_READ,
};
use rekey_tests::{ResultRecord, Scratch, runtime, with_status};

fn scratch(sim: &InhouseSim, key: &str, extra: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("ACME_API_KEY", key);
    scratch.config(&format!(
        r#"
[targets.acme]
connector = "example"
url = "{}"
api_key = {{ env = "ACME_API_KEY" }}
{extra}
"#,
        sim.url()
    ));
    scratch
}

fn start(config: InhouseConfig) -> (tokio::runtime::Runtime, InhouseSim) {
    let rt = runtime();
    let sim = rt.block_on(InhouseSim::start(config)).unwrap();
    (rt, sim)
}

fn row<'a>(rows: &'a [ResultRecord], user: &str) -> &'a ResultRecord {
    rows.iter().find(|r| r.user == user).unwrap()
}

#[test]
fn connectors_show_lists_the_settings() {
    let scratch = Scratch::new();
    let run = scratch.run(&["connectors", "show", "example"]);
    run.expect_code(0);
    let out = &run.stdout;
    assert!(out.contains("kinds:        password,passcode"), "{out}");
    assert!(
        out.contains("capabilities: list_users,vendor_values,vendor_reset"),
        "{out}"
    );
    let setting = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no setting {name} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(setting("url")[1..4], ["url", "yes", "no"]);
    assert_eq!(setting("api_key")[1..4], ["string", "yes", "yes"]);
    assert_eq!(setting("batch_size")[1..5], ["integer", "no", "no", "50"]);
    assert_eq!(setting("list_accounts")[4], "\"all\"");
    assert!(out.contains("(one of: all, enabled)"), "{out}");
    setting("allow_insecure_http");
    setting("timeout");

    let run = scratch.run(&["connectors"]);
    run.expect_code(0);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("example ")),
        "{}",
        run.stdout
    );
}

#[test]
fn resets_250_users_with_generated_passwords_in_batches() {
    let (_rt, sim) = start(InhouseConfig {
        users: 250,
        ..InhouseConfig::default()
    });
    let scratch = scratch(&sim, DEFAULT_KEY, "");
    scratch
        .run(&["reset", "acme", "--all", "--out", "results.csv", "--yes"])
        .expect_code(0);

    let rows = scratch.results("results.csv");
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 250);
    let mut distinct = HashSet::new();
    for row in &reset {
        assert_eq!(
            (row.target.as_str(), row.kind.as_str()),
            ("acme", "password")
        );
        assert_eq!(
            row.password.chars().count(),
            16,
            "the default policy's length"
        );
        assert_eq!(
            Some(&row.password),
            sim.password(&row.user).as_ref(),
            "{}",
            row.user
        );
        assert_eq!(sim.history(&row.user).len(), 1, "set exactly once");
        distinct.insert(row.password.clone());
    }
    assert_eq!(distinct.len(), 250);
    let batches = sim.reset_batches();
    assert_eq!(batches.iter().sum::<usize>(), 250);
    assert!(batches.iter().all(|&n| n <= 50), "{batches:?}");
    assert_eq!(batches.len(), 5, "batches of batch_size (50): {batches:?}");
}

#[test]
fn the_service_account_is_skipped_with_all() {
    let (_rt, sim) = start(InhouseConfig {
        users: 5,
        ..InhouseConfig::default()
    });
    let scratch = scratch(&sim, DEFAULT_KEY, "batch_size = 2");
    scratch
        .run(&["reset", "acme", "--all", "--out", "results.csv"])
        .expect_code(0);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 6);
    let service = row(&rows, DEFAULT_ACCOUNT);
    assert_eq!(service.status, "skipped");
    assert!(service.detail.contains("logs in as"), "{}", service.detail);
    assert!(service.password.is_empty());
    assert!(sim.history(DEFAULT_ACCOUNT).is_empty());
    assert_eq!(with_status(&rows, "reset").len(), 5);
    let mut batches = sim.reset_batches();
    batches.sort_unstable();
    assert_eq!(batches, [1, 2, 2], "batch_size is honoured");
}

#[test]
fn vendor_generate_delivers_the_directorys_own_values() {
    let (_rt, sim) = start(InhouseConfig {
        users: 120,
        ..InhouseConfig::default()
    });
    let scratch = scratch(&sim, DEFAULT_KEY, "");
    scratch
        .run(&[
            "reset",
            "acme",
            "--all",
            "--vendor-generate",
            "--out",
            "results.csv",
        ])
        .expect_code(0);
    let rows = scratch.results("results.csv");
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 120);
    let handed_out: HashSet<String> = sim.handed_out(Credential::Password).into_iter().collect();
    for row in reset {
        assert!(!row.password.is_empty(), "VendorValues: the value is known");
        assert_eq!(Some(&row.password), sim.password(&row.user).as_ref());
        assert!(handed_out.contains(&row.password), "made by the directory");
        let history = sim.history(&row.user);
        assert_eq!(history.len(), 1);
        assert!(!history[0].generated_in_place, "set by rekey like its own");
    }
}

#[test]
fn passcodes_are_a_kind_of_their_own() {
    let (_rt, sim) = start(InhouseConfig::default());
    let scratch = scratch(&sim, DEFAULT_KEY, "");
    let before = sim.password("u00001");
    scratch
        .run(&[
            "reset", "acme", "--user", "u00001", "--user", "u00002", "--kind", "passcode", "--out",
            "pins.csv",
        ])
        .expect_code(0);
    let rows = scratch.results("pins.csv");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(
            (row.kind.as_str(), row.status.as_str()),
            ("passcode", "reset")
        );
        assert_eq!(row.password.len(), 8);
        assert!(row.password.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(Some(&row.password), sim.passcode(&row.user).as_ref());
    }
    assert_eq!(sim.password("u00001"), before, "the password is untouched");
}

#[test]
fn an_unknown_user_fails_with_the_directorys_message() {
    let (_rt, sim) = start(InhouseConfig::default());
    let scratch = scratch(&sim, DEFAULT_KEY, "");
    scratch
        .run(&[
            "reset",
            "acme",
            "--user",
            "u00001",
            "--user",
            "nobody",
            "--user",
            "u00002",
            "--out",
            "results.csv",
        ])
        .expect_code(1);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 3);
    let failed = row(&rows, "nobody");
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.detail, "no user with id nobody");
    assert!(failed.password.is_empty());
    for user in ["u00001", "u00002"] {
        assert_eq!(row(&rows, user).status, "reset");
        assert_eq!(
            Some(&row(&rows, user).password),
            sim.password(user).as_ref()
        );
    }
    assert_eq!(sim.reset_batches(), [3], "one batch, an outcome per user");
}

#[test]
fn a_key_without_the_write_scope_is_refused_at_check() {
    let mut config = InhouseConfig::default();
    config.keys.push(ApiKey {
        key: "read-only-key".into(),
        account: "svc-audit".into(),
        scopes: vec![SCOPE_READ.into()],
    });
    let (_rt, sim) = start(config);
    let scratch = scratch(&sim, "read-only-key", "");
    let run = scratch.run(&["check", "acme"]);
    run.expect_code(2);
    assert!(
        run.stdout.contains("lacks the passwords:write scope"),
        "{}",
        run.stdout
    );
    let run = scratch.run(&["reset", "acme", "--all", "--out", "results.csv"]);
    run.expect_code(2);
    assert!(sim.reset_batches().is_empty(), "nothing was sent");
    let jobs = scratch.run(&["jobs"]);
    assert!(jobs.stdout.is_empty(), "no job is kept: {}", jobs.stdout);
    assert!(!run.stderr.contains("read-only-key") && !run.stdout.contains("read-only-key"));
}
