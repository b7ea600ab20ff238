//! The runner against an in-process connector and a real journal: the path a job
//! takes from its start to its close.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rekey_api::{
    Capability, CheckReport, Connector, ConnectorError, Metadata, ResetRequest, UserEntry,
    UserOutcome, UserPage,
};

use super::*;
use crate::config::Config;
use crate::definition::{JobDefinition, JobTarget, Output, PasswordChoice};
use crate::engine::Selection;
use crate::exit::Exit;
use crate::interrupts::Interrupts;
use crate::journal::{JobState, Journal};
use crate::results::Format;
use crate::state::StateDir;
use crate::target::Target;

/// A directory of five users that keeps the passwords it is given.
#[derive(Default)]
struct Directory {
    passwords: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl Connector for Directory {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(CheckReport::default())
    }

    async fn list_users(&self, _cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        Ok(UserPage {
            users: (1..=5).map(|i| UserEntry::new(format!("u{i}"))).collect(),
            next: None,
        })
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let mut passwords = self.passwords.lock().unwrap();
        Ok(request
            .items
            .into_iter()
            .map(|item| {
                let password = item.password.known().unwrap().expose().to_owned();
                passwords.insert(item.user.clone(), password);
                UserOutcome::applied(item.user)
            })
            .collect())
    }
}

fn target(dir: &Path, connector: Arc<dyn Connector>) -> Target {
    let path = dir.join("rekey.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "[targets.dir]\nconnector = \"directory\"").unwrap();
    let config = Config::load(&path).unwrap();
    Target {
        config: config.target("dir").unwrap().clone(),
        metadata: Metadata::new("directory", "1.0.0", "an in-process directory")
            .capability(Capability::ListUsers),
        connector,
    }
}

fn definition(out: &Path) -> JobDefinition {
    JobDefinition {
        targets: vec![JobTarget {
            name: "dir".into(),
            connector: "directory".into(),
        }],
        kind: rekey_api::CredentialKind::Password,
        selection: Selection::All,
        exclude: Vec::new(),
        passwords: PasswordChoice::Generate,
        concurrency: Some(crate::engine::Concurrency::Fixed(2)),
        output: Output {
            path: Some(out.to_owned()),
            format: Format::Csv,
            recipients: Default::default(),
        },
    }
}

/// Every file of `dir` (recursively) scanned for `secret`.
fn on_disk(dir: &Path, secret: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            on_disk(&path, secret)
        } else {
            let bytes = std::fs::read(&path).unwrap();
            bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
        }
    })
}

#[tokio::test]
async fn a_finished_job_hands_over_every_password_and_erases_them_from_the_journal() {
    let scratch = tempfile::tempdir().unwrap();
    let state = StateDir::open(&scratch.path().join("state")).unwrap();
    let journal = Journal::open(&state).await.unwrap();
    let directory = Arc::new(Directory::default());
    let out = scratch.path().join("results.csv");
    let definition = definition(&out);
    journal
        .create_job("job-1", &definition, None)
        .await
        .unwrap();
    let exit = Runner {
        journal: &journal,
        lock: JobLock::acquire(&state, "job-1").unwrap(),
        id: "job-1".into(),
        definition,
        known: None,
        targets: vec![target(scratch.path(), directory.clone())],
        interrupts: Arc::new(Interrupts::default()),
        quiet: true,
    }
    .run(Mode::Start { confirmed: true }, None)
    .await
    .unwrap();
    assert_eq!(exit, Exit::Success);

    let results = std::fs::read_to_string(&out).unwrap();
    let passwords = directory.passwords.lock().unwrap().clone();
    assert_eq!(passwords.len(), 5);
    for (user, password) in &passwords {
        assert!(
            results.contains(&format!("dir,{user},password,reset,{password},")),
            "{results}"
        );
    }
    let job = journal.job("job-1").await.unwrap();
    assert_eq!(job.state, JobState::Finished);
    assert!(!job.holds_passwords);
    drop(journal);
    for password in passwords.values() {
        assert!(
            !on_disk(state.path(), password),
            "a password is left in the state directory"
        );
    }
}
