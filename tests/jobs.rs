//! The job core through the real binary: one process per job, erasure that always
//! finishes, results on every way out, discard, the state directory, deadlines on
//! connector calls, and the contract's rules for a job's start and end.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rekey_sim::Behaviour;
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_tests::{ResultRecord, Scratch, connector_file_name, runtime, with_status};

const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

fn sim(users: usize, latency_ms: u64) -> (tokio::runtime::Runtime, SmarterMailSim) {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig {
            users,
            behaviour: Behaviour {
                latency: Duration::from_millis(latency_ms),
                ..Behaviour::default()
            },
            ..SmarterMailConfig::default()
        }))
        .unwrap();
    (rt, sim)
}

fn scratch(sim: &SmarterMailSim) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("SM_ADMIN_PASSWORD", ADMIN_PASSWORD);
    scratch.config(&format!(
        "[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"SM_ADMIN_PASSWORD\" }}\n",
        sim.url(),
        sim.domain_admin()
    ));
    scratch
}

const RESET_ALL: [&str; 8] = [
    "reset",
    "mail",
    "--all",
    "--out",
    "results.csv",
    "--yes",
    "--concurrency",
    "4",
];

/// Users the simulator has given a password to.
fn changed(sim: &SmarterMailSim) -> Vec<String> {
    sim.users()
        .into_iter()
        .filter(|u| !sim.history(u).is_empty())
        .collect()
}

fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a reset of every user and kills it with SIGKILL once `after` users are
/// reset; returns the job's id.
fn killed_job(scratch: &Scratch, sim: &SmarterMailSim, after: usize) -> String {
    let running = scratch.spawn(&RESET_ALL);
    let job = running.job_id();
    wait_for(|| changed(sim).len() >= after);
    running.signal("KILL");
    assert_eq!(running.wait().0, -1, "the reset was killed");
    job
}

/// Every user is reset with the password the simulator holds, and no user was
/// ever given two different passwords.
fn assert_all_reset_once(sim: &SmarterMailSim, rows: &[ResultRecord], users: usize) {
    let reset = with_status(rows, "reset");
    assert_eq!(reset.len(), users, "every user is reset");
    for row in reset {
        assert_eq!(
            Some(row.password.clone()),
            sim.password(&row.user),
            "{}",
            row.user
        );
    }
    for user in sim.users() {
        let history = sim.history(&user);
        let distinct: HashSet<_> = history.iter().collect();
        assert!(
            distinct.len() <= 1,
            "{user} was given {} passwords",
            distinct.len()
        );
    }
}

/// Scans every byte of every file under `dir` for `passwords`.
fn assert_no_password_under(dir: &Path, passwords: &[String]) {
    assert!(!passwords.is_empty());
    let mut files = vec![dir.to_owned()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for password in passwords {
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "a new password remains in {}",
                path.display()
            );
        }
    }
}

