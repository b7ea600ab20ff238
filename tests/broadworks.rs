//! The real `rekey` binary and BroadWorks connector library against the Odin API
//! simulator.

use std::collections::HashSet;

use rekey_sim::broadworks::{BroadWorksConfig, BroadWorksSim, Credential, GenerateCalls};
use rekey_tests::{ResultRecord, Scratch, runtime, with_status};

const ADMIN_PASSWORD: &str = "Odin-Admin-Passw0rd!";

fn scratch(sim: &BroadWorksSim) -> Scratch {
    let config = sim.config();
    let mut scratch = Scratch::new();
    scratch.env("ODIN_PASSWORD", ADMIN_PASSWORD);
    scratch.config(&format!(
        r#"
[targets.pbx]
connector = "broadworks"
url = "{url}"
username = "{username}"
password = {{ env = "ODIN_PASSWORD" }}
service_provider_id = "{sp}"
group_id = "{group}"
"#,
        url = sim.url(),
        username = config.username,
        sp = config.service_provider_id,
        group = config.group_id,
    ));
    scratch
}

fn start(config: BroadWorksConfig) -> (tokio::runtime::Runtime, BroadWorksSim) {
    let rt = runtime();
    let sim = rt.block_on(BroadWorksSim::start(config)).unwrap();
    (rt, sim)
}

/// The simulator's current value of `credential` for `user`.
fn current(sim: &BroadWorksSim, credential: Credential, user: &str) -> Option<String> {
    match credential {
        Credential::Web => sim.web_password(user),
        Credential::Sip => sim.sip_password(user),
        Credential::Passcode => sim.passcode(user),
    }
}

/// Every row is `reset` with the value now in effect, set exactly once.
fn assert_delivered(
    sim: &BroadWorksSim,
    rows: &[ResultRecord],
    kind: &str,
    credential: Credential,
) {
    for row in rows {
        assert_eq!(row.status, "reset", "{row:?}");
        assert_eq!(row.kind, kind);
        assert_eq!(row.target, "pbx");
        assert_eq!(
            Some(row.password.clone()),
            current(sim, credential, &row.user),
            "{}",
            row.user
        );
        assert_eq!(
            sim.history(&row.user, credential).as_slice(),
            std::slice::from_ref(&row.password),
            "set exactly once"
        );
    }
}

fn assert_passcodes(sim: &BroadWorksSim, rows: &[ResultRecord]) {
    for row in rows {
        assert!(
            row.password.len() == 8 && row.password.bytes().all(|b| b.is_ascii_digit()),
            "{row:?}"
        );
        assert_eq!(sim.passcode_violation(&row.password), None);
    }
}

#[test]
fn resets_200_web_passwords_with_generated_values() {
    let (_rt, sim) = start(BroadWorksConfig {
        users: 200,
        ..BroadWorksConfig::default()
    });
    let scratch = scratch(&sim);
    let run = scratch.run(&[
        "reset",
        "pbx",
        "--all",
        "--kind",
        "password",
        "--out",
        "results.csv",
        "--yes",
    ]);
    run.expect_code(0);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 200);
    assert_delivered(&sim, &rows, "password", Credential::Web);
    let distinct: HashSet<&str> = rows.iter().map(|r| r.password.as_str()).collect();
    assert_eq!(distinct.len(), 200, "every user has a password of its own");
    assert!(rows.iter().all(|r| r.password.chars().count() == 16));
    assert_eq!(sim.logins(), 1, "a normal run logs in exactly once");
    assert_eq!(sim.generate_calls(), GenerateCalls::default());
    assert!(
        sim.history(&rows[0].user, Credential::Sip).is_empty()
            && sim.history(&rows[0].user, Credential::Passcode).is_empty(),
        "only the web password changed"
    );
}

#[test]
fn sip_passwords_and_passcodes_with_rekeys_values() {
    let (_rt, sim) = start(BroadWorksConfig {
        users: 30,
        ..BroadWorksConfig::default()
    });
    let scratch = scratch(&sim);
    scratch
        .run(&["reset", "pbx", "--all", "--kind", "sip", "--out", "sip.csv"])
        .expect_code(0);
    let rows = scratch.results("sip.csv");
    assert_eq!(rows.len(), 30);
    assert_delivered(&sim, &rows, "sip", Credential::Sip);

    scratch
        .run(&[
            "reset", "pbx", "--all", "--kind", "passcode", "--out", "pin.csv",
        ])
        .expect_code(0);
    let rows = scratch.results("pin.csv");
    assert_eq!(rows.len(), 30);
    assert_delivered(&sim, &rows, "passcode", Credential::Passcode);
    assert_passcodes(&sim, &rows);
    assert_eq!(sim.generate_calls(), GenerateCalls::default());
}

