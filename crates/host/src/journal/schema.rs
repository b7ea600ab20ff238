//! The journal's tables, and the upgrade of a journal written by an older rekey.

use anyhow::{Context as _, bail};
use rusqlite::{Connection, params};

/// The schema version this rekey writes.
pub(super) const VERSION: i64 = 2;

/// The tables of version [`VERSION`].
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id           TEXT PRIMARY KEY,
    definition   TEXT NOT NULL,
    started      TEXT NOT NULL,
    updated      TEXT NOT NULL,
    state        TEXT NOT NULL,
    stop_reason  TEXT,
    known_value  TEXT,
    results_file TEXT
);
-- A job's users in selection order: `id` grows with every user planned, so a job's
-- users sort by it. Updates go by `id` and touch no index.
CREATE TABLE IF NOT EXISTS users (
    id       INTEGER PRIMARY KEY,
    job      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    target   TEXT NOT NULL,
    user     TEXT NOT NULL,
    user_key TEXT NOT NULL,
    state    INTEGER NOT NULL,
    password TEXT,
    detail   TEXT,
    -- A user once per job and target; and, led by target and user id, the index that
    -- finds the same user in other jobs (a user may be in one open job at a time).
    UNIQUE (target, user_key, job)
);
-- A job's users in id order (a target's users are planned together, so its pending
-- users are a contiguous run of this index).
CREATE INDEX IF NOT EXISTS users_by_job ON users (job, id);
-- Work the journal owes: `scrub` = erased passwords may linger in free pages or
-- the write-ahead log until the next VACUUM and checkpoint.
CREATE TABLE IF NOT EXISTS pending_work (
    name TEXT PRIMARY KEY
);
";

/// Creates the tables, or upgrades an older journal's, inside one transaction.
pub(super) fn set_up(connection: &mut Connection, path: &str) -> anyhow::Result<()> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > VERSION {
        bail!(
            "the journal {path} was written by a newer rekey (schema {version}); use that rekey, or another state_dir"
        );
    }
    if version == VERSION {
        return Ok(());
    }
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Read again under the write lock: another rekey may have set it up meanwhile.
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 1 {
        upgrade_from_v1(&tx).with_context(|| format!("cannot upgrade the journal {path}"))?;
    }
    tx.execute_batch(TABLES)?;
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Version 1 kept one target per job and its options in their own columns; version
/// 2 keeps the job's definition and the target of every user.
fn upgrade_from_v1(tx: &rusqlite::Transaction<'_>) -> anyhow::Result<()> {
    tx.execute_batch(
        "ALTER TABLE jobs RENAME TO jobs_v1;
         ALTER TABLE users RENAME TO users_v1;
         DROP INDEX IF EXISTS users_by_job;",
    )?;
    tx.execute_batch(TABLES)?;
    let jobs: Vec<(String, String, String, String, String)> = tx
        .prepare("SELECT id, target, connector, kind, options FROM jobs_v1")?
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    for (id, target, connector, kind, options) in jobs {
        let definition = v1::definition(&target, &connector, &kind, &options)
            .with_context(|| format!("job {id}"))?;
        tx.execute(
            "INSERT INTO jobs (id, definition, started, updated, state, stop_reason, known_value)
             SELECT id, ?2, started, updated, state, stop_reason, known_value FROM jobs_v1 WHERE id = ?1",
            params![id, serde_json::to_string(&definition)?],
        )?;
        tx.execute(
            "INSERT INTO users (id, job, target, user, user_key, state, password, detail)
             SELECT id, job, ?2, user, user_key, state, password, detail FROM users_v1 WHERE job = ?1",
            params![id, target],
        )?;
    }
    tx.execute_batch("DROP TABLE users_v1; DROP TABLE jobs_v1;")?;
    Ok(())
}

/// Reading version 1's job options.
mod v1 {
    use std::path::PathBuf;

    use serde::Deserialize;

    use crate::definition::{JobDefinition, JobTarget, Output, PasswordChoice};
    use crate::engine::{Concurrency, Selection};
    use crate::results::Format;

    #[derive(Deserialize)]
    struct Options {
        selection: Selection,
        #[serde(default)]
        exclude: Vec<String>,
        source: String,
        concurrency: u32,
        out: Option<PathBuf>,
        format: String,
    }

    pub(super) fn definition(
        target: &str,
        connector: &str,
        kind: &str,
        options: &str,
    ) -> anyhow::Result<JobDefinition> {
        let options: Options = serde_json::from_str(options)?;
        Ok(JobDefinition {
            targets: vec![JobTarget {
                name: target.to_owned(),
                connector: connector.to_owned(),
            }],
            kind: kind.parse().map_err(anyhow::Error::msg)?,
            selection: options.selection,
            exclude: options.exclude,
            passwords: match options.source.as_str() {
                "generate" => PasswordChoice::Generate,
                "known" => PasswordChoice::Known,
                _ => PasswordChoice::Vendor,
            },
            concurrency: Some(Concurrency::Fixed(options.concurrency)),
            output: Output {
                path: options.out,
                format: options.format.parse().unwrap_or(Format::Csv),
                recipients: Default::default(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::PasswordChoice;

    #[test]
    fn a_version_1_journal_is_upgraded_without_losing_a_password() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE jobs (id TEXT PRIMARY KEY, target TEXT NOT NULL, connector TEXT NOT NULL,
                     kind TEXT NOT NULL, options TEXT NOT NULL, started TEXT NOT NULL, updated TEXT NOT NULL,
                     state TEXT NOT NULL, stop_reason TEXT, known_value TEXT);
                 CREATE TABLE users (id INTEGER PRIMARY KEY, job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                     user TEXT NOT NULL, user_key TEXT NOT NULL, state INTEGER NOT NULL, password TEXT, detail TEXT,
                     UNIQUE (job, user_key));
                 CREATE INDEX users_by_job ON users (job, id);
                 PRAGMA user_version = 1;
                 INSERT INTO jobs VALUES ('j1', 'mail', 'smartermail', 'password',
                     '{\"selection\":{\"ids\":[\"a@x\"]},\"exclude\":[],\"source\":\"known\",\"concurrency\":4,\"out\":\"/tmp/r.csv\",\"format\":\"jsonl\"}',
                     '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z', 'stopped', 'interrupted', 'Known-Value-1');
                 INSERT INTO users VALUES (7, 'j1', 'a@x', 'a@x', 1, 'Pw-in-flight-1', NULL);",
            )
            .unwrap();
        set_up(&mut connection, "test").unwrap();
        let (definition, known): (String, String) = connection
            .query_row(
                "SELECT definition, known_value FROM jobs WHERE id = 'j1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let definition: crate::definition::JobDefinition =
            serde_json::from_str(&definition).unwrap();
        assert_eq!(definition.targets[0].name, "mail");
        assert_eq!(definition.passwords, PasswordChoice::Known);
        assert_eq!(definition.output.format, crate::results::Format::Jsonl);
        assert_eq!(known, "Known-Value-1");
        let (target, password): (String, String) = connection
            .query_row("SELECT target, password FROM users WHERE id = 7", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            (target.as_str(), password.as_str()),
            ("mail", "Pw-in-flight-1")
        );
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
    }
}
