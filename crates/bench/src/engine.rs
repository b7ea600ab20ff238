//! What the journal costs: the same job, with the durable SQLite journal and with
//! an in-memory store, through the host's engine and the real SmarterMail plugin.

use std::path::Path;
use std::time::{Duration, Instant};

use rekey_api::{Connector, CreateContext, CredentialKind, SettingValue, Settings};
use rekey_host::definition::{JobDefinition, JobTarget, Output, PasswordChoice};
use rekey_host::engine::{
    self, Concurrency, Generator, JobSpec, JobStore, MemoryStore, Pacing, PasswordSource,
    PlanEntry, PlanSink, RetryPolicy, Scope, Selection, StopSignal,
};
use rekey_host::ffi::{LoadOptions, PluginLibrary};
use rekey_host::job::{Pending, write_row};
use rekey_host::journal::{Journal, JournalPlan};
use rekey_host::results::{Format, Recipients, ResultsWriter};
use rekey_host::state::StateDir;
use rekey_policy::PasswordPolicy;
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};

use crate::library;

/// Runs alternating rounds with and without the journal and prints the medians.
pub async fn journal_cost(
    dir: &Path,
    users: usize,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let sim = SmarterMailSim::start(SmarterMailConfig {
        users,
        ..SmarterMailConfig::default()
    })
    .await?;
    let plugin = PluginLibrary::load(&library(dir, "rekey_smartermail"), LoadOptions::default())?;
    let meta = &plugin.info().metadata;
    let settings = Settings::check(
        &meta.settings,
        [
            ("url".to_owned(), SettingValue::Plain(sim.url().into())),
            (
                "username".to_owned(),
                SettingValue::Plain(sim.domain_admin().into()),
            ),
            (
                "password".to_owned(),
                SettingValue::Secret(sim.config().admin_password.as_str().into()),
            ),
        ],
    )?;
    let work = tempfile::tempdir()?;
    let connector = plugin.create(
        &settings,
        CreateContext {
            target: "mail".into(),
            state_dir: work.path().to_owned(),
            rate: None,
        },
    )?;
    connector.check().await?;
    let ids: Vec<String> = sim
        .users()
        .into_iter()
        .filter(|u| *u != sim.domain_admin())
        .collect();

    let mut with = Vec::new();
    let mut without = Vec::new();
    for round in 0..rounds {
        let memory = MemoryStore::with_users(ids.iter().cloned());
        without.push(
            run(
                &connector,
                &memory,
                "bench",
                concurrency,
                &work.path().join(format!("m{round}.csv")),
            )
            .await?,
        );

        let state = StateDir::open(&work.path().join(format!("state{round}")))?;
        let journal = Journal::open(&state).await?;
        let job = format!("bench-{round}");
        journal
            .create_job(&job, &definition(concurrency), None)
            .await?;
        let mut plan = JournalPlan {
            journal: &journal,
            scope: Scope {
                job: &job,
                target: "mail",
            },
        };
        for chunk in ids.chunks(1000) {
            let entries = chunk
                .iter()
                .map(|id| PlanEntry {
                    user: id.clone(),
                    key: id.to_lowercase(),
                    set_aside: None,
                })
                .collect();
            plan.add(entries).await?;
        }
        with.push(
            run(
                &connector,
                &journal,
                &job,
                concurrency,
                &work.path().join(format!("j{round}.csv")),
            )
            .await?,
        );
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (with, without) = (median(&mut with), median(&mut without));
    let rate = |d: Duration| users as f64 / d.as_secs_f64();
    println!(
        "journal: {users} users, concurrency {concurrency}, zero latency, median of {rounds}: {:.0} resets/s with the journal, {:.0} without: the journal costs {:.1}% of throughput",
        rate(with),
        rate(without),
        (1.0 - rate(with) / rate(without)) * 100.0
    );
    Ok(())
}

/// The job the benchmark runs: every user of one SmarterMail target.
fn definition(concurrency: usize) -> JobDefinition {
    JobDefinition {
        targets: vec![JobTarget {
            name: "mail".into(),
            connector: "smartermail".into(),
        }],
        kind: CredentialKind::Password,
        selection: Selection::All,
        exclude: Vec::new(),
        passwords: PasswordChoice::Generate,
        concurrency: Some(Concurrency::Fixed(concurrency as u32)),
        output: Output {
            path: None,
            format: Format::Csv,
            recipients: Default::default(),
        },
    }
}

/// One run of the engine over every pending user of `job` in `store`, writing a
/// results file as the real command does.
async fn run(
    connector: &dyn Connector,
    store: &dyn JobStore,
    job: &str,
    concurrency: usize,
    out: &Path,
) -> anyhow::Result<Duration> {
    let spec = JobSpec {
        kind: CredentialKind::Password,
        passwords: PasswordSource::Generate(Generator::Password(Box::new(
            PasswordPolicy::default().generator()?,
        ))),
        pacing: Pacing::Fixed(concurrency),
        retry: RetryPolicy::default(),
    };
    let mut results = ResultsWriter::create(out, Format::Csv, &Recipients::default())?;
    let stop = StopSignal::default();
    let started = Instant::now();
    let summary = engine::execute(
        engine::Run {
            connector,
            store,
            scope: Scope {
                job,
                target: "mail",
            },
            spec: &spec,
            stop: &stop,
        },
        &mut |user| {
            Ok(write_row(
                &mut results,
                "mail",
                CredentialKind::Password,
                user,
                Pending::Stopped(""),
            )?)
        },
    )
    .await?;
    results.finish()?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        summary.failed == 0 && summary.stopped.is_none(),
        "the run did not complete: {summary:?}"
    );
    Ok(elapsed)
}
