//! The tenant's user list, as `GET user` returns it: all users at once.

use std::collections::HashMap;

use rekey_api::{UserEntry, UserList};

use crate::api::ListedUser;

/// The tenant's users at one moment: handed out in pages (by the connector's
/// [`PagedListing`](rekey_api::PagedListing)), and consulted to spell a login id as
/// the tenant does and to prove a login id unknown.
#[derive(Debug)]
pub(crate) struct Directory {
    users: Vec<UserEntry>,
    /// Index into `users` by lower-cased login id: login ids compare without
    /// regard to case.
    by_key: HashMap<String, usize>,
}

impl UserList for Directory {
    fn users(&self) -> &[UserEntry] {
        &self.users
    }
}

fn key(login_id: &str) -> String {
    login_id.to_lowercase()
}

impl Directory {
    /// The directory of a `GET user` reply. Entries without a login id are
    /// skipped; a login id listed twice is kept once.
    pub fn new(listed: Vec<ListedUser>) -> Directory {
        let mut users = Vec::with_capacity(listed.len());
        let mut by_key = HashMap::with_capacity(listed.len());
        for user in listed {
            let name = user.display_name();
            let Some(login_id) = user.login_id.filter(|id| !id.trim().is_empty()) else {
                continue;
            };
            if by_key.contains_key(&key(&login_id)) {
                continue;
            }
            by_key.insert(key(&login_id), users.len());
            users.push(UserEntry {
                id: login_id,
                name,
                disabled: user.disabled.unwrap_or(false),
            });
        }
        Directory { users, by_key }
    }

    /// How many users the tenant has.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// The login id as the tenant spells it, if the tenant has it.
    pub fn canonical(&self, login_id: &str) -> Option<&str> {
        self.by_key
            .get(&key(login_id))
            .map(|&i| self.users[i].id.as_str())
    }

    /// Whether the tenant has this login id.
    pub fn contains(&self, login_id: &str) -> bool {
        self.by_key.contains_key(&key(login_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(json: &str) -> Directory {
        Directory::new(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn login_ids_compare_without_case() {
        let d = directory(
            r#"[{"loginId":"JSMITH","firstName":"Jim","lastName":"Smith"},
                {"loginId":"jsmith"},{"loginId":""},{"emailAddress":"x@y"},
                {"loginId":"DPATEL","disabled":true}]"#,
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d.canonical("jSmith"), Some("JSMITH"));
        assert!(d.contains("dpatel") && !d.contains("nobody"));
        let users = d.users();
        assert_eq!(users[0].name.as_deref(), Some("Jim Smith"));
        assert!(users[1].disabled);
    }
}