fn passwords(rows: &[ResultRecord]) -> Vec<String> {
    rows.iter()
        .map(|r| r.password.clone())
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn a_job_runs_in_one_process_at_a_time() {
    let (_rt, sim) = sim(200, 30);
    let scratch = scratch(&sim);
    let job = killed_job(&scratch, &sim, 20);

    let first = scratch.spawn(&["resume", &job]);
    assert_eq!(first.job_id(), job);
    let second = scratch.run(&["resume", &job]);
    second.expect_code(2);
    assert!(
        second
            .stderr
            .contains(&format!("job {job} is running (pid {})", first.child.id())),
        "{}",
        second.stderr
    );
    let discard = scratch.run(&["discard", &job, "--yes"]);
    discard.expect_code(2);
    assert!(discard.stderr.contains("is running"), "{}", discard.stderr);
    let jobs = scratch.run(&["jobs"]);
    assert!(jobs.stdout.contains("running (pid"), "{}", jobs.stdout);

    let (code, stderr) = first.wait();
    assert_eq!(code, 0, "{stderr}");
    assert_all_reset_once(&sim, &scratch.results("results.csv"), 200);
}

#[test]
fn a_crash_before_the_journal_is_scrubbed_is_finished_by_the_next_command() {
    let (_rt, sim) = sim(60, 0);
    let mut scratch = scratch(&sim);
    scratch.env("REKEY_FAULT", "after-erase-commit");
    let run = scratch.run(&RESET_ALL);
    assert_ne!(run.code, 0, "the fault point crashed rekey: {}", run.stderr);
    assert!(run.stderr.contains("fault injected"), "{}", run.stderr);
    let rows = scratch.results("results.csv");
    assert_eq!(with_status(&rows, "reset").len(), 60);

    scratch.remove_env("REKEY_FAULT");
    // Any command that opens the state directory finishes the erasure.
    let jobs = scratch.run(&["jobs"]);
    jobs.expect_code(0);
    assert!(jobs.stdout.contains("finished"), "{}", jobs.stdout);
    assert!(jobs.stdout.contains("erased"), "{}", jobs.stdout);
    assert_no_password_under(&scratch.path("state"), &passwords(&rows));
}

#[test]
fn a_results_file_that_cannot_be_written_stops_the_sending() {
    let (_rt, sim) = sim(200, 10);
    let mut scratch = scratch(&sim);
    scratch.env("REKEY_FAULT", "results-write-fails-after:20");
    let run = scratch.run(&RESET_ALL);
    run.expect_code(3);
    assert!(
        run.stderr.contains("cannot write the results file"),
        "{}",
        run.stderr
    );
    let job = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .unwrap()
        .to_owned();
    // The rows that could be written, the one that failed, and requests already in
    // flight: nothing more.
    let sent = changed(&sim).len();
    assert!(sent <= 20 + 1 + 4, "{sent} users were sent a password");

    scratch.remove_env("REKEY_FAULT");
    scratch.run(&["resume", &job]).expect_code(0);
    assert_all_reset_once(&sim, &scratch.results("results.csv"), 200);
}

#[test]
fn discard_hands_over_every_password_that_may_be_in_effect_and_erases_them() {
    let (_rt, sim) = sim(120, 40);
    let scratch = scratch(&sim);
    let job = killed_job(&scratch, &sim, 30);

    let refused = scratch.run(&["discard", &job]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);

    let run = scratch.run(&["discard", &job, "--yes"]);
    run.expect_code(0);
    assert!(run.stderr.contains("discarded"), "{}", run.stderr);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 121, "one row per user and the admin");
    for user in changed(&sim) {
        let row = rows.iter().find(|r| r.user == user).unwrap();
        assert_eq!(
            Some(row.password.clone()),
            sim.password(&user),
            "{user}'s password in effect is in the results ({})",
            row.status
        );
    }
    assert!(
        rows.iter()
            .all(|r| r.status != "skipped" || r.password.is_empty())
    );
    assert_no_password_under(&scratch.path("state"), &passwords(&rows));
    scratch.run(&["resume", &job]).expect_code(2);
    scratch.run(&["discard", &job, "--yes"]).expect_code(2);
    let jobs = scratch.run(&["jobs"]);
    assert!(jobs.stdout.contains("discarded"), "{}", jobs.stdout);
}

#[test]
fn a_user_pending_in_a_stopped_job_is_not_put_in_a_new_one() {
    let (_rt, sim) = sim(100, 40);
    let scratch = scratch(&sim);
    let job = killed_job(&scratch, &sim, 10);
    let untouched = sim
        .users()
        .into_iter()
        .rfind(|u| sim.history(u).is_empty() && *u != sim.domain_admin())
        .unwrap();
    let run = scratch.run(&["reset", "mail", "--user", &untouched, "--out", "again.csv"]);
    run.expect_code(2);
    assert!(run.stderr.contains(&format!("job {job}")), "{}", run.stderr);
    assert!(run.stderr.contains("rekey resume") && run.stderr.contains("rekey discard"));
    assert!(sim.history(&untouched).is_empty(), "nothing was sent");
    assert!(!scratch.path("again.csv").exists());
    let jobs = scratch.run(&["jobs"]);
    assert_eq!(
        jobs.stdout.lines().count(),
        2,
        "no new job: {}",
        jobs.stdout
    );
}

