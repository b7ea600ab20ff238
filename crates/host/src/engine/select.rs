//! Resolving who a job resets.

use std::collections::HashSet;
use std::path::PathBuf;

use rekey_api::ConnectorError;

use crate::results::{ResultRow, Status};
use crate::target::Target;
use crate::users_file::UsersFile;

/// Who to reset.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Ids given on the command line.
    Ids(Vec<String>),
    /// A users file.
    File(PathBuf),
    /// Every account the connector lists.
    All,
}

/// The resolved selection.
#[derive(Debug, Default)]
pub struct Selected {
    /// The users to reset, in order, without duplicates.
    pub users: Vec<String>,
    /// Rows for users set aside (excluded, or the connector's own account).
    pub set_aside: Vec<ResultRow>,
    /// How many repeated ids were dropped.
    pub duplicates: usize,
}

/// Why resolving failed.
#[derive(Debug)]
pub enum SelectError {
    /// The users file cannot be read (a usage error).
    Input(anyhow::Error),
    /// The connector could not list users.
    Listing(ConnectorError),
}

/// Resolves `selection` against `target`, setting aside `exclude` (added to the
/// target's own `exclude`) and `own_account`.
pub async fn select(
    target: &Target,
    selection: &Selection,
    exclude: &[String],
    own_account: Option<&str>,
) -> Result<Selected, SelectError> {
    let mut filter = Filter::new(target, exclude, own_account);
    match selection {
        Selection::Ids(ids) => {
            for id in ids {
                filter.offer(id.trim());
            }
        }
        Selection::File(path) => {
            for id in UsersFile::open(path).map_err(SelectError::Input)? {
                filter.offer(&id.map_err(SelectError::Input)?);
            }
        }
        Selection::All => {
            let mut cursor = None;
            loop {
                let page = target
                    .connector
                    .list_users(cursor)
                    .await
                    .map_err(SelectError::Listing)?;
                for user in page.users {
                    filter.offer(&user.id);
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(filter.selected)
}

struct Filter<'a> {
    target: &'a Target,
    seen: HashSet<String>,
    exclude: HashSet<String>,
    own_account: Option<String>,
    selected: Selected,
}

impl<'a> Filter<'a> {
    fn new(target: &'a Target, exclude: &[String], own_account: Option<&str>) -> Self {
        let exclude = target
            .config
            .exclude
            .iter()
            .chain(exclude)
            .map(|id| target.id_key(id.trim()))
            .collect();
        Filter {
            target,
            seen: HashSet::new(),
            exclude,
            own_account: own_account.map(|id| target.id_key(id)),
            selected: Selected::default(),
        }
    }

    fn offer(&mut self, id: &str) {
        if id.is_empty() {
            return;
        }
        let key = self.target.id_key(id);
        if !self.seen.insert(key.clone()) {
            self.selected.duplicates += 1;
            return;
        }
        let reason = if self.exclude.contains(&key) {
            Some("excluded")
        } else if self.own_account.as_deref() == Some(key.as_str()) {
            Some("the account the connector logs in as; rekey never resets it")
        } else {
            None
        };
        match reason {
            Some(reason) => self.selected.set_aside.push(ResultRow {
                user: id.to_owned(),
                status: Status::Skipped,
                password: None,
                detail: reason.to_owned(),
            }),
            None => self.selected.users.push(id.to_owned()),
        }
    }
}
