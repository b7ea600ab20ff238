//! Several targets in one job (incident response: rotate a person everywhere), with
//! the real `rekey` binary and connector libraries against three simulators of
//! different vendors: SmarterMail (`mail`), BroadWorks through Odin (`pbx`) and the
//! in-house Acme Directory (`acme`).

use std::collections::HashSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use rekey_sim::broadworks::{BroadWorksConfig, BroadWorksSim, Credential};
use rekey_sim::inhouse::{DEFAULT_KEY, InhouseConfig, InhouseSim};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_sim::{Behaviour, Faults};
use rekey_tests::{ResultRecord, Scratch, runtime, with_status};

/// The person with no account on the PBX.
const NO_PBX: usize = 3;

/// Three simulators, each with `people` accounts and `latency_ms` a request.
struct Sims {
    /// The runtime the simulators run on.
    _rt: tokio::runtime::Runtime,
    mail: SmarterMailSim,
    pbx: BroadWorksSim,
    acme: InhouseSim,
    people: usize,
}

impl Sims {
    fn start(people: usize, latency_ms: u64) -> Sims {
        let rt = runtime();
        let behaviour = |seed| Behaviour {
            latency: Duration::from_millis(latency_ms),
            seed,
            ..Behaviour::default()
        };
        let mail = rt
            .block_on(SmarterMailSim::start(SmarterMailConfig {
                users: people,
                behaviour: behaviour(1),
                ..SmarterMailConfig::default()
            }))
            .unwrap();
        let pbx = rt
            .block_on(BroadWorksSim::start(BroadWorksConfig {
                users: people,
                behaviour: behaviour(2),
                ..BroadWorksConfig::default()
            }))
            .unwrap();
        let acme = rt
            .block_on(InhouseSim::start(InhouseConfig {
                users: people,
                disabled_every: 0,
                behaviour: behaviour(3),
                ..InhouseConfig::default()
            }))
            .unwrap();
        Sims {
            _rt: rt,
            mail,
            pbx,
            acme,
            people,
        }
    }

    /// A scratch directory whose config has the three targets; `acme_key` is the
    /// in-house directory's API key, `extra` goes into every target.
    fn scratch(&self, acme_key: &str, extra: &str) -> Scratch {
        let pbx = self.pbx.config();
        let mut scratch = Scratch::new();
        scratch
            .env("SM_PASSWORD", &self.mail.config().admin_password)
            .env("ODIN_PASSWORD", &pbx.password)
            .env("ACME_API_KEY", acme_key);
        scratch.config(&format!(
            r#"
[targets.mail]
connector = "smartermail"
url = "{mail}"
username = "{mail_admin}"
password = {{ env = "SM_PASSWORD" }}
{extra}

[targets.pbx]
connector = "broadworks"
url = "{pbx_url}"
username = "{pbx_admin}"
password = {{ env = "ODIN_PASSWORD" }}
service_provider_id = "{sp}"
group_id = "{group}"
{extra}

[targets.acme]
connector = "example"
url = "{acme}"
api_key = {{ env = "ACME_API_KEY" }}
batch_size = 5
{extra}
"#,
            mail = self.mail.url(),
            mail_admin = self.mail.domain_admin(),
            pbx_url = self.pbx.url(),
            pbx_admin = pbx.username,
            sp = pbx.service_provider_id,
            group = pbx.group_id,
            acme = self.acme.url(),
        ));
        scratch
    }

    fn mail_id(n: usize) -> String {
        format!("user{n:05}@example.com")
    }

    fn pbx_id(&self, n: usize) -> String {
        self.pbx.user_id(n)
    }

    fn acme_id(n: usize) -> String {
        rekey_sim::inhouse::user_id(n)
    }

