//! Crash-safe jobs: the journal, `resume`, retries, interruption, and erasure of
//! passwords, with the real binary and plugin against the SmarterMail simulator.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_sim::{Behaviour, Faults};
use rekey_tests::{ResultRecord, Scratch, runtime, with_status};

fn sim(users: usize, latency_ms: u64, faults: Faults) -> (tokio::runtime::Runtime, SmarterMailSim) {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig {
            users,
            behaviour: Behaviour {
                latency: Duration::from_millis(latency_ms),
                faults,
                seed: 7,
                ..Behaviour::default()
            },
            ..SmarterMailConfig::default()
        }))
        .unwrap();
    (rt, sim)
}

fn scratch(sim: &SmarterMailSim, extra: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("SM_ADMIN_PASSWORD", "Admin-Passw0rd!");
    scratch.config(&format!(
        "[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"SM_ADMIN_PASSWORD\" }}\n{extra}\n",
        sim.url(),
        sim.domain_admin()
    ));
    scratch
}

/// Every selected user is reset with the password the simulator holds, and no user
/// was ever given two different passwords.
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
        assert!(
            history.windows(2).all(|w| w[0] == w[1]),
            "{user} was given {} different passwords",
            history
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
        );
    }
}

#[test]
fn survives_being_killed_at_twenty_random_moments() {
    // 500 users at 4 × 60 ms take about 7.5 s of work: twenty kills within the
    // first half-second of each run cannot finish it.
    let (_rt, sim) = sim(500, 60, Faults::default());
    let scratch = scratch(&sim, "");
    let mut dice = StdRng::seed_from_u64(2026);
    let mut kills = 0;
    let mut job: Option<String> = None;
    let mut finished = false;
    while kills < 20 {
        let running = match &job {
            None => scratch.spawn(&[
                "reset",
                "mail",
                "--all",
                "--out",
                "results.csv",
                "--yes",
                "--concurrency",
                "4",
            ]),
            Some(id) => scratch.spawn(&["resume", id.as_str()]),
        };
        let id = running.job_id();
        job.get_or_insert(id);
        std::thread::sleep(Duration::from_millis(dice.random_range(0..500)));
        running.signal("KILL");
        let (code, stderr) = running.wait();
        if code != -1 {
            // It finished before the kill came.
            assert_eq!(code, 0, "{stderr}");
            finished = true;
            break;
        }
        kills += 1;
    }
    let job = job.unwrap();
    assert!(
        !finished && kills == 20,
        "the job finished after {kills} kills: make it longer"
    );
    scratch.run(&["resume", &job]).expect_code(0);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 501, "one row per user (the admin is skipped)");
    assert_all_reset_once(&sim, &rows, 500);
    // The job is finished: resuming it again is refused, and it is listed as such.
    scratch.run(&["resume", &job]).expect_code(2);
    let jobs = scratch.run(&["jobs"]);
    jobs.expect_code(0);
    assert!(
        jobs.stdout
            .lines()
            .any(|l| l.starts_with(&job) && l.contains("finished")),
        "{}",
        jobs.stdout
    );
    assert_no_password_in(&scratch.path("state"), &rows);
}

#[test]
fn passing_faults_are_retried_without_giving_anyone_two_passwords() {
    let faults = Faults {
        rate: 0.10,
        statuses: vec![429, 503],
        retry_after_secs: None,
        // Half the faults come after the server applied the change.
        after_apply: 0.5,
    };
    let (_rt, sim) = sim(300, 0, faults);
    let scratch = scratch(&sim, "");
    scratch
        .run(&["reset", "mail", "--all", "--out", "results.csv", "--yes"])
        .expect_code(0);
    assert!(sim.common().faults_injected() > 10, "faults were injected");
    let rows = scratch.results("results.csv");
    assert_all_reset_once(&sim, &rows, 300);
    assert!(
        sim.users().iter().any(|u| sim.history(u).len() > 1),
        "some user was retried after an applied fault"
    );
}

