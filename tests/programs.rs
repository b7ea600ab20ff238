#![cfg(unix)]
//! Connector programs through the real binary: the Python example connector
//! (`connectors/example-python`) against the Acme Directory simulator, and small
//! fixture programs (`tests/fixtures/programs`) that misbehave on purpose.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rekey_sim::Behaviour;
use rekey_sim::inhouse::{DEFAULT_ACCOUNT, DEFAULT_KEY, InhouseConfig, InhouseSim};
use rekey_tests::{ResultRecord, Run, Scratch, connector_file_name, library, runtime, with_status};

/// The example connector program, as shipped.
fn example_program() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../connectors/example-python/rekey-connector-example-python")
}

/// A fixture program.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/programs")
        .join(name)
}

/// Copies `program` into the scratch directory's `programs/` as `as_file`, with
/// `mode`, and returns the copy's path.
fn install(scratch: &Scratch, program: &Path, as_file: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch.path("programs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(as_file);
    std::fs::copy(program, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn start(users: usize, latency_ms: u64) -> (tokio::runtime::Runtime, InhouseSim) {
    let rt = runtime();
    let sim = rt
        .block_on(InhouseSim::start(InhouseConfig {
            users,
            disabled_every: 0,
            behaviour: Behaviour {
                latency: Duration::from_millis(latency_ms),
                ..Behaviour::default()
            },
            ..InhouseConfig::default()
        }))
        .unwrap();
    (rt, sim)
}

/// A scratch directory with the example program on its plugin path and a target
/// `acme` of it, with `extra` settings.
fn acme(sim: &InhouseSim, extra: &str) -> Scratch {
    let mut scratch = Scratch::new();
    install(
        &scratch,
        &example_program(),
        "rekey-connector-example-python",
        0o755,
    );
    let plugins = scratch.path("programs");
    scratch.env("REKEY_PLUGIN_PATH", plugins.to_str().unwrap());
    scratch.env("ACME_API_KEY", DEFAULT_KEY);
    scratch.config(&format!(
        "[targets.acme]\nconnector = \"example-python\"\nurl = \"{}\"\napi_key = {{ env = \"ACME_API_KEY\" }}\n{extra}\n",
        sim.url()
    ));
    scratch
}

/// A scratch directory with `program` copied in (with `mode`) and a target `t`
/// running it with `args`; returns the copy's path too.
fn running(program: &Path, mode: u32, args: &[&str], extra: &str) -> (Scratch, PathBuf) {
    let mut scratch = Scratch::new();
    scratch.env("FAKE_KEY", "fake-key-0123456789");
    let program = install(&scratch, program, "acme-connector", mode);
    let words: Vec<String> = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| (*a).to_owned()))
        .map(|w| format!("\"{w}\""))
        .collect();
    scratch.config(&format!(
        "[targets.t]\nconnector = \"fake\"\nconnector_command = [{}]\napi_key = {{ env = \"FAKE_KEY\" }}\n{extra}\n",
        words.join(", ")
    ));
    (scratch, program)
}

/// The fake fixture program as target `t`'s connector, with arguments.
fn fake(args: &[&str], extra: &str) -> (Scratch, PathBuf) {
    running(&fixture("fake-connector.py"), 0o755, args, extra)
}

fn ordinary_users(sim: &InhouseSim) -> Vec<String> {
    sim.users()
        .into_iter()
        .filter(|u| u != DEFAULT_ACCOUNT)
        .collect()
}

fn changed(sim: &InhouseSim) -> usize {
    sim.users()
        .iter()
        .filter(|u| !sim.history(u).is_empty())
        .count()
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every ordinary user is reset, with the password the simulator holds, and none
/// was ever given two different passwords.
fn assert_all_reset_once(sim: &InhouseSim, rows: &[ResultRecord]) {
    let users = ordinary_users(sim);
    let reset = with_status(rows, "reset");
    assert_eq!(reset.len(), users.len(), "every user is reset: {rows:?}");
    for row in reset {
        assert_eq!(
            Some(&row.password),
            sim.password(&row.user).as_ref(),
            "{}",
            row.user
        );
    }
    for user in users {
        let distinct: HashSet<String> = sim.history(&user).into_iter().map(|c| c.value).collect();
        assert_eq!(distinct.len(), 1, "{user} was given {distinct:?}");
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces and parentheses.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

fn kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn users_are_reset_through_the_python_example_with_requests_in_parallel() {
    let (_rt, sim) = start(120, 40);
    let scratch = acme(&sim, "batch_size = 2");
    let run = scratch.run(&[
        "reset",
        "acme",
        "--all",
        "--concurrency",
        "8",
        "--out",
        "results.csv",
        "--yes",
    ]);
    run.expect_code(0);
    let rows = scratch.results("results.csv");
    assert_all_reset_once(&sim, &rows);
    let passwords: HashSet<&str> = rows.iter().map(|r| r.password.as_str()).collect();
    assert_eq!(
        passwords.len(),
        121,
        "distinct, and one empty for the service account"
    );
    assert!(
        sim.reset_batches().iter().all(|&n| n <= 2),
        "{:?}",
        sim.reset_batches()
    );
    // Eight calls at once really overlap in the program: its threads keep that many
    // requests in flight at the directory.
    let peak = sim.common().peak_in_flight();
    assert!(peak >= 6, "peak in flight at the directory: {peak}");
}

#[test]
fn connectors_lists_programs_beside_libraries() {
    let (_rt, sim) = start(3, 0);
    let scratch = acme(&sim, "");
    let run = scratch.run(&["connectors"]);
    run.expect_code(0);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{}", run.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let program = line("example-python");
    assert_eq!(program[1..4], ["0.1.0", "program", "1"]);
    assert_eq!(program[4], "password,passcode");
    assert!(
        program
            .last()
            .unwrap()
            .ends_with("rekey-connector-example-python")
    );
    assert_eq!(line("example")[2], "library");

    let run = scratch.run(&["connectors", "show", "example-python"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("type:         program (program protocol 1)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("found:        plugin path"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("api_key ") && l.contains(" yes ")),
        "{}",
        run.stdout
    );
}

#[test]
fn the_python_example_conforms() {
    let (_rt, sim) = start(30, 0);
    let mut scratch = Scratch::new();
    let program = install(&scratch, &example_program(), "acme.py", 0o755);
    scratch.env("ACME_API_KEY", DEFAULT_KEY);
    scratch.config(&format!(
        "[targets.acme]\nconnector = \"example-python\"\nconnector_command = [\"{}\"]\nurl = \"{}\"\napi_key = {{ env = \"ACME_API_KEY\" }}\n",
        program.display(),
        sim.url()
    ));
    let run = scratch.run(&["conformance", "acme"]);
    run.expect_code(0);
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
            run.stdout.contains(&format!("PASS {check}: ")),
            "{check}:\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    assert_eq!(changed(&sim), 0, "the kit changes nothing");

    let user = ordinary_users(&sim).remove(0);
    let run = scratch.run(&[
        "conformance",
        "acme",
        "--test-user",
        &user,
        "--out",
        "t.csv",
    ]);
    run.expect_code(0);
    let rows = scratch.results("t.csv");
    assert_eq!(Some(rows[0].password.clone()), sim.password(&user));
}

#[test]
fn rekey_killed_mid_run_is_resumed_and_nobody_gets_two_passwords() {
    let (_rt, sim) = start(300, 15);
    let scratch = acme(&sim, "batch_size = 5");
    let running = scratch.spawn(&[
        "reset",
        "acme",
        "--all",
        "--concurrency",
        "4",
        "--out",
        "results.csv",
        "--yes",
    ]);
    let job = running.job_id();
    wait_for("resets", || changed(&sim) >= 40);
    let program = children(running.child.id());
    running.signal("KILL");
    assert_eq!(running.wait().0, -1, "rekey was killed");
    assert!(changed(&sim) < 300, "killed before the end");
    // The program sees the end of its input and exits on its own.
    wait_for("the orphaned program to exit", || {
        program
            .iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    });

    scratch.run(&["resume", &job]).expect_code(0);
    assert_all_reset_once(&sim, &scratch.results("results.csv"));
}

#[test]
fn the_program_killed_mid_run_stops_the_job_and_resume_finishes_it() {
    let (_rt, sim) = start(300, 15);
    let scratch = acme(&sim, "batch_size = 5");
    let running = scratch.spawn(&[
        "reset",
        "acme",
        "--all",
        "--concurrency",
        "4",
        "--out",
        "results.csv",
        "--yes",
    ]);
    let job = running.job_id();
    wait_for("resets", || changed(&sim) >= 40);
    let program = children(running.child.id());
    assert_eq!(program.len(), 1, "one program for the one target");
    kill(program[0]);
    let (code, stderr) = running.wait();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("rekey-connector-example-python"),
        "{stderr}"
    );
    assert!(
        stderr.contains("was killed by signal 9 (SIGKILL)"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("rekey resume {job}")), "{stderr}");
    let rows = scratch.results("results.csv");
    for row in with_status(&rows, "reset") {
        assert_eq!(Some(&row.password), sim.password(&row.user).as_ref());
    }
    assert!(
        with_status(&rows, "failed").is_empty(),
        "no failed rows: {rows:?}"
    );

    scratch.run(&["resume", &job]).expect_code(0);
    assert_all_reset_once(&sim, &scratch.results("results.csv"));
}

#[test]
fn verbose_logs_hold_no_password() {
    let (_rt, sim) = start(20, 0);
    let scratch = acme(&sim, "");
    let run = scratch.run(&["-vv", "reset", "acme", "--all", "--out", "r.csv", "--yes"]);
    run.expect_code(0);
    let rows = scratch.results("r.csv");
    assert_all_reset_once(&sim, &rows);
    assert!(
        run.stderr.contains("DEBUG"),
        "verbose output: {}",
        run.stderr
    );
    let output = format!("{}{}", run.stdout, run.stderr);
    for row in with_status(&rows, "reset") {
        assert!(
            !output.contains(&row.password),
            "{}'s password was logged",
            row.user
        );
    }
    assert!(!output.contains(DEFAULT_KEY), "the API key was logged");
}

#[test]
fn the_program_gets_a_minimal_environment_and_its_settings_only_by_pipe() {
    let (mut scratch, program) = fake(&["ok"], "connector_env = [\"FAKE_CA\"]");
    scratch
        .env("FAKE_CA", "/etc/ca.pem")
        .env("OTHER_TARGET_PASSWORD", "not-for-this-program")
        .env("LANG", "C.UTF-8");
    let run = scratch.run(&["check", "t"]);
    run.expect_code(0);
    // t: ok (env=NAME,... args=ARGS key=LENGTH)
    let detail = run.stdout.trim();
    let env: Vec<&str> = detail
        .split_once("env=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{detail}"))
        .split(',')
        .collect();
    for passed in ["FAKE_CA", "HOME", "LANG", "PATH"] {
        assert!(env.contains(&passed), "{passed} missing: {detail}");
    }
    // Nothing else of rekey's environment (an interpreter's launcher, such as a
    // pyenv shim, may add variables of its own).
    for name in &env {
        assert!(
            !name.starts_with("FAKE_KEY")
                && !name.starts_with("OTHER_")
                && !name.starts_with("CARGO")
                && !name.starts_with("XDG_"),
            "{name} was passed on: {detail}"
        );
    }
    // The secret setting arrived over the pipe, and is not among the arguments.
    assert!(detail.ends_with("args=ok key=19)"), "{detail}");
    // Its standard error is logged, labelled with the target.
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("fake: started"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        line.contains("rekey::program") && line.contains("target=\"t\""),
        "{line}"
    );
    assert!(line.contains(&program.display().to_string()), "{line}");
}

/// Asserts that `run` failed with `code`, naming the program and what it did.
fn assert_refused(run: &Run, code: i32, program: &Path, what: &str) {
    run.expect_code(code);
    assert!(
        run.stderr.contains(&program.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(what), "{}", run.stderr);
}

#[test]
fn programs_that_cannot_start_are_refused_by_name_with_exit_2() {
    let (scratch, program) = fake(&["garbage-at-start"], "");
    let run = scratch.run(&["reset", "t", "--all", "--out", "r.csv", "--yes"]);
    assert_refused(
        &run,
        2,
        &program,
        "wrote something that is not a protocol message",
    );
    assert!(!scratch.path("r.csv").exists());
    assert!(scratch.run(&["jobs"]).stdout.is_empty(), "no job is kept");

    let (scratch, program) = fake(&["protocol", "2"], "");
    assert_refused(
        &scratch.run(&["check", "t"]),
        2,
        &program,
        "speaks program protocol 2, and this rekey",
    );

    let (scratch, program) = running(&fixture("exits-at-once.sh"), 0o755, &[], "");
    let run = scratch.run(&["check", "t"]);
    assert_refused(
        &run,
        2,
        &program,
        "exited with status 3 before it described itself",
    );
    assert!(
        run.stderr.contains("cannot read /etc/acme/ca.pem"),
        "its standard error is logged: {}",
        run.stderr
    );

    let (scratch, program) = running(&example_program(), 0o644, &[], "");
    assert_refused(
        &scratch.run(&["check", "t"]),
        2,
        &program,
        "permission denied",
    );
}

#[test]
fn garbage_mid_run_stops_the_job_with_exit_3() {
    let (scratch, program) = fake(&["garbage-after", "5"], "");
    let run = scratch.run(&[
        "reset",
        "t",
        "--all",
        "--concurrency",
        "1",
        "--out",
        "r.csv",
        "--yes",
    ]);
    assert_refused(
        &run,
        3,
        &program,
        "wrote something that is not a protocol message",
    );
    let rows = scratch.results("r.csv");
    assert_eq!(with_status(&rows, "reset").len(), 5, "{rows:?}");
    assert!(with_status(&rows, "failed").is_empty(), "{rows:?}");
}

#[test]
fn a_silent_program_is_stopped_and_the_job_stops_with_exit_3() {
    // timeout = 1: each call has 3 × 1 + 5 s, then 5 s to answer its cancellation.
    let (scratch, program) = fake(&["silent-after", "3"], "timeout = 1");
    let started = Instant::now();
    let run = scratch.run(&[
        "reset",
        "t",
        "--all",
        "--concurrency",
        "1",
        "--out",
        "r.csv",
        "--yes",
    ]);
    assert_refused(&run, 3, &program, "did not answer a call within 8 s");
    assert!(started.elapsed() < Duration::from_secs(40));
    let rows = scratch.results("r.csv");
    assert_eq!(with_status(&rows, "reset").len(), 3, "{rows:?}");
}

#[test]
fn a_library_and_a_program_of_one_name_are_refused_naming_both() {
    let mut scratch = Scratch::new();
    let dir = scratch.plugin_copy("fixture_faulty", &connector_file_name("faulty"));
    install(&scratch, &fixture("fake-connector.py"), "x", 0o755);
    std::fs::rename(
        scratch.path("programs/x"),
        dir.join("rekey-connector-faulty"),
    )
    .unwrap();
    scratch.env("REKEY_PLUGIN_PATH", dir.to_str().unwrap());
    scratch.config("[targets.t]\nconnector = \"faulty\"\n");
    for args in [&["check", "t"][..], &["connectors"][..]] {
        let run = scratch.run(args);
        run.expect_code(2);
        for file in [
            connector_file_name("faulty"),
            "rekey-connector-faulty".into(),
        ] {
            assert!(run.stderr.contains(&file), "{args:?}: {}", run.stderr);
        }
    }
}

#[test]
fn connectors_named_by_the_config_are_listed_and_shown() {
    let mut scratch = Scratch::new();
    let program = install(&scratch, &fixture("fake-connector.py"), "fake", 0o755);
    scratch.env("FAKE_KEY", "k");
    scratch.config(&format!(
        "[targets.lib]\nconnector = \"faulty\"\nconnector_file = \"{}\"\n\n[targets.prog]\nconnector = \"fake\"\nconnector_command = [\"{}\", \"ok\"]\napi_key = {{ env = \"FAKE_KEY\" }}\n",
        library("fixture_faulty").display(),
        program.display()
    ));
    let run = scratch.run(&["connectors", "show", "faulty"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("found:        target lib (connector_file)"),
        "{}",
        run.stdout
    );
    let run = scratch.run(&["connectors", "show", "fake"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("found:        target prog (connector_command)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("file:         {} ok", program.display())),
        "{}",
        run.stdout
    );
    let run = scratch.run(&["connectors"]);
    run.expect_code(0);
    let row = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{}", run.stdout))
            .to_owned()
    };
    assert!(
        row("faulty").contains("target lib (connector_file)"),
        "{}",
        run.stdout
    );
    assert!(
        row("fake").contains("target prog (connector_command)"),
        "{}",
        run.stdout
    );
}
