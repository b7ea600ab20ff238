//! Hostile input on the host side, through the real binary: journal rows no rekey
//! wrote (a garbage job definition, a user state code rekey never writes, odd
//! user ids and passwords) give an error or a reading that loses nothing, never a
//! panic.

use std::path::Path;

use proptest::prelude::*;
use rekey_tests::{Run, Scratch};

/// A journal holding one stopped job `j1` with `definition` and `users` (state
/// code, user id, password), written straight into its tables.
fn journal_with(definition: &str, users: &[(i64, String, Option<String>)]) -> Scratch {
    let scratch = Scratch::new();
    scratch.config("[targets.mail]\nconnector = \"smartermail\"\n");
    scratch.run(&["jobs"]).expect_code(0);
    let journal = rusqlite::Connection::open(scratch.path("state/rekey/journal.sqlite")).unwrap();
    journal
        .execute(
            "INSERT INTO jobs (id, definition, started, updated, state, stop_reason)
             VALUES ('j1', ?1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'stopped', 'interrupted')",
            [definition],
        )
        .unwrap();
    for (n, (state, user, password)) in users.iter().enumerate() {
        journal
            .execute(
                "INSERT INTO users (job, target, user, user_key, state, password, detail)
                 VALUES ('j1', 'mail', ?1, ?2, ?3, ?4, '')",
                rusqlite::params![user, format!("{n}"), state, password],
            )
            .unwrap();
    }
    scratch
}

/// A definition rekey writes, with results at `out`.
fn good_definition(out: &Path) -> serde_json::Value {
    serde_json::json!({
        "targets": [{"name": "mail", "connector": "smartermail"}],
        "kind": "password",
        "selection": "all",
        "passwords": "generate",
        "output": {"path": out, "format": "csv"},
    })
}

/// No panic (exit 101), and an exit code of the contract.
#[track_caller]
fn assert_handled(run: &Run) {
    assert!(
        !run.stderr.contains("panicked") && [0, 1, 2, 3].contains(&run.code),
        "exit {}\n{}",
        run.code,
        run.stderr
    );
}

#[test]
fn a_garbage_definition_is_an_error_naming_the_job() {
    let scratch = journal_with("{\"targets\": 7}", &[]);
    for args in [
        &["jobs"][..],
        &["report", "j1"],
        &["discard", "j1", "--yes"],
    ] {
        let run = scratch.run(args);
        run.expect_code(2);
        assert!(
            run.stderr
                .contains("job j1 has a definition this rekey cannot read"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_user_state_no_rekey_writes_reads_as_pending_and_keeps_its_password() {
    let out = tempfile::tempdir().unwrap();
    let results = out.path().join("r.csv");
    let definition = good_definition(&results).to_string();
    let scratch = journal_with(
        &definition,
        &[
            (99, "odd@example.com".into(), Some("Kept-Passw0rd".into())),
            (2, "done@example.com".into(), Some("Done-Passw0rd".into())),
        ],
    );
    let report = scratch.run(&["report", "j1"]);
    report.expect_code(0);
    assert!(
        report.stdout.contains("mail,odd@example.com,pending,"),
        "{}",
        report.stdout
    );
    assert!(!report.stdout.contains("Kept-Passw0rd"));
    scratch.run(&["discard", "j1", "--yes"]).expect_code(0);
    let text = std::fs::read_to_string(&results).unwrap();
    assert!(
        text.contains("mail,done@example.com,password,reset,Done-Passw0rd"),
        "{text}"
    );
    // Given up, its password, which may be in effect, is handed over.
    assert!(
        text.contains("mail,odd@example.com,password,failed,Kept-Passw0rd,outcome unknown"),
        "{text}"
    );
}

/// Definitions: arbitrary text, or one rekey writes with one field replaced by an
/// arbitrary JSON value.
fn definitions(out: std::path::PathBuf) -> impl Strategy<Value = String> {
    let json = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
        proptest::collection::vec(".{0,8}", 0..3).prop_map(serde_json::Value::from),
        Just(serde_json::json!({"ids": ["a"]})),
        Just(serde_json::json!({"path": 7, "format": "xml", "recipients": ["x"]})),
    ];
    let field = "targets|kind|selection|passwords|output|exclude|concurrency";
    prop_oneof![
        ".{0,200}",
        (field, json).prop_map(move |(field, value)| {
            let mut definition = good_definition(&out);
            definition[field] = value;
            definition.to_string()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn hostile_journal_rows_never_panic(
        definition in definitions(std::env::temp_dir().join("rekey-hostile-never-written.csv")),
        users in proptest::collection::vec(
            (prop_oneof![-3..8i64, any::<i64>()], ".{0,12}", proptest::option::of(".{0,12}")),
            0..4,
        ),
    ) {
        let scratch = journal_with(&definition, &users);
        assert_handled(&scratch.run(&["jobs"]));
        assert_handled(&scratch.run(&["report", "j1"]));
    }
}
