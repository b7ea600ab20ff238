//! Job rows: what a job is, where it stands, and whether it still holds passwords.

use anyhow::{Context as _, anyhow, bail};
use rekey_api::Secret;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Journal, now};
use crate::definition::JobDefinition;
use crate::engine::{Counts, UserState};
use crate::results::FileIdentity;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Its users are being resolved; nothing has been sent.
    Planning,
    /// Resetting (or it was, when its process died).
    Running,
    /// Stopped early (interrupted, target unreachable, authentication refused,
    /// quota spent, results file unwritable); `rekey resume` finishes it.
    Stopped,
    /// Every user settled; results delivered; passwords erased.
    Finished,
    /// Given up with `rekey discard`; results delivered; passwords erased.
    Discarded,
}

impl JobState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Planning => "planning",
            JobState::Running => "running",
            JobState::Stopped => "stopped",
            JobState::Finished => "finished",
            JobState::Discarded => "discarded",
        }
    }

    fn parse(text: &str) -> JobState {
        match text {
            "planning" => JobState::Planning,
            "running" => JobState::Running,
            "finished" => JobState::Finished,
            "discarded" => JobState::Discarded,
            _ => JobState::Stopped,
        }
    }

    /// Whether the job is over: nothing more can be done with it.
    pub fn is_closed(self) -> bool {
        matches!(self, JobState::Finished | JobState::Discarded)
    }
}

/// A recorded job.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// What it is.
    pub definition: JobDefinition,
    /// When it started (UTC, RFC 3339).
    pub started: String,
    /// Where it stands.
    pub state: JobState,
    /// Why it stopped, if it did.
    pub stop_reason: Option<String>,
    /// Its users by state, over all its targets.
    pub counts: Counts,
    /// Whether the journal still holds any of its passwords.
    pub holds_passwords: bool,
    /// The results file this job created, if it wrote one.
    pub results_file: Option<FileIdentity>,
}

/// Another job that still holds a user a new job wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenJob {
    /// That job's id.
    pub job: String,
    /// The target.
    pub target: String,
    /// The user, as that job has it.
    pub user: String,
}

impl Journal {
    /// Records a new job, in state planning (durably).
    pub async fn create_job(
        &self,
        id: &str,
        definition: &JobDefinition,
        known_value: Option<&Secret>,
    ) -> anyhow::Result<()> {
        let id = id.to_owned();
        let definition = serde_json::to_string(definition)?;
        let known = known_value.cloned();
        self.writer
            .call(move |tx| {
                let now = now();
                tx.execute(
                    "INSERT INTO jobs (id, definition, started, updated, state, known_value)
                     VALUES (?1, ?2, ?3, ?3, 'planning', ?4)",
                    params![id, definition, now, known.as_ref().map(Secret::expose)],
                )
                .map(drop)
            })
            .await
    }

    /// Sets a job's state (and stop reason).
    pub async fn set_state(
        &self,
        job: &str,
        state: JobState,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        let job = job.to_owned();
        self.writer
            .call(move |tx| {
                tx.execute(
                    "UPDATE jobs SET state = ?2, stop_reason = ?3, updated = ?4 WHERE id = ?1",
                    params![job, state.as_str(), reason, now()],
                )
                .map(drop)
            })
            .await
    }

    /// Records which file the job's results are in (`None`: standard output).
    pub async fn set_results_file(
        &self,
        job: &str,
        file: Option<FileIdentity>,
    ) -> anyhow::Result<()> {
        let job = job.to_owned();
        let file = file.map(|f| serde_json::to_string(&f)).transpose()?;
        self.writer
            .call(move |tx| {
                tx.execute(
                    "UPDATE jobs SET results_file = ?2 WHERE id = ?1",
                    params![job, file],
                )
                .map(drop)
            })
            .await
    }

    /// Forgets a job entirely: one that never sent anything.
    pub async fn delete_job(&self, job: &str) -> anyhow::Result<()> {
        let job = job.to_owned();
        self.writer
            .call(move |tx| {
                tx.execute("DELETE FROM users WHERE job = ?1", params![job])?;
                tx.execute("DELETE FROM jobs WHERE id = ?1", params![job])
                    .map(drop)
            })
            .await
    }

