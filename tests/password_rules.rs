//! A connector's password rules through the real binary (the example connector
//! declares Acme's: 12 to 64 printable ASCII characters with a lower-case and an
//! upper-case letter and a digit): a known value that breaks them is refused before
//! anything is sent, without quoting it, and a generator policy that could break
//! them is refused when the target is opened.

use rekey_sim::inhouse::{DEFAULT_KEY, InhouseConfig, InhouseSim};
use rekey_tests::{Scratch, runtime};

fn scratch(sim: &InhouseSim, policy: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("ACME_API_KEY", DEFAULT_KEY);
    scratch.config(&format!(
        "[targets.acme]\nconnector = \"example\"\nurl = \"{}\"\napi_key = {{ env = \"ACME_API_KEY\" }}\n{policy}",
        sim.url()
    ));
    scratch
}

#[test]
fn a_known_value_shorter_than_the_minimum_exits_2_before_any_request() {
    let rt = runtime();
    let sim = rt
        .block_on(InhouseSim::start(InhouseConfig::default()))
        .unwrap();
    let mut scratch = scratch(&sim, "");
    // Nine characters, every class Acme requires: only the length is wrong.
    let value = "Zq9~Xw8|V";
    scratch.env("NEW_PASSWORD", value);
    let run = scratch.run(&[
        "reset",
        "acme",
        "--user",
        "u00001",
        "--password-env",
        "NEW_PASSWORD",
        "--out",
        "new.csv",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("it is shorter than the 12 characters the vendor requires"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("target `acme`"), "{}", run.stderr);
    for shown in [&run.stdout, &run.stderr] {
        for part in ["Zq9", "Xw8", "~", "|"] {
            assert!(!shown.contains(part), "the value leaked: {shown}");
        }
    }
    assert!(
        sim.common().requests().is_empty(),
        "nothing may be sent: {:?}",
        sim.common().requests()
    );
    assert!(!scratch.path("new.csv").exists());
    assert!(scratch.run(&["jobs"]).stdout.is_empty(), "no job is kept");

    // A value of the right length without a digit is refused for that, the same way.
    scratch.env("NEW_PASSWORD", "Abcdefghijklmn");
    let run = scratch.run(&[
        "reset",
        "acme",
        "--user",
        "u00001",
        "--password-env",
        "NEW_PASSWORD",
        "--out",
        "new.csv",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("it has no digit"), "{}", run.stderr);
    assert!(!run.stderr.contains("Abcdefghijklmn"), "{}", run.stderr);
    assert!(sim.common().requests().is_empty());
}

#[test]
fn a_policy_that_could_break_the_rules_is_refused_when_the_target_is_opened() {
    let rt = runtime();
    let sim = rt
        .block_on(InhouseSim::start(InhouseConfig::default()))
        .unwrap();
    for (policy, why) in [
        (
            "length = 10",
            "length 10 is shorter than the vendor's minimum of 12: set length to 12 or more",
        ),
        (
            "length = 16\nmin_digit = 0",
            "the vendor requires a digit in every password, and min_digit is 0: set min_digit = 1 or more",
        ),
    ] {
        let scratch = scratch(&sim, &format!("\n[targets.acme.policy]\n{policy}\n"));
        let run = scratch.run(&["check", "acme"]);
        run.expect_code(2);
        assert!(run.stderr.contains(why), "{}", run.stderr);
        assert!(run.stderr.contains("target `acme`"), "{}", run.stderr);
    }
    assert!(sim.common().requests().is_empty());
}
