//! Resolving who a job resets, streamed into a [`PlanSink`]: never all users in
//! memory at once.

use std::collections::HashSet;
use std::path::PathBuf;

use async_trait::async_trait;
use rekey_api::{Connector, ConnectorError};
use serde::{Deserialize, Serialize};

use super::retry::{RetryPolicy, retrying};
use crate::users_file::{Columns, UsersFile};

/// Users handed to the sink at once.
const BATCH: usize = 1000;

/// Who to reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Ids given on the command line.
    Ids(Vec<String>),
    /// A users file (an absolute path once recorded in a job).
    File(PathBuf),
    /// Every account the connector lists.
    All,
}

/// A user to add to a job's plan.
#[derive(Debug)]
pub struct PlanEntry {
    /// The id as given.
    pub user: String,
    /// The id as compared (case-folded where the connector says so).
    pub key: String,
    /// Why the user is set aside, if it is.
    pub set_aside: Option<String>,
}

/// Where planned users go.
#[async_trait]
pub trait PlanSink: Send {
    /// Takes a batch of users, in order, and counts them.
    async fn add(&mut self, entries: Vec<PlanEntry>) -> anyhow::Result<Planned>;
}

/// How the plan came out.
#[derive(Debug, Default, Clone, Copy)]
pub struct Planned {
    /// Users to reset.
    pub selected: usize,
    /// Users set aside (excluded, or the connector's own account).
    pub set_aside: usize,
    /// Ids given more than once (or already planned before an interruption).
    pub repeated: usize,
}

impl Planned {
    /// Counts one entry: `added` unless it was already in the plan.
    pub fn count(&mut self, entry: &PlanEntry, added: bool) {
        match (added, entry.set_aside.is_some()) {
            (false, _) => self.repeated += 1,
            (true, true) => self.set_aside += 1,
            (true, false) => self.selected += 1,
        }
    }

    fn add(&mut self, other: Planned) {
        self.selected += other.selected;
        self.set_aside += other.set_aside;
        self.repeated += other.repeated;
    }
}

/// Why planning failed.
#[derive(Debug)]
pub enum PlanError {
    /// The users file cannot be read (a usage error).
    Input(anyhow::Error),
    /// The connector could not list users.
    Listing(ConnectorError),
    /// The plan could not be recorded.
    Store(anyhow::Error),
}

/// What decides who is set aside, which column of a users file is read, and how
/// listing retries.
pub struct Rules<'a> {
    /// Whose ids a CSV users file gives (the target's own column, or `user`).
    pub columns: Columns<'a>,
    /// How passing failures of the listing are retried.
    pub retry: RetryPolicy,
    /// Users never to touch (the target's `exclude` and `--exclude`).
    pub exclude: &'a [String],
    /// The account the connector logs in as.
    pub own_account: Option<&'a str>,
    /// Whether ids compare without regard to case.
    pub case_insensitive: bool,
}

impl Rules<'_> {
    fn key(&self, id: &str) -> String {
        if self.case_insensitive {
            id.to_lowercase()
        } else {
            id.to_owned()
        }
    }
}