    /// The job with id `id`, or the only one whose id starts with it.
    pub async fn job(&self, id: &str) -> anyhow::Result<JobRecord> {
        let prefix = id.to_owned();
        let ids: Vec<String> = self
            .writer
            .read(move |tx| {
                let mut query = tx.prepare(
                    "SELECT id FROM jobs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
                )?;
                let ids = query
                    .query_map(params![prefix], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(ids)
            })
            .await?;
        let id = match ids.as_slice() {
            [] => bail!(
                "no job `{id}` in the journal {}; `rekey jobs` lists them",
                self.path.display()
            ),
            [one] => one.clone(),
            many if many.iter().any(|m| m == id) => id.to_owned(),
            many => bail!("`{id}` names {} jobs; give more of the id", many.len()),
        };
        let mut jobs = self.load_jobs(Some(id)).await?;
        jobs.pop()
            .ok_or_else(|| anyhow!("the job vanished from the journal"))
    }

    /// Every job, newest first.
    pub async fn jobs(&self) -> anyhow::Result<Vec<JobRecord>> {
        self.load_jobs(None).await
    }

    async fn load_jobs(&self, only: Option<String>) -> anyhow::Result<Vec<JobRecord>> {
        let rows = self
            .writer
            .read(move |tx| {
                let mut query = tx.prepare(
                    "SELECT id, definition, started, state, stop_reason, results_file,
                            known_value IS NOT NULL OR EXISTS
                                (SELECT 1 FROM users WHERE users.job = jobs.id AND password IS NOT NULL)
                     FROM jobs WHERE ?1 IS NULL OR id = ?1 ORDER BY started DESC, id DESC",
                )?;
                let jobs = query
                    .query_map(params![only], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, Option<String>>(4)?,
                            row.get::<_, Option<String>>(5)?,
                            row.get::<_, bool>(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut with_counts = Vec::with_capacity(jobs.len());
                for job in jobs {
                    let counts = count_users(tx, &job.0, None)?;
                    with_counts.push((job, counts));
                }
                Ok(with_counts)
            })
            .await?;
        rows.into_iter()
            .map(
                |((id, definition, started, state, stop_reason, results_file, holds), counts)| {
                    let definition = serde_json::from_str(&definition).map_err(|e| {
                        anyhow!(
                            "job {id} has a definition this rekey cannot read ({}); was it written by a newer rekey?",
                            rekey_api::json_error_position(&e)
                        )
                    })?;
                    let results_file = results_file
                        .map(|f| serde_json::from_str(&f))
                        .transpose()
                        .with_context(|| format!("job {id} has an unreadable results file record"))?;
                    Ok(JobRecord {
                        id,
                        definition,
                        started,
                        state: JobState::parse(&state),
                        stop_reason,
                        counts,
                        holds_passwords: holds,
                        results_file,
                    })
                },
            )
            .collect()
    }

    /// The job's one known value, while the journal keeps it.
    pub async fn known_value(&self, job: &str) -> anyhow::Result<Option<Secret>> {
        let job = job.to_owned();
        self.writer
            .read(move |tx| {
                tx.query_row(
                    "SELECT known_value FROM jobs WHERE id = ?1",
                    params![job],
                    |row| row.get::<_, Option<String>>(0),
                )
                .optional()
                .map(|value| value.flatten().map(Secret::new))
            })
            .await
    }

    /// Another job, not closed, in which a user planned in `job` is still planned
    /// or has an unknown outcome on the same target.
    pub async fn open_job_holding_a_user_of(&self, job: &str) -> anyhow::Result<Option<OpenJob>> {
        let job = job.to_owned();
        self.writer
            .read(move |tx| {
                // Most of the time no other job is open: then there is nothing to
                // look up, user by user.
                let others: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM jobs WHERE id <> ?1 AND state NOT IN ('finished', 'discarded'))",
                    params![job],
                    |row| row.get(0),
                )?;
                if !others {
                    return Ok(None);
                }
                tx.query_row(
                    "SELECT other.job, other.target, other.user
                     FROM users AS mine
                     JOIN users AS other
                       ON other.target = mine.target AND other.user_key = mine.user_key
                          AND other.job <> mine.job
                     JOIN jobs ON jobs.id = other.job
                     WHERE mine.job = ?1 AND mine.state = ?2
                       AND other.state IN (?2, ?3)
                       AND jobs.state NOT IN ('finished', 'discarded')
                     LIMIT 1",
                    params![job, UserState::Planned.code(), UserState::Sending.code()],
                    |row| {
                        Ok(OpenJob {
                            job: row.get(0)?,
                            target: row.get(1)?,
                            user: row.get(2)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }

    /// A job's users by state, on one target or all.
    pub async fn counts(&self, job: &str, target: Option<&str>) -> anyhow::Result<Counts> {
        let job = job.to_owned();
        let target = target.map(str::to_owned);
        self.writer
            .read(move |tx| count_users(tx, &job, target.as_deref()))
            .await
    }
}

fn count_users(
    connection: &Connection,
    job: &str,
    target: Option<&str>,
) -> rusqlite::Result<Counts> {
    let mut query = connection.prepare_cached(
        "SELECT state, COUNT(*) FROM users WHERE job = ?1 AND (?2 IS NULL OR target = ?2) GROUP BY state",
    )?;
    let mut counts = Counts::default();
    let rows = query.query_map(params![job, target], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        // A state no rekey writes counts as planned: the reading that loses nothing.
        let state = UserState::from_code(state).unwrap_or(UserState::Planned);
        counts.add(state, n.max(0) as u64);
    }
    Ok(counts)
}
