//! `rekey conformance` through the real binary: every bundled connector keeps the
//! contract against its simulator, changing nothing; with `--test-user` it resets
//! that one user, journaled, and delivers the password.

use rekey_sim::admanager::{AdManagerConfig, AdManagerSim};
use rekey_sim::broadworks::{BroadWorksConfig, BroadWorksSim};
use rekey_sim::inhouse::{DEFAULT_KEY, InhouseConfig, InhouseSim};
use rekey_sim::oracle::{OracleConfig, OracleSim};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_tests::{Run, Scratch, runtime};

/// Asserts that every line is a PASS or SKIP of a known form, and that the checks
/// the contract names all ran.
fn assert_conforms(run: &Run) {
    run.expect_code(0);
    for line in run.stdout.lines() {
        assert!(
            line.starts_with("PASS ") || line.starts_with("SKIP "),
            "{line}\n{}",
            run.stdout
        );
    }
    for check in [
        "describe",
        "settings",
        "check",
        "listing",
        "unknown-user",
        "reset-replies",
        "concurrency",
        "cancellation",
    ] {
        assert!(
            run.stdout.contains(&format!(" {check}: ")),
            "no {check} line:\n{}",
            run.stdout
        );
    }
}

fn config(scratch: &mut Scratch, env: (&str, &str), table: &str) {
    scratch.env(env.0, env.1);
    scratch.config(table);
}

#[test]
fn smartermail_conforms_and_changes_nothing() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let mut scratch = Scratch::new();
    config(
        &mut scratch,
        ("SM_PW", "Admin-Passw0rd!"),
        &format!(
            "[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"SM_PW\" }}\n",
            sim.url(),
            sim.domain_admin()
        ),
    );
    let run = scratch.run(&["conformance", "mail"]);
    assert_conforms(&run);
    assert!(run.stdout.contains("@example.com"), "{}", run.stdout);
    for user in sim.users() {
        assert!(sim.history(&user).is_empty(), "{user} was changed");
    }
    assert!(
        scratch.run(&["jobs"]).stdout.is_empty(),
        "no job without --test-user"
    );

    // --test-user resets that one user, and delivers its password.
    let user = sim
        .users()
        .into_iter()
        .find(|u| *u != sim.domain_admin())
        .unwrap();
    let run = scratch.run(&[
        "conformance",
        "mail",
        "--test-user",
        &user,
        "--out",
        "t.csv",
    ]);
    run.expect_code(0);
    assert!(run.stdout.contains("PASS test-user:"), "{}", run.stdout);
    let rows = scratch.results("t.csv");
    assert_eq!(rows.len(), 1);
    assert_eq!(Some(rows[0].password.clone()), sim.password(&user));
    let changed: Vec<String> = sim
        .users()
        .into_iter()
        .filter(|u| !sim.history(u).is_empty())
        .collect();
    assert_eq!(changed, [user]);
}

#[test]
fn broadworks_conforms() {
    let rt = runtime();
    let sim = rt
        .block_on(BroadWorksSim::start(BroadWorksConfig::default()))
        .unwrap();
    let config_ = sim.config();
    let mut scratch = Scratch::new();
    config(
        &mut scratch,
        ("ODIN_PW", &config_.password),
        &format!(
            "[targets.pbx]\nconnector = \"broadworks\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"ODIN_PW\" }}\nservice_provider_id = \"{}\"\ngroup_id = \"{}\"\n",
            sim.url(),
            config_.username,
            config_.service_provider_id,
            config_.group_id
        ),
    );
    assert_conforms(&scratch.run(&["conformance", "pbx"]));
}

#[test]
fn oracle_cloud_conforms() {
    let rt = runtime();
    let sim = rt
        .block_on(OracleSim::start(OracleConfig::default()))
        .unwrap();
    let mut scratch = Scratch::new();
    config(
        &mut scratch,
        ("P6_PW", &sim.config().admin_password),
        &format!(
            "[targets.p6]\nconnector = \"oracle-cloud\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"P6_PW\" }}\n",
            sim.url(),
            sim.config().admin
        ),
    );
    assert_conforms(&scratch.run(&["conformance", "p6"]));
}

#[test]
fn admanager_conforms_without_spending_its_quota() {
    let rt = runtime();
    let sim = rt
        .block_on(AdManagerSim::start(AdManagerConfig::default()))
        .unwrap();
    let mut scratch = Scratch::new();
    config(
        &mut scratch,
        ("ADMP_TOKEN", &sim.config().auth_token),
        &format!(
            "[targets.ad]\nconnector = \"admanager\"\nurl = \"{}\"\nauth_token = {{ env = \"ADMP_TOKEN\" }}\ndomain = \"{}\"\n",
            sim.url(),
            sim.config().domain
        ),
    );
    let run = scratch.run(&["conformance", "ad"]);
    assert_conforms(&run);
    assert_eq!(sim.quota_used_today(), 0);
}

#[test]
fn the_example_connector_conforms() {
    let rt = runtime();
    let sim = rt
        .block_on(InhouseSim::start(InhouseConfig::default()))
        .unwrap();
    let mut scratch = Scratch::new();
    config(
        &mut scratch,
        ("ACME_KEY", DEFAULT_KEY),
        &format!(
            "[targets.acme]\nconnector = \"example\"\nurl = \"{}\"\napi_key = {{ env = \"ACME_KEY\" }}\n",
            sim.url()
        ),
    );
    assert_conforms(&scratch.run(&["conformance", "acme"]));
    for user in sim.users() {
        assert!(sim.history(&user).is_empty(), "{user} was changed");
    }
}

#[test]
fn a_faulty_connector_fails_exactly_the_checks_it_breaks() {
    use rekey_tests::connector_file_name;
    for (fault, broken) in [
        ("none", None),
        ("duplicate-ids", Some("listing")),
        ("extra-outcome", Some("reset-replies")),
        ("panic", Some("unknown-user")),
        ("hang", Some("unknown-user")),
    ] {
        let mut scratch = Scratch::new();
        let dir = scratch.plugin_copy("fixture_faulty", &connector_file_name("faulty"));
        scratch.env("REKEY_PLUGIN_PATH", dir.to_str().unwrap());
        scratch.config(&format!(
            "[targets.t]\nconnector = \"faulty\"\nfault = \"{fault}\"\ntimeout = 1\n"
        ));
        let run = scratch.run(&["conformance", "t"]);
        let failed: Vec<&str> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("FAIL "))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(
            failed,
            broken.into_iter().collect::<Vec<_>>(),
            "{fault}:\n{}",
            run.stdout
        );
        run.expect_code(if broken.is_some() { 1 } else { 0 });
    }
}
