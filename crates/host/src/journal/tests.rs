use std::path::Path;
use std::time::Duration;

use super::*;
use crate::definition::{JobDefinition, JobTarget, Output, PasswordChoice};
use crate::engine::{
    Intent, JobStore, PlanEntry, PlanSink, Scope, Selection, UserRecord, UserState,
};
use crate::results::Format;

const SCOPE: Scope<'static> = Scope {
    job: "j1",
    target: "mail",
};

fn definition() -> JobDefinition {
    JobDefinition {
        targets: vec![JobTarget {
            name: "mail".into(),
            connector: "smartermail".into(),
        }],
        kind: rekey_api::CredentialKind::Password,
        selection: Selection::All,
        exclude: Vec::new(),
        passwords: PasswordChoice::Generate,
        concurrency: None,
        output: Output {
            path: None,
            format: Format::Csv,
            recipients: Default::default(),
        },
    }
}

async fn journal_with_job(dir: &Path, job: &str) -> Journal {
    let state = StateDir::open(dir).unwrap();
    let journal = Journal::open(&state).await.unwrap();
    journal.create_job(job, &definition(), None).await.unwrap();
    journal
}

fn entry(user: &str) -> PlanEntry {
    PlanEntry {
        user: user.into(),
        key: user.to_lowercase(),
        set_aside: None,
    }
}

async fn plan(journal: &Journal, scope: Scope<'_>, users: &[&str]) -> crate::engine::Planned {
    JournalPlan { journal, scope }
        .add(users.iter().map(|u| entry(u)).collect())
        .await
        .unwrap()
}

fn intent(seq: i64, password: &str) -> Intent {
    Intent {
        seq,
        password: Some(password.into()),
    }
}

/// Asserts that no file of the state directory holds `secret`.
fn assert_nowhere_on_disk(dir: &Path, secret: &str) {
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} lingers in {}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn plans_intents_outcomes_and_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_job(dir.path(), "j1").await;
    let planned = plan(&journal, SCOPE, &["a", "B", "b", "c"]).await;
    assert_eq!((planned.selected, planned.repeated), (3, 1));
    let pending = journal.pending(SCOPE, 0, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.user.as_str()).collect::<Vec<_>>(),
        ["a", "B", "c"]
    );
    journal
        .record_intents(SCOPE, vec![intent(pending[0].seq, "Pw-number-1")])
        .await
        .unwrap();
    let pending = journal.pending(SCOPE, 0, 10).await.unwrap();
    assert_eq!(pending[0].state, UserState::Sending);
    assert_eq!(
        pending[0].password.as_ref().unwrap().expose(),
        "Pw-number-1"
    );
    journal.record_outcomes(
        SCOPE,
        vec![UserRecord {
            seq: pending[0].seq,
            user: "a".into(),
            state: UserState::Reset,
            password: Some("Pw-number-1".into()),
            detail: String::new(),
        }],
    );
    journal.flush().await.unwrap();
    let counts = journal.counts("j1", None).await.unwrap();
    assert_eq!((counts.reset, counts.planned), (1, 2));
    let job = journal.job("j").await.unwrap();
    assert_eq!(job.state, JobState::Planning);
    assert!(job.holds_passwords);
    assert_eq!(job.counts.reset, 1);

    journal.close("j1", Closing::Finished).await.unwrap();
    let job = journal.job("j1").await.unwrap();
    assert_eq!(job.state, JobState::Finished);
    assert!(!job.holds_passwords);
    assert!(!journal.scrub_pending().await.unwrap());
    let mut users = Vec::new();
    journal
        .for_each_user("j1", |_, u| {
            users.push(u);
            Ok(())
        })
        .await
        .unwrap();
    assert!(users.iter().all(|u| u.password.is_none()));
    drop(journal);
    assert_nowhere_on_disk(dir.path(), "Pw-number-1");
}

#[tokio::test]
async fn intents_are_synced_to_disk_before_record_intents_returns() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_job(dir.path(), "j1").await;
    plan(&journal, SCOPE, &["a", "b"]).await;
    let pending = journal.pending(SCOPE, 0, 10).await.unwrap();

    // Outcomes alone are not synced; an intent is.
    journal.record_outcomes(SCOPE, Vec::new());
    journal.writer.read(|_| Ok(())).await.unwrap();
    let before = journal.writer.synced_commits();
    journal
        .record_intents(SCOPE, vec![intent(pending[0].seq, "Pw-number-0")])
        .await
        .unwrap();
    assert!(
        journal.writer.synced_commits() > before,
        "the intent's commit ran without synchronous = FULL"
    );

    // While the writer is busy, record_intents does not return.
    let (release, held) = std::sync::mpsc::channel::<()>();
    journal.writer.enqueue(move |_| {
        let _ = held.recv();
        Ok(())
    });
    let mut recording =
        std::pin::pin!(journal.record_intents(SCOPE, vec![intent(pending[1].seq, "Pw-number-1")]));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut recording)
            .await
            .is_err(),
        "record_intents returned while the writer was still held"
    );
    release.send(()).unwrap();
    recording.await.unwrap();
    let pending = journal.pending(SCOPE, 0, 10).await.unwrap();
    assert!(pending.iter().all(|p| p.state == UserState::Sending));
}

