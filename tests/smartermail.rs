//! The real `rekey` binary and SmarterMail connector library against the SmarterMail
//! simulator.

use std::collections::HashSet;
use std::time::Duration;

use rekey_sim::Behaviour;
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_tests::{Scratch, runtime, with_status};

const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

fn config(sim: &SmarterMailSim, extra: &str) -> String {
    format!(
        r#"
[targets.mail]
connector = "smartermail"
url = "{url}"
username = "{admin}"
password = {{ env = "SM_ADMIN_PASSWORD" }}
{extra}
"#,
        url = sim.url(),
        admin = sim.domain_admin(),
    )
}

fn scratch(sim: &SmarterMailSim, extra: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("SM_ADMIN_PASSWORD", ADMIN_PASSWORD);
    scratch.config(&config(sim, extra));
    scratch
}

#[test]
fn resets_every_user_with_generated_passwords() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig {
            users: 502,
            ..SmarterMailConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, r#"exclude = ["USER00501@example.com"]"#);
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--exclude",
        "user00502@example.com",
        "--out",
        "results.csv",
        "--yes",
    ]);
    run.expect_code(0);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("job ")),
        "{}",
        run.stderr
    );

    let rows = scratch.results("results.csv");
    let reset = with_status(&rows, "reset");
    assert_eq!(reset.len(), 500);
    let mut distinct = HashSet::new();
    for row in &reset {
        assert_eq!(row.target, "mail");
        assert_eq!(row.kind, "password");
        assert_eq!(
            row.password.chars().count(),
            16,
            "the default policy's length"
        );
        assert_eq!(
            Some(row.password.clone()),
            sim.password(&row.user),
            "{}",
            row.user
        );
        assert_eq!(
            sim.history(&row.user).as_slice(),
            std::slice::from_ref(&row.password),
            "set exactly once"
        );
        distinct.insert(row.password.clone());
    }
    assert_eq!(distinct.len(), 500, "every user has a password of its own");

    // The domain admin (the connector's own account) and the excluded users are untouched.
    for untouched in [
        "admin@example.com",
        "user00501@example.com",
        "user00502@example.com",
    ] {
        assert!(sim.history(untouched).is_empty(), "{untouched} was changed");
        let row = rows
            .iter()
            .find(|r| r.user.eq_ignore_ascii_case(untouched))
            .unwrap();
        assert_eq!(row.status, "skipped");
        assert!(row.password.is_empty());
    }
    assert_eq!(sim.domain_admin(), "admin@example.com");
    assert_eq!(sim.password("admin@example.com").unwrap(), ADMIN_PASSWORD);
    assert_eq!(sim.logins(), 1);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(scratch.path("results.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_long_run_refreshes_tokens_and_logs_in_once() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig {
            users: 400,
            token_lifetime: Duration::from_secs(2),
            behaviour: Behaviour {
                latency: Duration::from_millis(50),
                ..Behaviour::default()
            },
            ..SmarterMailConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, "");
    let started = std::time::Instant::now();
    scratch
        .run(&[
            "reset",
            "mail",
            "--all",
            "--concurrency",
            "8",
            "--out",
            "results.csv",
        ])
        .expect_code(0);
    // 400 users at 8 × 50 ms take well over one token lifetime.
    assert!(started.elapsed() > Duration::from_secs(2));
    let rows = scratch.results("results.csv");
    assert_eq!(with_status(&rows, "reset").len(), 400);
    for row in with_status(&rows, "reset") {
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
    assert_eq!(sim.logins(), 1, "exactly one login");
    assert!(sim.refreshes() >= 1, "the token was refreshed");
}

#[test]
fn an_unknown_user_fails_with_the_vendors_message() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "");
    scratch
        .run(&[
            "reset",
            "mail",
            "--user",
            "user00001@example.com",
            "--user",
            "nobody@example.com",
            "--user",
            "user00002@example.com",
            "--out",
            "results.csv",
        ])
        .expect_code(1);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 3);
    let failed = with_status(&rows, "failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].user, "nobody@example.com");
    assert_eq!(failed[0].detail, "User does not exist.");
    assert!(failed[0].password.is_empty());
    for row in with_status(&rows, "reset") {
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
}

#[test]
fn a_dry_run_changes_nothing() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "");
    let run = scratch.run(&["reset", "mail", "--all", "--dry-run"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("reset\t"))
            .count(),
        10
    );
    assert!(
        run.stdout.contains("skip\tadmin@example.com"),
        "{}",
        run.stdout
    );
    for user in sim.users() {
        assert!(
            sim.history(&user).is_empty(),
            "{user} was changed by a dry run"
        );
    }
    assert!(
        sim.common()
            .requests()
            .iter()
            .all(|r| !r.uri.contains("post-user")),
        "a dry run sent a reset"
    );
    assert!(!scratch.path("results.csv").exists());
}