#[test]
fn vendor_generated_values_for_every_kind() {
    let (_rt, sim) = start(BroadWorksConfig {
        users: 150,
        ..BroadWorksConfig::default()
    });
    let scratch = scratch(&sim);
    for (kind, credential) in [
        ("password", Credential::Web),
        ("passcode", Credential::Passcode),
        ("sip", Credential::Sip),
    ] {
        let out = format!("{kind}.csv");
        scratch
            .run(&[
                "reset",
                "pbx",
                "--all",
                "--kind",
                kind,
                "--vendor-generate",
                "--out",
                &out,
            ])
            .expect_code(0);
        let rows = scratch.results(&out);
        assert_eq!(rows.len(), 150);
        assert_delivered(&sim, &rows, kind, credential);
        for row in &rows {
            assert!(
                sim.was_generated(&row.password),
                "{kind} for {} was not Odin's",
                row.user
            );
            assert!(!row.password.starts_with(['=', '+', '-', '@']));
        }
        if credential == Credential::Passcode {
            assert_passcodes(&sim, &rows);
        }
    }
    // Web passwords and passcodes come 100 a call, SIP passwords one a call; and
    // Odin's symbols include @, - and +: a value that begins with one (a
    // spreadsheet formula) is not used, and rekey asks for another.
    let GenerateCalls {
        password,
        passcode,
        sip,
    } = sim.generate_calls();
    assert!(
        (2..=8).contains(&password),
        "{password} calls for web passwords"
    );
    assert_eq!(passcode, 2, "passcodes never begin a formula");
    assert!((150..=180).contains(&sip), "{sip} calls for SIP passwords");
    assert_eq!(sim.logins(), 3, "one login a run");
}

#[test]
fn an_unknown_user_fails_with_the_vendors_message() {
    let (_rt, sim) = start(BroadWorksConfig::default());
    let scratch = scratch(&sim);
    scratch
        .run(&[
            "reset",
            "pbx",
            "--user",
            "user0001@testdomain.net",
            "--user",
            "nobody@testdomain.net",
            "--user",
            "user0002@testdomain.net",
            "--out",
            "results.csv",
        ])
        .expect_code(1);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 3);
    let failed = with_status(&rows, "failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].user, "nobody@testdomain.net");
    assert_eq!(
        failed[0].detail,
        "[Error 4008] User not found: nobody@testdomain.net 404: Not Found"
    );
    assert!(failed[0].password.is_empty());
    let reset: Vec<ResultRecord> = with_status(&rows, "reset").into_iter().cloned().collect();
    assert_eq!(reset.len(), 2);
    assert_delivered(&sim, &reset, "password", Credential::Web);
}

#[test]
fn users_without_the_authentication_service_fail_and_the_rest_are_reset() {
    let (_rt, sim) = start(BroadWorksConfig {
        users: 12,
        without_authentication: 2,
        ..BroadWorksConfig::default()
    });
    let scratch = scratch(&sim);
    scratch
        .run(&["reset", "pbx", "--all", "--kind", "sip", "--out", "sip.csv"])
        .expect_code(1);
    let rows = scratch.results("sip.csv");
    let failed = with_status(&rows, "failed");
    assert_eq!(failed.len(), 2);
    for row in failed {
        assert!(!sim.has_authentication(&row.user));
        assert_eq!(
            row.detail,
            format!(
                "[Error 4410] Service not assigned to user {}: Authentication 400: Bad Request",
                row.user
            )
        );
        assert!(row.password.is_empty());
    }
    let reset: Vec<ResultRecord> = with_status(&rows, "reset").into_iter().cloned().collect();
    assert_eq!(reset.len(), 10);
    assert_delivered(&sim, &reset, "sip", Credential::Sip);
}

#[test]
fn check_users_and_the_connector_listing() {
    let (_rt, sim) = start(BroadWorksConfig::default());
    let scratch = scratch(&sim);
    let run = scratch.run(&["-vv", "check", "pbx"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("pbx: ok"), "{}", run.stdout);
    assert!(!run.stdout.contains(ADMIN_PASSWORD) && !run.stderr.contains(ADMIN_PASSWORD));
    let run = scratch.run(&["users", "pbx"]);
    run.expect_code(0);
    let listed: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(listed.len(), 10);
    assert_eq!(listed[0], "user0001@testdomain.net");
    let run = scratch.run(&["connectors"]);
    run.expect_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("broadworks"))
        .unwrap_or_else(|| panic!("broadworks is not listed:\n{}", run.stdout));
    for word in ["password", "sip", "passcode", "list_users", "vendor_values"] {
        assert!(line.contains(word), "{word} missing from: {line}");
    }
}