#[tokio::test]
async fn an_intent_is_refused_for_a_user_no_longer_planned_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_job(dir.path(), "j1").await;
    plan(&journal, SCOPE, &["a", "b"]).await;
    let pending = journal.pending(SCOPE, 0, 10).await.unwrap();
    journal
        .record_intents(SCOPE, vec![intent(pending[0].seq, "First-pw-1")])
        .await
        .unwrap();
    // A second runner of the same job tries to give `a` another password, with `b`.
    let error = journal
        .record_intents(
            SCOPE,
            vec![
                intent(pending[1].seq, "Second-pw-2"),
                intent(pending[0].seq, "Second-pw-1"),
            ],
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no longer planned"), "{error}");
    let pending = journal.pending(SCOPE, 0, 10).await.unwrap();
    assert_eq!(pending[0].password.as_ref().unwrap().expose(), "First-pw-1");
    assert_eq!(pending[1].state, UserState::Planned, "all or nothing");
    assert!(pending[1].password.is_none());
}

#[tokio::test]
async fn a_user_pending_in_an_open_job_is_found_from_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_job(dir.path(), "old").await;
    let old = Scope {
        job: "old",
        target: "mail",
    };
    plan(&journal, old, &["a", "b", "c"]).await;
    let pending = journal.pending(old, 0, 10).await.unwrap();
    journal
        .record_intents(old, vec![intent(pending[1].seq, "Maybe-in-effect-1")])
        .await
        .unwrap();
    journal.record_outcomes(
        old,
        vec![UserRecord {
            seq: pending[1].seq,
            user: "b".into(),
            state: UserState::Reset,
            password: Some("Maybe-in-effect-1".into()),
            detail: String::new(),
        }],
    );
    journal.flush().await.unwrap();
    journal
        .create_job("new", &definition(), None)
        .await
        .unwrap();
    let new = Scope {
        job: "new",
        target: "mail",
    };
    // `b` is settled in the old job, and `z` is not in it: no conflict.
    plan(&journal, new, &["B", "z"]).await;
    assert_eq!(
        journal.open_job_holding_a_user_of("new").await.unwrap(),
        None
    );
    // `c` is still planned there; on another target it would not matter.
    plan(
        &journal,
        Scope {
            job: "new",
            target: "pbx",
        },
        &["a"],
    )
    .await;
    assert_eq!(
        journal.open_job_holding_a_user_of("new").await.unwrap(),
        None
    );
    plan(&journal, new, &["C"]).await;
    let open = journal
        .open_job_holding_a_user_of("new")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((open.job.as_str(), open.user.as_str()), ("old", "c"));
    // Once the old job is closed, its users are free.
    journal
        .close(
            "old",
            Closing::Discarded {
                unknown: "u",
                untried: "t",
            },
        )
        .await
        .unwrap();
    assert_eq!(
        journal.open_job_holding_a_user_of("new").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_scrub_left_undone_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_job(dir.path(), "j1").await;
    plan(&journal, SCOPE, &["a"]).await;
    let pending = journal.pending(SCOPE, 0, 10).await.unwrap();
    journal
        .record_intents(SCOPE, vec![intent(pending[0].seq, "Lingering-pw-1")])
        .await
        .unwrap();
    // Another reader holds a snapshot, so the scrub after closing cannot empty the
    // log: it stays owed.
    let reader = rusqlite::Connection::open(journal.path()).unwrap();
    reader
        .execute_batch("BEGIN; SELECT COUNT(*) FROM users;")
        .unwrap();
    journal.close("j1", Closing::Finished).await.unwrap();
    assert!(journal.scrub_pending().await.unwrap());
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    drop(journal);

    let state = StateDir::open(dir.path()).unwrap();
    let journal = Journal::open(&state).await.unwrap();
    assert!(!journal.scrub_pending().await.unwrap());
    drop(journal);
    assert_nowhere_on_disk(dir.path(), "Lingering-pw-1");
}

#[tokio::test]
async fn files_are_private_and_ids_resolve_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_job(dir.path(), "j1").await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(journal.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        journal
            .job("zz")
            .await
            .unwrap_err()
            .to_string()
            .contains("no job `zz`")
    );
    assert_eq!(journal.jobs().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_operation_that_fails_changes_nothing_while_the_others_commit() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_job(dir.path(), "j1").await;
    // Held, so that the next two operations share one group transaction.
    let (release, held) = std::sync::mpsc::channel::<()>();
    journal.writer.enqueue(move |_| {
        let _ = held.recv();
        Ok(())
    });
    let failing = journal.writer.call(|tx| {
        tx.execute(
            "UPDATE jobs SET stop_reason = 'half done' WHERE id = 'j1'",
            [],
        )?;
        tx.execute("INSERT INTO no_such_table VALUES (1)", [])
            .map(drop)
    });
    let passing = journal.writer.call(|tx| {
        tx.execute("UPDATE jobs SET state = 'stopped' WHERE id = 'j1'", [])
            .map(drop)
    });
    // Both are queued (first poll) while the writer is held, then it goes on.
    let release = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        release.send(()).unwrap();
    };
    let (failing, passing, ()) = tokio::join!(failing, passing, release);
    assert!(failing.is_err());
    passing.unwrap();
    let job = journal.job("j1").await.unwrap();
    assert_eq!(
        job.state,
        JobState::Stopped,
        "the other operation committed"
    );
    assert_eq!(job.stop_reason, None, "the failed operation left nothing");
}