/// Resolves `selection` into `sink`.
pub async fn plan(
    connector: &dyn Connector,
    selection: &Selection,
    rules: &Rules<'_>,
    sink: &mut dyn PlanSink,
) -> Result<Planned, PlanError> {
    let excluded: HashSet<String> = rules
        .exclude
        .iter()
        .map(|id| rules.key(id.trim()))
        .collect();
    let own = rules.own_account.map(|id| rules.key(id));
    let mut planned = Planned::default();
    let mut batch = Vec::with_capacity(BATCH);
    let offer = |id: &str, batch: &mut Vec<PlanEntry>| {
        let id = id.trim();
        if id.is_empty() {
            return;
        }
        let key = rules.key(id);
        let set_aside = if excluded.contains(&key) {
            Some("excluded".to_owned())
        } else if own.as_deref() == Some(key.as_str()) {
            Some("the account the connector logs in as; rekey never resets it".to_owned())
        } else {
            None
        };
        batch.push(PlanEntry {
            user: id.to_owned(),
            key,
            set_aside,
        });
    };
    match selection {
        Selection::Ids(ids) => {
            for id in ids {
                offer(id, &mut batch);
            }
        }
        Selection::File(path) => {
            for id in UsersFile::open(path, rules.columns).map_err(PlanError::Input)? {
                offer(&id.map_err(PlanError::Input)?, &mut batch);
                if batch.len() >= BATCH {
                    flush(sink, &mut batch, &mut planned).await?;
                }
            }
        }
        Selection::All => {
            let mut cursor = None;
            loop {
                let page = retrying(&rules.retry, || connector.list_users(cursor.clone()))
                    .await
                    .map_err(PlanError::Listing)?;
                for user in page.users {
                    crate::users_file::check_user_id(&user.id).map_err(|why| {
                        PlanError::Listing(ConnectorError::fatal(format!(
                            "the connector listed a {why}"
                        )))
                    })?;
                    offer(&user.id, &mut batch);
                }
                flush(sink, &mut batch, &mut planned).await?;
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    flush(sink, &mut batch, &mut planned).await?;
    Ok(planned)
}

async fn flush(
    sink: &mut dyn PlanSink,
    batch: &mut Vec<PlanEntry>,
    planned: &mut Planned,
) -> Result<(), PlanError> {
    if !batch.is_empty() {
        planned.add(
            sink.add(std::mem::take(batch))
                .await
                .map_err(PlanError::Store)?,
        );
    }
    Ok(())
}

/// A plan printed for `--dry-run`: de-duplicated in memory, nothing recorded.
pub struct PrintedPlan<W> {
    out: W,
    seen: HashSet<String>,
    label: String,
}

impl<W: std::io::Write + Send> PrintedPlan<W> {
    /// Prints to `out`: `reset\tUSER` or `skip\tUSER\tREASON` a line, with
    /// `LABEL\t` before the user when a label is given (the target, when a job has
    /// several).
    pub fn new(out: W, label: Option<&str>) -> Self {
        PrintedPlan {
            out,
            seen: HashSet::new(),
            label: label.map_or_else(String::new, |l| format!("{l}\t")),
        }
    }
}

#[async_trait]
impl<W: std::io::Write + Send> PlanSink for PrintedPlan<W> {
    async fn add(&mut self, entries: Vec<PlanEntry>) -> anyhow::Result<Planned> {
        let mut planned = Planned::default();
        for entry in entries {
            let added = self.seen.insert(entry.key.clone());
            planned.count(&entry, added);
            match (added, &entry.set_aside) {
                (false, _) => {}
                (true, None) => writeln!(self.out, "reset\t{}{}", self.label, entry.user)?,
                (true, Some(reason)) => {
                    writeln!(self.out, "skip\t{}{}\t{reason}", self.label, entry.user)?
                }
            }
        }
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use rekey_api::{CheckReport, ResetRequest, UserEntry, UserOutcome, UserPage};

    use super::*;

    /// Lists three pages of users.
    struct Lister;

    #[async_trait]
    impl Connector for Lister {
        async fn check(&self) -> Result<CheckReport, ConnectorError> {
            Ok(CheckReport::default())
        }

        async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
            let page: usize = cursor.map_or(0, |c| c.parse().unwrap());
            Ok(UserPage {
                users: ["Ann@X", "bob@x", "Carol@x"]
                    .iter()
                    .map(|u| UserEntry::new(format!("{page}{u}")))
                    .collect(),
                next: (page < 2).then(|| (page + 1).to_string()),
            })
        }

        async fn reset(&self, _: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
            unreachable!("planning never resets")
        }
    }

    /// Keeps what it is given.
    #[derive(Default)]
    struct Kept(Vec<PlanEntry>);

    #[async_trait]
    impl PlanSink for Kept {
        async fn add(&mut self, entries: Vec<PlanEntry>) -> anyhow::Result<Planned> {
            let mut planned = Planned::default();
            for entry in entries {
                let added = !self.0.iter().any(|e| e.key == entry.key);
                planned.count(&entry, added);
                if added {
                    self.0.push(entry);
                }
            }
            Ok(planned)
        }
    }

    fn set_aside(kept: &Kept) -> Vec<(&str, &str)> {
        kept.0
            .iter()
            .filter_map(|e| e.set_aside.as_deref().map(|why| (e.user.as_str(), why)))
            .collect()
    }

    #[tokio::test]
    async fn excluded_users_and_the_own_account_are_set_aside() {
        let exclude = ["  1bob@X ".to_owned(), "nobody".to_owned()];
        let rules = Rules {
            columns: Columns::single("mail"),
            retry: RetryPolicy::default(),
            exclude: &exclude,
            own_account: Some("2carol@X"),
            case_insensitive: true,
        };
        let mut kept = Kept::default();
        let planned = plan(&Lister, &Selection::All, &rules, &mut kept)
            .await
            .unwrap();
        assert_eq!((planned.selected, planned.set_aside), (7, 2));
        assert_eq!(
            set_aside(&kept),
            [
                ("1bob@x", "excluded"),
                (
                    "2Carol@x",
                    "the account the connector logs in as; rekey never resets it"
                )
            ]
        );

        // Ids on the command line: the same rules, and case matters when the
        // connector says so.
        let rules = Rules {
            case_insensitive: false,
            own_account: None,
            ..rules
        };
        let ids = ["a", "nobody", "NOBODY", "a"].map(String::from).to_vec();
        let mut kept = Kept::default();
        let planned = plan(&Lister, &Selection::Ids(ids), &rules, &mut kept)
            .await
            .unwrap();
        assert_eq!(
            (planned.selected, planned.set_aside, planned.repeated),
            (2, 1, 1)
        );
        assert_eq!(set_aside(&kept), [("nobody", "excluded")]);
    }
}