    /// The people file: a name, then a column per target; person [`NO_PBX`] has
    /// no PBX account (and a comma in the name, which must not matter).
    fn people_csv(&self, scratch: &Scratch) -> String {
        let mut csv = String::from("# who to rotate\nname,mail,pbx,acme\n");
        for n in 1..=self.people {
            let pbx = if n == NO_PBX {
                String::new()
            } else {
                self.pbx_id(n)
            };
            csv.push_str(&format!(
                "\"Person {n}, Staff\",{},{pbx},{}\n",
                Self::mail_id(n),
                Self::acme_id(n)
            ));
        }
        let path = scratch.path("people.csv");
        std::fs::write(&path, csv).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// What the vendor holds now for a row's user, and every value it was set to.
    fn vendor(&self, row: &ResultRecord) -> (Option<String>, Vec<String>) {
        match row.target.as_str() {
            "mail" => (self.mail.password(&row.user), self.mail.history(&row.user)),
            "pbx" => (
                self.pbx.web_password(&row.user),
                self.pbx.history(&row.user, Credential::Web),
            ),
            "acme" => (
                self.acme.password(&row.user),
                self.acme
                    .history(&row.user)
                    .into_iter()
                    .map(|c| c.value)
                    .collect(),
            ),
            other => panic!("unexpected target {other}"),
        }
    }

    /// Every account of every simulator that was ever changed.
    fn changed(&self) -> usize {
        let mail = self
            .mail
            .users()
            .iter()
            .filter(|u| !self.mail.history(u).is_empty())
            .count();
        let pbx = self
            .pbx
            .users()
            .iter()
            .filter(|u| !self.pbx.history(u, Credential::Web).is_empty())
            .count();
        let acme = self
            .acme
            .users()
            .iter()
            .filter(|u| !self.acme.history(u).is_empty())
            .count();
        mail + pbx + acme
    }

    /// Every person is reset on each target where they have an account, with the
    /// value the vendor holds, set once (a retry may repeat the same value, never
    /// another); the person without a PBX account is untouched there.
    fn assert_rotated(&self, rows: &[ResultRecord]) {
        assert_eq!(rows.len(), self.people * 3 - 1, "one row per account");
        let reset = with_status(rows, "reset");
        assert_eq!(reset.len(), rows.len(), "every account is reset: {rows:?}");
        let mut seen = HashSet::new();
        for row in reset {
            assert!(
                seen.insert((row.target.clone(), row.user.clone())),
                "{row:?}"
            );
            let (current, history) = self.vendor(row);
            assert_eq!(Some(&row.password), current.as_ref(), "{row:?}");
            let values: HashSet<&String> = history.iter().collect();
            assert_eq!(
                values.into_iter().collect::<Vec<_>>(),
                [&row.password],
                "{}/{} was given another password",
                row.target,
                row.user
            );
        }
        let spared = self.pbx_id(NO_PBX);
        assert!(self.pbx.history(&spared, Credential::Web).is_empty());
        assert!(
            !rows.iter().any(|r| r.target == "pbx" && r.user == spared),
            "no row for an account the person does not have"
        );
    }
}

/// The job id announced on standard error.
fn job_of(stderr: &str) -> String {
    let ids: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("job "))
        .collect();
    assert_eq!(ids.len(), 1, "one job id: {stderr}");
    ids[0].trim().to_owned()
}

#[test]
fn one_job_rotates_people_on_three_vendors_from_a_column_per_target() {
    let sims = Sims::start(8, 0);
    let scratch = sims.scratch(DEFAULT_KEY, "");
    // The mail target adapts its pacing; the others keep theirs.
    let config = std::fs::read_to_string(scratch.path("rekey.toml")).unwrap();
    scratch.config(&config.replacen(
        "[targets.mail]\n",
        "[targets.mail]\nconcurrency = \"auto\"\n",
        1,
    ));
    let people = sims.people_csv(&scratch);

    // The dry run shows each target's plan and changes nothing.
    let dry = scratch.run(&[
        "reset",
        "mail",
        "pbx",
        "acme",
        "--users",
        &people,
        "--dry-run",
    ]);
    dry.expect_code(0);
    assert_eq!(dry.stdout.lines().count(), 8 * 3 - 1, "{}", dry.stdout);
    assert!(
        dry.stdout
            .contains(&format!("reset\tpbx\t{}", sims.pbx_id(1))),
        "{}",
        dry.stdout
    );
    assert_eq!(sims.changed(), 0);

    let run = scratch.run(&[
        "-v",
        "reset",
        "mail",
        "pbx",
        "acme",
        "--users",
        &people,
        "--out",
        "results.csv",
        "--yes",
    ]);
    run.expect_code(0);
    let job = job_of(&run.stderr);
    assert!(
        run.stderr.contains("adaptive concurrency settled at"),
        "{}",
        run.stderr
    );
    let rows = scratch.results("results.csv");
    sims.assert_rotated(&rows);

    // `report` and `jobs` cover the whole job.
    let report = scratch.run(&["report", &job]);
    report.expect_code(0);
    assert_eq!(
        report.stdout.lines().count(),
        1 + 8 * 3 - 1,
        "{}",
        report.stdout
    );
    assert!(
        report
            .stdout
            .contains(&format!("acme,{},reset,", Sims::acme_id(1))),
        "{}",
        report.stdout
    );
    let jobs = scratch.run(&["jobs"]);
    jobs.expect_code(0);
    let line = jobs
        .stdout
        .lines()
        .find(|l| l.starts_with(&job))
        .unwrap_or_else(|| panic!("{}", jobs.stdout));
    assert!(line.contains("mail,pbx,acme"), "{line}");
    assert!(line.contains("finished"), "{line}");
}

