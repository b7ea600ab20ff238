//! User rows: a job's plan, its intents and outcomes (the engine's [`JobStore`]),
//! and reading them back for the results and the report.

use anyhow::bail;
use async_trait::async_trait;
use rekey_api::Secret;
use rusqlite::params;

use super::Journal;
use crate::engine::{
    Intent, JobStore, PendingUser, PlanEntry, PlanSink, Planned, Scope, UserRecord, UserState,
};

/// Users read from the journal at once when walking a job.
const PAGE: usize = 2048;

/// A job's plan on one target, in the journal: the [`PlanSink`] planning fills.
pub struct JournalPlan<'a> {
    /// The journal.
    pub journal: &'a Journal,
    /// The job and target.
    pub scope: Scope<'a>,
}

#[async_trait]
impl PlanSink for JournalPlan<'_> {
    /// Adds users in order and counts them; users already in the plan (duplicates,
    /// or users planned before an interruption) count as repeated.
    async fn add(&mut self, entries: Vec<PlanEntry>) -> anyhow::Result<Planned> {
        let (job, target) = (self.scope.job.to_owned(), self.scope.target.to_owned());
        self.journal
            .writer
            .call(move |tx| {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO users (job, target, user, user_key, state, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let mut planned = Planned::default();
                for entry in entries {
                    let state = if entry.set_aside.is_some() {
                        UserState::SetAside
                    } else {
                        UserState::Planned
                    };
                    let added = insert.execute(params![
                        job,
                        target,
                        entry.user,
                        entry.key,
                        state.code(),
                        entry.set_aside
                    ])?;
                    planned.count(&entry, added > 0);
                }
                Ok(planned)
            })
            .await
    }
}

impl Journal {
    /// The job's targets that have users, with their users, in plan order: calls
    /// `visit` with each user and its target, reading a page at a time.
    pub async fn for_each_user(
        &self,
        job: &str,
        mut visit: impl FnMut(&str, UserRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut after = 0;
        loop {
            let job = job.to_owned();
            let page = self
                .writer
                .read(move |tx| {
                    let mut query = tx.prepare_cached(
                        "SELECT id, target, user, state, password, detail FROM users
                         WHERE job = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                    )?;
                    let rows = query
                        .query_map(params![job, after, PAGE as i64], |row| {
                            Ok((
                                row.get::<_, String>(1)?,
                                UserRecord {
                                    seq: row.get(0)?,
                                    user: row.get(2)?,
                                    state: state(row.get(3)?),
                                    password: row.get::<_, Option<String>>(4)?.map(Secret::new),
                                    detail: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                                },
                            ))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows)
                })
                .await?;
            let Some((_, last)) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            for (target, user) in page {
                visit(&target, user)?;
            }
        }
    }
}

/// A stored state; one no rekey writes reads as planned, the reading that loses
/// nothing.
fn state(code: i64) -> UserState {
    UserState::from_code(code).unwrap_or(UserState::Planned)
}

#[async_trait]
impl JobStore for Journal {
    async fn pending(
        &self,
        scope: Scope<'_>,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<PendingUser>> {
        let (job, target) = (scope.job.to_owned(), scope.target.to_owned());
        self.writer
            .read(move |tx| {
                let mut query = tx.prepare_cached(
                    "SELECT id, user, state, password FROM users
                     WHERE job = ?1 AND target = ?2 AND id > ?3 AND state IN (?5, ?6)
                     ORDER BY id LIMIT ?4",
                )?;
                let rows = query
                    .query_map(
                        params![
                            job,
                            target,
                            after,
                            limit as i64,
                            UserState::Planned.code(),
                            UserState::Sending.code()
                        ],
                        |row| {
                            Ok(PendingUser {
                                seq: row.get(0)?,
                                user: row.get(1)?,
                                state: state(row.get(2)?),
                                password: row.get::<_, Option<String>>(3)?.map(Secret::new),
                            })
                        },
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    async fn record_intents(&self, scope: Scope<'_>, intents: Vec<Intent>) -> anyhow::Result<()> {
        let job = scope.job.to_owned();
        let count = intents.len();
        let planned = self
            .writer
            .call(move |tx| {
                // Only a user still planned gets an intent: a user already sending
                // belongs to another run of this job. All or none. (Users are
                // found by id: `+job` keeps the planner off the job's index.)
                let seqs =
                    serde_json::to_string(&intents.iter().map(|i| i.seq).collect::<Vec<_>>())
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                let planned: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM users
                     WHERE +job = ?1 AND state = ?2 AND id IN (SELECT value FROM json_each(?3))",
                    params![job, UserState::Planned.code(), seqs],
                    |row| row.get(0),
                )?;
                if planned != intents.len() as i64 {
                    return Ok(planned);
                }
                let mut update = tx.prepare_cached(
                    "UPDATE users SET state = ?2, password = ?3 WHERE id = ?1 AND job = ?4",
                )?;
                for intent in &intents {
                    update.execute(params![
                        intent.seq,
                        UserState::Sending.code(),
                        intent.password.as_ref().map(Secret::expose),
                        job
                    ])?;
                }
                Ok(planned)
            })
            .await?;
        if planned != count as i64 {
            bail!(
                "{} of {count} users are no longer planned: is another rekey running job {}?",
                count as i64 - planned,
                scope.job
            );
        }
        Ok(())
    }

    fn record_outcomes(&self, scope: Scope<'_>, outcomes: Vec<UserRecord>) {
        let job = scope.job.to_owned();
        self.writer.enqueue(move |tx| {
            // One prepared statement run per user, found by its id: measured about
            // twice as fast as one statement over a JSON array of the group (each
            // `->>` parses the array element again).
            let mut update = tx.prepare_cached(
                "UPDATE users SET state = ?2, password = ?3, detail = ?4
                 WHERE id = ?1 AND job = ?5 AND state = ?6",
            )?;
            for o in &outcomes {
                update.execute(params![
                    o.seq,
                    o.state.code(),
                    o.password.as_ref().map(Secret::expose),
                    Some(o.detail.as_str()).filter(|d| !d.is_empty()),
                    job,
                    UserState::Sending.code()
                ])?;
            }
            Ok(())
        });
    }

    async fn flush(&self) -> anyhow::Result<()> {
        self.writer.flush().await
    }
}
