//! The plugin boundary: bad libraries are refused by name with exit 2, and a
//! connector's panic fails only the call it happened in.

use rekey_tests::{Scratch, connector_file_name, library, with_status};

/// A scratch directory whose plugin directory holds `crate_name`'s library under
/// connector `name`'s file name, and a target `t` of that connector.
fn with_plugin(crate_name: &str, name: &str, settings: &str) -> Scratch {
    let mut scratch = Scratch::new();
    let dir = scratch.plugin_copy(crate_name, &connector_file_name(name));
    scratch.env("REKEY_PLUGIN_PATH", dir.to_str().unwrap());
    scratch.config(&format!(
        "[targets.t]\nconnector = \"{name}\"\n{settings}\n"
    ));
    scratch
}

#[test]
fn a_missing_library_is_named() {
    let scratch = Scratch::new();
    scratch.config("[targets.t]\nconnector = \"nosuch\"\n");
    let run = scratch.run(&["check", "t"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&connector_file_name("nosuch")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("connector `nosuch` not found"),
        "{}",
        run.stderr
    );

    let scratch = Scratch::new();
    scratch.config("[targets.t]\nconnector = \"faulty\"\nconnector_file = \"lib/missing.so\"\n");
    let run = scratch.run(&["reset", "t", "--all", "--out", "r.csv"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("missing.so does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_library_without_the_entry_symbol_is_refused() {
    let scratch = with_plugin("fixture_no_entry", "noentry", "");
    let run = scratch.run(&["check", "t"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&connector_file_name("noentry")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("exports no `rekey_connector_entry_v1` symbol"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_library_of_another_abi_version_is_refused() {
    let scratch = with_plugin("fixture_abi_v2", "future", "");
    let run = scratch.run(&["reset", "t", "--user", "a", "--out", "r.csv"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&connector_file_name("future")),
        "{}",
        run.stderr
    );
    // Which rekey speaks which ABI, and the two ways out.
    let version = env!("CARGO_PKG_VERSION");
    let series = version.rsplit_once('.').unwrap().0;
    assert!(
        run.stderr.contains(&format!(
            "speaks plugin ABI 2, and this rekey {version} speaks plugin ABI 1: rebuild the connector against rekey-api {series}, or use a rekey that speaks plugin ABI 2"
        )),
        "{}",
        run.stderr
    );
    assert!(!scratch.path("r.csv").exists());
}

/// A library whose entry has run (its runtime and a thread of its own are
/// running) and whose function table then claims another ABI: refused by name, and
/// never unloaded, so the process carries on and ends normally.
#[test]
fn a_library_whose_table_claims_another_abi_is_refused_and_kept_loaded() {
    let mut scratch = Scratch::new();
    scratch.plugin_copy(
        "fixture_wrong_abi_table",
        &connector_file_name("wrongtable"),
    );
    let dir = scratch.plugin_copy("fixture_faulty", &connector_file_name("faulty"));
    scratch.env("REKEY_PLUGIN_PATH", dir.to_str().unwrap());
    let refusal = format!(
        "{} speaks plugin ABI 3, and this rekey {} speaks plugin ABI 1",
        connector_file_name("wrongtable"),
        env!("CARGO_PKG_VERSION")
    );

    // Every library is loaded; the good ones are listed after the refused one.
    let run = scratch.run(&["connectors"]);
    run.expect_code(1);
    assert!(run.stderr.contains(&refusal), "{}", run.stderr);
    for good in ["faulty ", "smartermail "] {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(good)),
            "{}",
            run.stdout
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    // A target of it is a config error, and the other targets still work.
    scratch.config(
        "[targets.bad]\nconnector = \"wrongtable\"\n\n[targets.good]\nconnector = \"faulty\"\n",
    );
    let run = scratch.run(&["check", "bad"]);
    run.expect_code(2);
    assert!(run.stderr.contains(&refusal), "{}", run.stderr);
    scratch.run(&["check", "good"]).expect_code(0);
}

#[test]
fn a_library_declaring_another_name_is_refused() {
    let scratch = with_plugin("fixture_faulty", "other", "");
    let run = scratch.run(&["check", "t"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&connector_file_name("other")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("declares itself as `faulty`, not `other`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_panic_in_reset_fails_that_call_and_the_run_goes_on() {
    let scratch = with_plugin(
        "fixture_faulty",
        "faulty",
        "panic_on = \"user2\"\nusers = 5",
    );
    let run = scratch.run(&[
        "reset",
        "t",
        "--all",
        "--out",
        "results.csv",
        "--concurrency",
        "2",
    ]);
    run.expect_code(1);
    let rows = scratch.results("results.csv");
    assert_eq!(rows.len(), 5);
    let failed = with_status(&rows, "failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].user, "user2");
    assert!(
        failed[0].detail.contains("panicked"),
        "{}",
        failed[0].detail
    );
    assert!(
        failed[0].detail.contains("deliberate panic"),
        "{}",
        failed[0].detail
    );
    assert_eq!(with_status(&rows, "reset").len(), 4);
}

#[test]
fn listing_connectors_survives_bad_libraries() {
    let mut scratch = Scratch::new();
    scratch.plugin_copy("fixture_no_entry", &connector_file_name("noentry"));
    scratch.plugin_copy("fixture_abi_v2", &connector_file_name("future"));
    let dir = scratch.plugin_copy("fixture_faulty", &connector_file_name("faulty"));
    scratch.env("REKEY_PLUGIN_PATH", dir.to_str().unwrap());
    let run = scratch.run(&["connectors"]);
    run.expect_code(1);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("faulty ")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with("smartermail ")),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("speaks plugin ABI 2"), "{}", run.stderr);
    assert!(
        run.stderr.contains("exports no `rekey_connector_entry_v1`"),
        "{}",
        run.stderr
    );

    let run = scratch.run(&["connectors", "show", "faulty"]);
    run.expect_code(0);
    assert!(run.stdout.contains("panic_on"), "{}", run.stdout);
    assert!(library("fixture_faulty").exists());
}

/// A setting's range is part of the schema: shown by `connectors show`, and a
/// value outside it refused by name before the connector is created.
#[test]
fn setting_ranges_are_shown_and_enforced() {
    let mut scratch = Scratch::new();
    let run = scratch.run(&["connectors", "show", "example"]);
    run.expect_code(0);
    let batch_size = run
        .stdout
        .lines()
        .find(|l| l.starts_with("batch_size "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(batch_size.ends_with("(1 to 100)"), "{batch_size}");

    scratch.config(
        "[targets.acme]\nconnector = \"example\"\nurl = \"http://127.0.0.1:9\"\napi_key = { env = \"ACME_KEY\" }\nbatch_size = 500\n",
    );
    scratch.env("ACME_KEY", "acme-key");
    let run = scratch.run(&["check", "acme"]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("setting `batch_size` must be 1 to 100, not 500"),
        "{}",
        run.stderr
    );
}

/// The plugin boundary in-process: dropping the host's future cancels the
/// plugin's task, and many calls run at once on the plugin's own runtime.
#[test]
fn dropping_a_call_cancels_the_plugins_task() {
    use rekey_api::{
        Connector, CreateContext, CredentialKind, NewPassword, ResetItem, ResetRequest,
        SettingValue, Settings,
    };
    use rekey_host::ffi::{LoadOptions, PluginLibrary};

    // A copy of its own, so this library's settings cannot clash with other tests'.
    let scratch = Scratch::new();
    let dir = scratch.plugin_copy("fixture_faulty", &connector_file_name("faulty"));
    let library = PluginLibrary::load(
        &dir.join(connector_file_name("faulty")),
        LoadOptions::default(),
    )
    .unwrap();
    let connector = |done: &std::path::Path, slow_ms: u64| {
        let settings = Settings::check(
            &library.info().metadata.settings,
            [
                ("slow_ms".to_owned(), SettingValue::Plain(slow_ms.into())),
                (
                    "done_file".to_owned(),
                    SettingValue::Plain(done.to_str().unwrap().into()),
                ),
            ],
        )
        .unwrap();
        library
            .create(
                &settings,
                CreateContext {
                    target: "t".into(),
                    state_dir: scratch.dir().to_owned(),
                    rate: None,
                },
            )
            .unwrap()
    };
    let request = || ResetRequest {
        kind: CredentialKind::Password,
        items: vec![ResetItem {
            user: "user1".into(),
            password: NewPassword::Known("Pw-1234".into()),
        }],
    };
    let rt = rekey_tests::runtime();

    // Dropped after 50 ms: the plugin's task is aborted and never finishes.
    let cancelled = scratch.path("cancelled");
    let slow = connector(&cancelled, 400);
    let result = rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(50), slow.reset(request())).await
    });
    assert!(result.is_err(), "the call should still be running");
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(
        !cancelled.exists(),
        "the plugin's task ran on after its future was dropped"
    );

    // Awaited: it finishes. And 50 calls of 200 ms each run at once.
    let finished = scratch.path("finished");
    let slow = std::sync::Arc::new(connector(&finished, 200));
    let started = std::time::Instant::now();
    rt.block_on(async {
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let slow = std::sync::Arc::clone(&slow);
                tokio::spawn(async move { slow.reset(request()).await })
            })
            .collect();
        for call in calls {
            let outcomes = call.await.unwrap().unwrap();
            assert!(outcomes[0].result.is_ok());
        }
    });
    assert!(finished.exists());
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "50 calls of 200 ms took {:?}: they did not run concurrently",
        started.elapsed()
    );
}