#[test]
fn a_job_over_three_vendors_killed_at_random_moments_ends_the_same() {
    // 100 people, 40 ms a request, 2 requests in flight on each target: the mail
    // and PBX targets take 2 s each, more than five runs killed within 300 ms.
    let sims = Sims::start(100, 40);
    let scratch = sims.scratch(DEFAULT_KEY, "concurrency = 2");
    let people = sims.people_csv(&scratch);
    let mut dice = StdRng::seed_from_u64(7);
    let mut job: Option<String> = None;
    let mut kills = 0;
    while kills < 5 {
        let running = match &job {
            None => scratch.spawn(&[
                "reset",
                "mail",
                "pbx",
                "acme",
                "--users",
                &people,
                "--out",
                "results.csv",
                "--yes",
            ]),
            Some(id) => scratch.spawn(&["resume", id.as_str()]),
        };
        let id = running.job_id();
        assert_eq!(*job.get_or_insert(id.clone()), id, "one job id throughout");
        std::thread::sleep(Duration::from_millis(dice.random_range(50..300)));
        running.signal("KILL");
        let (code, stderr) = running.wait();
        assert_eq!(
            code, -1,
            "the job finished before the kill: make it longer\n{stderr}"
        );
        kills += 1;
    }
    assert!(sims.changed() > 0, "the killed runs sent resets");
    let job = job.unwrap();
    scratch.run(&["resume", &job]).expect_code(0);
    sims.assert_rotated(&scratch.results("results.csv"));
    let jobs = scratch.run(&["jobs"]);
    assert_eq!(
        jobs.stdout
            .lines()
            .filter(|l| !l.starts_with("JOB"))
            .count(),
        1,
        "one job: {}",
        jobs.stdout
    );
}

#[test]
fn a_target_that_fails_its_check_stops_the_whole_job_before_anything_changes() {
    let sims = Sims::start(5, 0);
    let scratch = sims.scratch("not-the-key", "");
    let people = sims.people_csv(&scratch);
    let run = scratch.run(&[
        "reset",
        "mail",
        "pbx",
        "acme",
        "--users",
        &people,
        "--out",
        "results.csv",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("target `acme`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was changed on any target"),
        "{}",
        run.stderr
    );
    assert_eq!(sims.changed(), 0, "nothing changed anywhere");
    assert!(!scratch.path("results.csv").exists());
    let jobs = scratch.run(&["jobs"]);
    jobs.expect_code(0);
    assert!(jobs.stdout.is_empty(), "no job kept: {}", jobs.stdout);

    // A users file without a column for one of the targets is refused the same way.
    let scratch = sims.scratch(DEFAULT_KEY, "");
    std::fs::write(
        scratch.path("partial.csv"),
        format!("mail,acme\n{},{}\n", Sims::mail_id(1), Sims::acme_id(1)),
    )
    .unwrap();
    let run = scratch.run(&[
        "reset",
        "mail",
        "pbx",
        "acme",
        "--users",
        "partial.csv",
        "--out",
        "results.csv",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("neither a column named after target `pbx` nor a `user` column"),
        "{}",
        run.stderr
    );
    assert_eq!(sims.changed(), 0, "nothing changed anywhere");
}

#[test]
fn one_target_stopping_does_not_stop_the_others() {
    let sims = Sims::start(12, 0);
    // The PBX is slow: one request at a time, 80 ms each.
    sims.pbx.common().set_behaviour(Behaviour {
        latency: Duration::from_millis(80),
        ..Behaviour::default()
    });
    let scratch = sims.scratch(DEFAULT_KEY, "retry_budget = 1");
    let config = std::fs::read_to_string(scratch.path("rekey.toml")).unwrap();
    scratch.config(&config.replacen("[targets.pbx]\n", "[targets.pbx]\nconcurrency = 1\n", 1));
    let people = sims.people_csv(&scratch);
    let running = scratch.spawn(&[
        "reset",
        "mail",
        "pbx",
        "acme",
        "--users",
        &people,
        "--out",
        "results.csv",
        "--yes",
    ]);
    let job = running.job_id();
    // The PBX goes down while the job runs.
    sims.pbx.common().set_behaviour(Behaviour {
        faults: Faults {
            rate: 1.0,
            statuses: vec![503],
            ..Faults::default()
        },
        ..Behaviour::default()
    });
    let (code, stderr) = running.wait();
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("pbx: target unreachable"), "{stderr}");
    let rows = scratch.results("results.csv");
    for target in ["mail", "acme"] {
        let done = rows
            .iter()
            .filter(|r| r.target == target && r.status == "reset")
            .count();
        assert_eq!(done, 12, "{target} finished: {rows:?}");
    }
    let pbx_done = rows
        .iter()
        .filter(|r| r.target == "pbx" && r.status == "reset")
        .count();
    assert!(pbx_done < 11, "the PBX stopped early ({pbx_done} reset)");

    // Once the PBX is back, resuming the job finishes it, and only it.
    sims.pbx.common().set_behaviour(Behaviour::default());
    scratch.run(&["resume", &job]).expect_code(0);
    sims.assert_rotated(&scratch.results("results.csv"));
}