#[test]
fn ctrl_c_stops_gracefully_and_resume_finishes() {
    let (_rt, sim) = sim(300, 40, Faults::default());
    let scratch = scratch(&sim, "");
    let running = scratch.spawn(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "results.csv",
        "--yes",
        "--concurrency",
        "4",
    ]);
    let job = running.job_id();
    wait_for(|| {
        sim.users()
            .iter()
            .filter(|u| !sim.history(u).is_empty())
            .count()
            >= 40
    });
    running.signal("INT");
    let started = Instant::now();
    let (code, stderr) = running.wait();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the interrupted job took too long to stop"
    );
    assert!(stderr.contains(&format!("rekey resume {job}")), "{stderr}");

    // What is known is handed over; the rest is marked for resume.
    let rows = scratch.results("results.csv");
    let reset = with_status(&rows, "reset");
    assert!(
        !reset.is_empty() && reset.len() < 300,
        "{} reset",
        reset.len()
    );
    for row in &reset {
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
    assert!(
        with_status(&rows, "skipped")
            .iter()
            .any(|r| r.detail.contains("resume"))
    );
    let report = scratch.run(&["report", &job]);
    report.expect_code(0);
    assert!(
        report.stdout.starts_with("target,user,status,detail\n"),
        "{}",
        report.stdout
    );
    assert!(report.stdout.contains(",pending,") || report.stdout.contains(",unknown,"));

    scratch.run(&["resume", &job]).expect_code(0);
    let rows = scratch.results("results.csv");
    assert_all_reset_once(&sim, &rows, 300);
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_loses_nothing() {
    // Requests take 3 s, so the first Ctrl-C finds some in flight that cannot
    // finish before the second one.
    let (_rt, sim) = sim(40, 3000, Faults::default());
    let scratch = scratch(&sim, "");
    let running = scratch.spawn(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "results.csv",
        "--yes",
        "--concurrency",
        "8",
    ]);
    let job = running.job_id();
    wait_for(|| sim.users().iter().any(|u| !sim.history(u).is_empty()));
    running.signal("INT");
    std::thread::sleep(Duration::from_millis(100));
    running.signal("INT");
    let started = Instant::now();
    let (code, stderr) = running.wait();
    assert_eq!(code, 3, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a second Ctrl-C must quit at once"
    );
    assert!(stderr.contains("abandoning requests in flight"), "{stderr}");

    // The results file on disk at exit holds every user the journal has as reset,
    // with the vendor's password, and every other user as not settled.
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 41, "one row per user and the admin");
    let report = scratch.run(&["report", &job]);
    let journaled_reset: Vec<&str> = report
        .stdout
        .lines()
        .filter(|l| l.contains(",reset,"))
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    let file_reset = with_status(&rows, "reset");
    assert_eq!(file_reset.len(), journaled_reset.len(), "{}", report.stdout);
    for row in &file_reset {
        assert!(journaled_reset.contains(&row.user.as_str()));
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
    assert!(
        rows.iter()
            .filter(|r| r.status == "skipped" && !r.password.is_empty())
            .all(|r| r.detail.contains("outcome unknown")),
        "users in flight keep the password that may be in effect"
    );

    sim.common().set_behaviour(Behaviour::default());
    scratch.run(&["resume", &job]).expect_code(0);
    let rows = scratch.results("results.csv");
    assert_all_reset_once(&sim, &rows, 40);
}

#[test]
fn a_revoked_session_is_renewed_once_and_a_refused_login_stops_the_job() {
    let (_rt, sim) = sim(200, 20, Faults::default());
    let scratch = scratch(&sim, "");
    let running = scratch.spawn(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "one.csv",
        "--yes",
        "--concurrency",
        "4",
    ]);
    running.job_id();
    wait_for(|| {
        sim.users()
            .iter()
            .filter(|u| !sim.history(u).is_empty())
            .count()
            >= 20
    });
    sim.revoke_sessions();
    let (code, stderr) = running.wait();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        sim.logins(),
        2,
        "one login, and one more after the revocation"
    );
    assert_all_reset_once(&sim, &scratch.results("one.csv"), 200);

    // Now the admin's password changes mid-run: the job stops, resumable.
    let running = scratch.spawn(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "two.csv",
        "--yes",
        "--concurrency",
        "4",
    ]);
    let job = running.job_id();
    wait_for(|| {
        sim.users()
            .iter()
            .filter(|u| sim.history(u).len() >= 2)
            .count()
            >= 20
    });
    sim.set_password("admin@example.com", "Rotated-Passw0rd!");
    sim.revoke_sessions();
    let (code, stderr) = running.wait();
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("authentication refused"), "{stderr}");
    let mut fixed = scratch;
    fixed.env("SM_ADMIN_PASSWORD", "Rotated-Passw0rd!");
    fixed.run(&["resume", &job]).expect_code(0);
    let rows = fixed.results("two.csv");
    assert_eq!(with_status(&rows, "reset").len(), 200);
    for row in with_status(&rows, "reset") {
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
}

