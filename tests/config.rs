//! Bad config is refused with exit 2, a message that names the problem, and no
//! contact with the vendor.

use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_tests::{Run, Scratch, runtime};

fn target(sim: &SmarterMailSim, settings: &str) -> String {
    format!(
        "[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\n{settings}\n",
        sim.url()
    )
}

/// Runs `rekey reset` with `config` and checks exit 2 and that the vendor heard nothing.
fn refused(sim: &SmarterMailSim, scratch: &Scratch, config: &str) -> Run {
    scratch.config(config);
    let run = scratch.run(&["reset", "mail", "--all", "--out", "results.csv", "--yes"]);
    run.expect_code(2);
    assert!(
        sim.common().requests().is_empty(),
        "the vendor was contacted: {}",
        run.stderr
    );
    assert!(!scratch.path("results.csv").exists());
    run
}

#[test]
fn unknown_missing_and_mistyped_settings_are_named() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let mut scratch = Scratch::new();
    scratch.env("PW", "Admin-Passw0rd!");

    let run = refused(
        &sim,
        &scratch,
        &target(&sim, "username = \"admin@example.com\""),
    );
    assert!(
        run.stderr.contains("missing setting `password`"),
        "{}",
        run.stderr
    );

    let run = refused(
        &sim,
        &scratch,
        &target(
            &sim,
            "username = \"a\"\npassword = { env = \"PW\" }\ntimeout = \"ten\"",
        ),
    );
    assert!(
        run.stderr
            .contains("setting `timeout` must be of type integer"),
        "{}",
        run.stderr
    );

    let run = refused(
        &sim,
        &scratch,
        &target(&sim, "usrname = \"a\"\npassword = { env = \"PW\" }"),
    );
    assert!(
        run.stderr.contains("unknown setting `usrname`"),
        "{}",
        run.stderr
    );

    let run = refused(
        &sim,
        &scratch,
        "[targets.mail]\nconnector = \"smartermial\"\n",
    );
    assert!(
        run.stderr.contains("connector `smartermial` not found"),
        "{}",
        run.stderr
    );

    let run = refused(
        &sim,
        &scratch,
        &target(
            &sim,
            "username = \"a\"\npassword = { env = \"NOT_SET_ANYWHERE\" }",
        ),
    );
    assert!(
        run.stderr
            .contains("environment variable NOT_SET_ANYWHERE is not set"),
        "{}",
        run.stderr
    );

    let run = refused(
        &sim,
        &scratch,
        &target(
            &sim,
            "username = \"a\"\npassword = { env = \"PW\" }\n[targets.mail.policy]\nlength = 6\nmin_digit = 7",
        ),
    );
    assert!(run.stderr.contains("exceed the length 6"), "{}", run.stderr);

    scratch.config(&target(
        &sim,
        "username = \"a\"\npassword = { env = \"PW\" }",
    ));
    let run = scratch.run(&["reset", "nosuch", "--all", "--out", "results.csv"]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("no target `nosuch` in rekey.toml: its targets are mail"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_literal_secret_needs_a_private_config() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let scratch = Scratch::new();
    let text = target(
        &sim,
        "username = \"admin@example.com\"\npassword = \"Admin-Passw0rd!\"",
    );
    let path = scratch.config(&text);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let run = scratch.run(&["check", "mail"]);
        run.expect_code(2);
        assert!(
            run.stderr
                .contains("setting `password` is a secret written in the config"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
        assert!(!run.stderr.contains("Admin-Passw0rd!"));
        assert!(sim.common().requests().is_empty());
    }
    // The same config, private, is accepted.
    scratch.config(&text);
    scratch.run(&["check", "mail"]).expect_code(0);
}

#[test]
fn a_missing_users_file_is_named() {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig::default()))
        .unwrap();
    let mut scratch = Scratch::new();
    scratch.env("PW", "Admin-Passw0rd!");
    scratch.config(&target(
        &sim,
        "username = \"admin@example.com\"\npassword = { env = \"PW\" }",
    ));
    let run = scratch.run(&[
        "reset",
        "mail",
        "--users",
        "staff.txt",
        "--out",
        "results.csv",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("users file staff.txt does not exist"),
        "{}",
        run.stderr
    );
    assert!(sim.common().requests().is_empty());
}

#[test]
fn no_config_and_bad_toml_are_usage_errors() {
    let scratch = Scratch::new();
    let run = scratch.run(&["check"]);
    run.expect_code(2);
    assert!(run.stderr.contains("no config file"), "{}", run.stderr);

    scratch.config("[targets.mail\nconnector = 'smartermail'\n");
    let run = scratch.run(&["check"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("is not valid TOML at line 1"),
        "{}",
        run.stderr
    );

    let run = scratch.run(&["reset", "mail"]);
    run.expect_code(2);
}