#[test]
fn secrets_never_reach_the_output_even_at_trace_level() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig {
            users: 20,
            ..SmarterMailConfig::default()
        }))
        .unwrap();
    let mut scratch = scratch(&sim, "");
    scratch.env("RUST_LOG", "trace");
    let mut output = String::new();
    let run = scratch.run(&["-vv", "reset", "mail", "--all", "--out", "results.csv"]);
    run.expect_code(0);
    output.push_str(&run.stdout);
    output.push_str(&run.stderr);
    let run = scratch.run(&["-vv", "reset", "mail", "--all", "--out", "-"]);
    run.expect_code(0);
    let streamed: Vec<String> = run
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(4).map(str::to_owned))
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(
        streamed.len(),
        20,
        "--out - hands the passwords over on stdout"
    );
    output.push_str(&run.stderr);
    let run = scratch.run(&["-vv", "check"]);
    run.expect_code(0);
    output.push_str(&run.stdout);
    output.push_str(&run.stderr);
    assert!(output.contains("TRACE"), "trace logging is on");

    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 21);
    let mut secrets: Vec<String> = rows
        .iter()
        .map(|r| r.password.clone())
        .filter(|p| !p.is_empty())
        .collect();
    secrets.extend(streamed);
    secrets.push(ADMIN_PASSWORD.to_owned());
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "a secret reached the output"
        );
    }

    // A refused login's message does not echo the password tried.
    let mut wrong = Scratch::new();
    wrong.env("SM_ADMIN_PASSWORD", "Wrong-Password-42");
    wrong.config(&config(&sim, ""));
    let run = wrong.run(&["-vv", "check"]);
    run.expect_code(2);
    assert!(
        run.stdout.contains("authentication refused")
            || run.stderr.contains("authentication refused")
    );
    assert!(!run.stdout.contains("Wrong-Password-42") && !run.stderr.contains("Wrong-Password-42"));
}

#[test]
fn results_files_are_never_overwritten_and_required() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "");
    std::fs::write(scratch.path("results.csv"), "keep me").unwrap();
    let run = scratch.run(&["reset", "mail", "--all", "--out", "results.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(scratch.path("results.csv")).unwrap(),
        "keep me"
    );

    let run = scratch.run(&["reset", "mail", "--all"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("--out FILE is required"),
        "{}",
        run.stderr
    );
    assert!(
        sim.common().requests().is_empty(),
        "nothing may reach the vendor on a usage error"
    );
}

#[test]
fn users_come_from_files_and_known_values_from_the_environment() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let mut scratch = scratch(&sim, "");
    std::fs::write(
        scratch.path("users.csv"),
        "name,user\nOne,user00001@example.com\nTwo,USER00002@example.com\nAgain,user00001@example.com\n",
    )
    .unwrap();
    scratch.env("NEW_PASSWORD", "Known-Value-2024");
    scratch
        .run(&[
            "reset",
            "mail",
            "--users",
            "users.csv",
            "--password-env",
            "NEW_PASSWORD",
            "--out",
            "results.jsonl",
            "--format",
            "jsonl",
        ])
        .expect_code(0);
    let text = std::fs::read_to_string(scratch.path("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "duplicates are dropped");
    for row in &rows {
        assert_eq!(row["status"], "reset");
        assert_eq!(row["password"], "Known-Value-2024");
    }
    assert_eq!(
        sim.password("user00002@example.com").unwrap(),
        "Known-Value-2024"
    );

    // SmarterMail has no SIP passwords.
    let run = scratch.run(&[
        "reset", "mail", "--all", "--kind", "sip", "--out", "sip.csv",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("supports: password"), "{}", run.stderr);
}

#[test]
fn users_and_check_commands() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let scratch = scratch(&sim, "");
    let run = scratch.run(&["users", "mail"]);
    run.expect_code(0);
    assert_eq!(run.stdout.lines().count(), 11);
    assert!(run.stdout.lines().any(|l| l == "user00007@example.com"));
    let run = scratch.run(&["users", "mail", "--format", "json"]);
    run.expect_code(0);
    let first: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert!(first["id"].is_string());
    let run = scratch.run(&["check", "mail"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("mail: ok"), "{}", run.stdout);
}

#[test]
fn a_system_administrator_resets_by_impersonation() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let mut scratch = Scratch::new();
    scratch.env("SM_SYSADMIN_PASSWORD", "Sys-Passw0rd!");
    scratch.config(&format!(
        r#"
[targets.mail]
connector = "smartermail"
url = "{}"
username = "sysadmin"
password = {{ env = "SM_SYSADMIN_PASSWORD" }}
domain = "example.com"
"#,
        sim.url()
    ));
    scratch
        .run(&[
            "reset",
            "mail",
            "--all",
            "--exclude",
            "admin@example.com",
            "--out",
            "results.csv",
        ])
        .expect_code(0);
    let rows = scratch.results("results.csv");
    assert_eq!(with_status(&rows, "reset").len(), 10);
    assert!(sim.history("admin@example.com").is_empty());
}

#[test]
fn the_targets_rate_is_shared_by_all_workers() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig {
            users: 60,
            ..SmarterMailConfig::default()
        }))
        .unwrap();
    let scratch = scratch(&sim, "rate = 40");
    let started = std::time::Instant::now();
    scratch
        .run(&[
            "reset",
            "mail",
            "--all",
            "--concurrency",
            "16",
            "--out",
            "results.csv",
        ])
        .expect_code(0);
    // A login, a listing and 60 resets at 40 requests a second, whatever the
    // concurrency: at least 1.5 s.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(
        with_status(&scratch.results("results.csv"), "reset").len(),
        60
    );
}
