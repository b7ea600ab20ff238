//! The journal: every job, durably, in an embedded SQLite database in the state
//! directory (`journal.sqlite`, private to its owner).
//!
//! A job row records the job's [definition](crate::definition) and how far it got; a
//! row per user and target records the user's state and, while the job needs it,
//! its new password. A password is committed with its user in state `sending`
//! before the request that carries it leaves; the vendor's answer is committed
//! after. Commits are grouped (module `writer`) and the database runs in WAL mode with
//! `synchronous = FULL` for every write a caller waits on, so the journal survives
//! a crash or power loss without capping throughput.
//!
//! A job's end is ordered so that a crash at any point leaves either its passwords
//! (to resume with) or none: its results file is made durable first; then one
//! transaction erases its passwords, marks it finished and records that the
//! journal's files must be scrubbed; then a `VACUUM` and a truncating checkpoint
//! remove every copy from free pages and the write-ahead log. Whatever a crash
//! leaves undone is finished by the next rekey command that opens the journal.
//!
//! The journal implements the engine's ports: [`JobStore`](crate::engine::JobStore)
//! for running a job and [`PlanSink`](crate::engine::PlanSink) for planning one.

mod erase;
mod jobs;
mod schema;
mod users;
mod writer;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rusqlite::Connection;

pub use self::erase::Closing;
pub use self::jobs::{JobRecord, JobState, OpenJob};
pub use self::users::JournalPlan;
use self::writer::Writer;
use crate::state::StateDir;

/// The journal file's name in the state directory.
pub const FILE_NAME: &str = "journal.sqlite";

/// How long an operation waits for another rekey that holds the journal.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The journal of one state directory.
pub struct Journal {
    path: PathBuf,
    writer: Writer,
}

impl Journal {
    /// Opens (creating if needed) the journal in `state`, and finishes any erasure a
    /// crash left undone.
    pub async fn open(state: &StateDir) -> anyhow::Result<Journal> {
        let path = state.path().join(FILE_NAME);
        create_private_file(&path)?;
        let mut connection = Connection::open(&path)
            .with_context(|| format!("cannot open the journal {}", path.display()))?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| connection.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| connection.pragma_update(None, "secure_delete", "ON"))
            .and_then(|()| connection.pragma_update(None, "foreign_keys", "ON"))
            .with_context(|| format!("cannot set up the journal {}", path.display()))?;
        schema::set_up(&mut connection, &path.display().to_string())?;
        let journal = Journal {
            path,
            writer: Writer::start(connection),
        };
        journal.finish_pending_work().await;
        Ok(journal)
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many of this process's commits were synced to disk (what a job's
    /// durability costs; logged at debug level).
    pub fn synced_commits(&self) -> usize {
        self.writer.synced_commits()
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Creates the journal file readable by its owner only, so SQLite (which gives its
/// WAL and shared-memory files the database's permissions) never creates it with
/// the process's default mode.
fn create_private_file(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("cannot create the journal {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make the journal {} private", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
