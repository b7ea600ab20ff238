//! The end of a job: its passwords erased in the same transaction that closes it,
//! then every copy scrubbed from the journal's files. A scrub that cannot run now
//! (another rekey has the journal open) is owed, and paid by the next rekey
//! command that opens the journal.

use rusqlite::params;

use super::{JobState, Journal, now};
use crate::engine::UserState;

/// The `pending_work` row that says erased passwords may linger in the files.
const SCRUB: &str = "scrub";

/// How a job is closed.
#[derive(Debug, Clone, Copy)]
pub enum Closing<'a> {
    /// Every user is settled.
    Finished,
    /// Given up: users with an unknown outcome become failed with `unknown` as
    /// their detail (their password kept in the results file, which is already
    /// written), users never attempted are set aside with `untried`.
    Discarded {
        /// The detail of a user whose outcome is unknown.
        unknown: &'a str,
        /// The detail of a user never attempted.
        untried: &'a str,
    },
}

impl Journal {
    /// Closes a job whose results file is durable: erases its passwords and its
    /// known value and sets its final state, in one transaction; then scrubs the
    /// journal's files (a scrub that cannot run now is owed, not an error).
    pub async fn close(&self, job: &str, closing: Closing<'_>) -> anyhow::Result<()> {
        let job = job.to_owned();
        let (state, unknown, untried) = match closing {
            Closing::Finished => (JobState::Finished, None, None),
            Closing::Discarded { unknown, untried } => (
                JobState::Discarded,
                Some(unknown.to_owned()),
                Some(untried.to_owned()),
            ),
        };
        self.writer
            .call(move |tx| {
                if let (Some(unknown), Some(untried)) = (unknown, untried) {
                    tx.execute(
                        "UPDATE users SET state = ?2, detail = ?3 WHERE job = ?1 AND state = ?4",
                        params![job, UserState::Failed.code(), unknown, UserState::Sending.code()],
                    )?;
                    tx.execute(
                        "UPDATE users SET state = ?2, detail = ?3 WHERE job = ?1 AND state = ?4",
                        params![job, UserState::SetAside.code(), untried, UserState::Planned.code()],
                    )?;
                }
                tx.execute(
                    "UPDATE users SET password = NULL WHERE job = ?1 AND password IS NOT NULL",
                    params![job],
                )?;
                tx.execute(
                    "UPDATE jobs SET known_value = NULL, state = ?2, stop_reason = NULL, updated = ?3
                     WHERE id = ?1",
                    params![job, state.as_str(), now()],
                )?;
                tx.execute(
                    "INSERT OR IGNORE INTO pending_work (name) VALUES (?1)",
                    params![SCRUB],
                )
                .map(drop)
            })
            .await?;
        crate::fault::point("after-erase-commit");
        if let Err(error) = self.scrub().await {
            tracing::warn!(
                "the job's passwords are erased, but copies may linger in the journal's files until the next rekey command: {error:#}"
            );
        }
        Ok(())
    }

    /// Removes every copy of erased data from the journal's files: a `VACUUM`
    /// rewrites the database without its free pages, and a truncating checkpoint
    /// empties the write-ahead log.
    pub async fn scrub(&self) -> anyhow::Result<()> {
        self.writer
            .maintenance(|connection| {
                // Another rekey's job may hold the journal: wait for it only briefly,
                // the scrub is owed and retried anyway.
                let _ = connection.busy_timeout(std::time::Duration::from_millis(250));
                let scrubbed = scrub(connection);
                let _ = connection.busy_timeout(super::BUSY_TIMEOUT);
                scrubbed
            })
            .await
    }

    /// Pays what the journal owes: a scrub that a crash or a busy journal left
    /// undone. Failing here only postpones it to the next command.
    pub(super) async fn finish_pending_work(&self) {
        if matches!(self.scrub_pending().await, Ok(true)) {
            match self.scrub().await {
                Ok(()) => tracing::debug!(
                    "scrubbed the passwords a closed job left in the journal's files"
                ),
                Err(error) => tracing::debug!("the journal's scrub is postponed: {error:#}"),
            }
        }
    }

    /// Whether erased passwords may still linger in the journal's files.
    pub async fn scrub_pending(&self) -> anyhow::Result<bool> {
        self.writer
            .read(|tx| {
                tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM pending_work WHERE name = ?1)",
                    params![SCRUB],
                    |row| row.get::<_, bool>(0),
                )
            })
            .await
    }
}

/// The scrub itself, on the writer's connection.
fn scrub(connection: &mut rusqlite::Connection) -> Result<(), String> {
    connection
        .execute_batch("VACUUM")
        .map_err(|e| e.to_string())?;
    let busy: i64 = connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    if busy != 0 {
        return Err(
            "another rekey is using the journal; its write-ahead log could not be emptied yet"
                .into(),
        );
    }
    connection
        .execute("DELETE FROM pending_work WHERE name = ?1", params![SCRUB])
        .map_err(|e| e.to_string())?;
    // The deletion itself went to the log: empty it again (it holds no secret, so a
    // busy reader now costs nothing).
    connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        })
        .map(drop)
        .map_err(|e| e.to_string())
}
