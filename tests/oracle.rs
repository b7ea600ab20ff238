//! The real `rekey` binary and Primavera Administration connector library against
//! the Primavera Administration simulator.

use std::collections::HashSet;

use rekey_sim::oracle::{INVALID_INPUT, OracleConfig, OracleSim};
use rekey_tests::{Scratch, runtime, with_status};

const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

fn config(sim: &OracleSim, extra: &str) -> String {
    format!(
        r#"
[targets.p6]
connector = "oracle-cloud"
url = "{url}"
username = "coadmin"
password = {{ env = "P6_ADMIN_PASSWORD" }}
{extra}
"#,
        url = sim.url(),
    )
}

fn scratch(sim: &OracleSim, extra: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("P6_ADMIN_PASSWORD", ADMIN_PASSWORD);
    scratch.config(&config(sim, extra));
    scratch
}

#[test]
fn resets_200_users_in_batches_with_generated_passwords() {
    let rt = runtime();
    let sim = rt
        .block_on(OracleSim::start(OracleConfig {
            users: 200,
            ..OracleConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, "batch_size = 25");
    scratch
        .run(&["reset", "p6", "--all", "--out", "results.csv", "--yes"])
        .expect_code(0);

    let rows = scratch.results("results.csv");
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 200);
    let mut distinct = HashSet::new();
    for row in &reset {
        assert_eq!((row.target.as_str(), row.kind.as_str()), ("p6", "password"));
        assert_eq!(row.password.chars().count(), 16);
        assert_eq!(
            sim.history(&row.user).as_slice(),
            std::slice::from_ref(&row.password),
            "{}",
            row.user
        );
        distinct.insert(row.password.clone());
    }
    assert_eq!(distinct.len(), 200);

    // The connector's own account (named in another case in the config) is untouched.
    let admin = rows.iter().find(|r| r.user == "COADMIN").unwrap();
    assert_eq!(admin.status, "skipped");
    assert_eq!(sim.password("COADMIN").unwrap(), ADMIN_PASSWORD);

    let calls = sim.reset_calls();
    assert_eq!(calls.len(), 8, "200 users in batches of 25");
    assert!(calls.iter().all(|c| c.users == 25 && c.status == 200));
    assert!(sim.notifications().is_empty(), "notify defaults to false");
}

#[test]
fn an_unknown_login_id_fails_alone_and_its_batch_is_reset() {
    let rt = runtime();
    let sim = rt
        .block_on(OracleSim::start(OracleConfig {
            users: 30,
            ..OracleConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, "");
    let mut ids: Vec<String> = (1..=20).map(|n| format!("USER{n:04}")).collect();
    ids.insert(9, "NOBODY".into());
    std::fs::write(
        scratch.path("users.txt"),
        format!("# one login id a line\n{}\n", ids.join("\n")),
    )
    .unwrap();
    scratch
        .run(&[
            "reset",
            "p6",
            "--users",
            "users.txt",
            "--out",
            "results.csv",
        ])
        .expect_code(1);

    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 21);
    let failed = with_status(&rows, "failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].user, "NOBODY");
    assert!(
        failed[0].detail.starts_with(INVALID_INPUT),
        "{}",
        failed[0].detail
    );
    assert!(failed[0].password.is_empty());
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 20);
    for row in reset {
        assert_eq!(sim.password(&row.user), Some(row.password.clone()));
    }
    let sizes: Vec<usize> = sim.reset_calls().iter().map(|c| c.users).collect();
    assert_eq!(sizes, [21, 20, 1]);
}

#[test]
fn the_vendor_generates_and_mails_passwords() {
    let rt = runtime();
    let sim = rt
        .block_on(OracleSim::start(OracleConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "");
    scratch
        .run(&[
            "reset",
            "p6",
            "--all",
            "--vendor-generate",
            "--out",
            "results.csv",
        ])
        .expect_code(0);
    let rows = scratch.results("results.csv");
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 10);
    for row in reset {
        assert!(row.password.is_empty());
        assert!(row.detail.contains("did not return it"), "{}", row.detail);
        let changes = sim.changes(&row.user);
        assert_eq!(changes.len(), 1, "{}", row.user);
        assert!(changes[0].vendor_made && changes[0].emailed);
        assert_eq!(sim.password(&row.user), Some(changes[0].password.clone()));
    }
    assert_eq!(sim.notifications().len(), 10);
    assert!(sim.history("COADMIN").is_empty());
}

#[test]
fn a_policy_with_a_symbol_the_vendor_refuses_is_a_config_error() {
    let rt = runtime();
    let sim = rt
        .block_on(OracleSim::start(OracleConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "[targets.p6.policy]\nsymbols = \"!#é\"\n");
    let run = scratch.run(&["reset", "p6", "--all", "--out", "results.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains("symbol"), "{}", run.stderr);
    assert!(sim.common().requests().is_empty());
    assert!(!scratch.path("results.csv").exists());
}

#[test]
fn a_known_value_outside_printable_ascii_is_refused_before_any_change() {
    let rt = runtime();
    let sim = rt
        .block_on(OracleSim::start(OracleConfig::default()))
        .unwrap();
    let mut scratch = scratch(&sim, "");
    scratch.env("NEW_PASSWORD", "Pässwort-2024");
    let run = scratch.run(&[
        "reset",
        "p6",
        "--user",
        "USER0001",
        "--password-env",
        "NEW_PASSWORD",
        "--out",
        "results.csv",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("printable ASCII"), "{}", run.stderr);
    assert!(!run.stderr.contains("Pässwort"));
    assert!(sim.reset_calls().is_empty());
    assert!(sim.history("USER0001").is_empty());
}

#[test]
fn users_and_check_commands() {
    let rt = runtime();
    let sim = rt
        .block_on(OracleSim::start(OracleConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "");
    let run = scratch.run(&["users", "p6"]);
    run.expect_code(0);
    assert_eq!(run.stdout.lines().count(), 11);
    assert!(run.stdout.lines().any(|l| l == "USER0007"));
    scratch.run(&["check", "p6"]).expect_code(0);
    let run = scratch.run(&["connectors", "show", "oracle-cloud"]);
    run.expect_code(0);
    assert!(run.stdout.contains("batch_size"), "{}", run.stdout);
}