#[test]
fn finished_jobs_keep_outcomes_but_no_passwords() {
    let (_rt, sim) = sim(50, 0, Faults::default());
    let scratch = scratch(&sim, "");
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "results.csv",
        "--yes",
        "--exclude",
        "user00007@example.com",
    ]);
    run.expect_code(0);
    let job = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .unwrap()
        .to_owned();
    let rows = scratch.results("results.csv");
    assert_no_password_in(&scratch.path("state"), &rows);

    let report = scratch.run(&["report", &job[..12]]);
    report.expect_code(0);
    let statuses: HashMap<&str, &str> = report
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut fields = l.split(',').skip(1);
            Some((fields.next()?, fields.next()?))
        })
        .collect();
    assert_eq!(statuses.len(), 51);
    assert_eq!(statuses["user00001@example.com"], "reset");
    assert_eq!(statuses["user00007@example.com"], "skipped");
    for row in with_status(&rows, "reset") {
        assert!(
            !report.stdout.contains(&row.password),
            "a password in the report"
        );
    }
    let jobs = scratch.run(&["jobs"]);
    jobs.expect_code(0);
    let line = jobs.stdout.lines().find(|l| l.starts_with(&job)).unwrap();
    assert!(line.contains("finished") && line.contains(" 49 "), "{line}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::fs::metadata(scratch.path("state/rekey"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir & 0o777, 0o700);
        for entry in std::fs::read_dir(scratch.path("state/rekey")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let mode = entry.metadata().unwrap().permissions().mode();
                assert_eq!(
                    mode & 0o077,
                    0,
                    "{} is readable by others",
                    entry.path().display()
                );
            }
        }
    }
}

/// Scans every byte of every file under `dir` for the rows' passwords.
fn assert_no_password_in(dir: &Path, rows: &[ResultRecord]) {
    let passwords: Vec<&str> = rows
        .iter()
        .map(|r| r.password.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    assert!(!passwords.is_empty());
    let mut files = vec![dir.to_owned()];
    let mut scanned = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += 1;
        for password in &passwords {
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "a new password remains in {}",
                path.display()
            );
        }
    }
    assert!(scanned > 0, "no state files found");
}

fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_target_refusing_or_unreachable_at_the_start_changes_nothing_and_keeps_no_job() {
    let (_rt, sim) = sim(30, 0, Faults::default());
    let mut scratch = scratch(&sim, "retry_budget = 1");
    scratch.env("SM_ADMIN_PASSWORD", "Not-The-Password-1");
    let run = scratch.run(&["reset", "mail", "--all", "--out", "results.csv", "--yes"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("authentication refused"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("\njob "),
        "no job is announced: {}",
        run.stderr
    );
    assert!(scratch.run(&["jobs"]).stdout.is_empty(), "no job is kept");
    assert!(!scratch.path("results.csv").exists());

    // A target nobody answers on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = Scratch::new();
    unreachable.config(&format!(
        "[targets.mail]\nconnector = \"smartermail\"\nurl = \"http://127.0.0.1:{port}\"\nusername = \"a@example.com\"\npassword = {{ file = \"pw\" }}\nretry_budget = 1\n"
    ));
    unreachable.write_private(&unreachable.path("pw"), "Admin-Passw0rd!");
    let run = unreachable.run(&["reset", "mail", "--user", "x@example.com", "--out", "r.csv"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("could not be reached"),
        "{}",
        run.stderr
    );
    assert!(
        unreachable.run(&["jobs"]).stdout.is_empty(),
        "no job is kept"
    );

    scratch.env("SM_ADMIN_PASSWORD", "Admin-Passw0rd!");
    scratch
        .run(&["reset", "mail", "--all", "--out", "results.csv", "--yes"])
        .expect_code(0);
    assert_all_reset_once(&sim, &scratch.results("results.csv"), 30);
}