#[test]
fn a_results_file_replaced_between_stop_and_resume_is_never_overwritten() {
    let (_rt, sim) = sim(100, 40);
    let scratch = scratch(&sim);
    let job = killed_job(&scratch, &sim, 10);
    let before: Vec<Vec<String>> = sim.users().iter().map(|u| sim.history(u)).collect();
    std::fs::remove_file(scratch.path("results.csv")).unwrap();
    std::fs::write(scratch.path("results.csv"), "someone else's file\n").unwrap();
    for command in [&["resume", &job][..], &["discard", &job, "--yes"][..]] {
        let run = scratch.run(command);
        run.expect_code(2);
        assert!(
            run.stderr.contains("never replaces another file"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(scratch.path("results.csv")).unwrap(),
        "someone else's file\n"
    );
    let after: Vec<Vec<String>> = sim.users().iter().map(|u| sim.history(u)).collect();
    assert_eq!(before, after, "nothing was sent");
    // Moved away, the job resumes and writes its results anew.
    std::fs::rename(scratch.path("results.csv"), scratch.path("theirs.csv")).unwrap();
    scratch.run(&["resume", &job]).expect_code(0);
    assert_all_reset_once(&sim, &scratch.results("results.csv"), 100);
}

#[test]
fn results_to_a_closed_pipe_stop_the_job_and_resume_writes_them_all() {
    let (_rt, sim) = sim(300, 10);
    let scratch = scratch(&sim);
    let mut child = scratch
        .command(&[
            "reset",
            "mail",
            "--all",
            "--out",
            "-",
            "--yes",
            "--concurrency",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -c 10`: read ten bytes, then go away.
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 10];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let sent_when_closed = changed(&sim).len();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let job = stderr
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .unwrap()
        .to_owned();
    let sent = changed(&sim).len();
    assert!(
        sent <= sent_when_closed + 2 * 4 + 2,
        "{sent} users were sent, {sent_when_closed} when the pipe closed"
    );
    assert!(sent < 300);

    let resumed = scratch.run(&["resume", &job]);
    resumed.expect_code(0);
    let results = scratch.path("resumed.csv");
    std::fs::write(&results, &resumed.stdout).unwrap();
    assert_all_reset_once(&sim, &rekey_tests::read_results(&results), 300);
}

#[test]
fn a_known_value_a_spreadsheet_would_evaluate_is_refused() {
    let (_rt, sim) = sim(3, 0);
    let mut scratch = scratch(&sim);
    scratch.env("NEW_PASSWORD", "=Abc12345678");
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--password-env",
        "NEW_PASSWORD",
        "--out",
        "r.csv",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("spreadsheet"), "{}", run.stderr);
    assert!(!run.stderr.contains("Abc12345678"));
    assert!(changed(&sim).is_empty());
}

#[cfg(unix)]
#[test]
fn the_state_directory_is_private_and_a_shared_one_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let (_rt, sim) = sim(3, 0);

    // Created private whatever the command.
    for command in [
        &["check"][..],
        &["users", "mail"][..],
        &["reset", "mail", "--all", "--dry-run"][..],
    ] {
        let scratch = scratch(&sim);
        scratch.run(command).expect_code(0);
        assert_eq!(mode(&scratch.path("state/rekey")), 0o700, "{command:?}");
    }

    // An existing directory others can write to is refused and left as it was.
    let scratch = scratch(&sim);
    let shared = scratch.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    scratch.config(&format!(
        "[rekey]\nstate_dir = \"shared\"\n[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"SM_ADMIN_PASSWORD\" }}\n",
        sim.url(),
        sim.domain_admin()
    ));
    for command in [&["check"][..], &["jobs"][..], &RESET_ALL[..]] {
        let run = scratch.run(command);
        run.expect_code(2);
        assert!(
            run.stderr.contains(&shared.display().to_string()),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("written by group or others"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(mode(&shared), 0o777);
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    assert!(changed(&sim).is_empty());

    // An existing private-enough directory is used, and not chmodded.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    scratch.run(&RESET_ALL).expect_code(0);
    assert_eq!(mode(&shared), 0o755);
}

/// A scratch directory with the `faulty` fixture as connector of target `t`.
fn faulty(settings: &str) -> Scratch {
    let mut scratch = Scratch::new();
    let dir = scratch.plugin_copy("fixture_faulty", &connector_file_name("faulty"));
    scratch.env("REKEY_PLUGIN_PATH", dir.to_str().unwrap());
    scratch.config(&format!(
        "[targets.t]\nconnector = \"faulty\"\n{settings}\n"
    ));
    scratch
}

#[test]
fn a_wedged_connector_cannot_hang_rekey() {
    let scratch = faulty("hang_check = true\ntimeout = 1");
    let started = Instant::now();
    let run = scratch.run(&["check", "t"]);
    run.expect_code(2);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("target `t`"), "{}", run.stderr);
    assert!(run.stderr.contains("within 8 s"), "{}", run.stderr);

    // And Ctrl-C is honoured while it waits.
    let scratch = faulty("hang_check = true");
    let mut running = scratch.spawn(&["check", "t"]);
    std::thread::sleep(Duration::from_millis(500));
    running.signal("INT");
    let started = Instant::now();
    let status = running.child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let scratch = faulty("users = 50000");
    let mut child = scratch
        .command(&["users", "t"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "user1\n");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
