//! The listing: pages end, ids are unique and stable.

use std::collections::HashSet;
use std::time::Duration;

use rekey_api::{Capability, Connector, Metadata};

use super::call;
use crate::CheckResult;

/// More pages than this means the listing does not end.
const MAX_PAGES: usize = 100_000;

/// What the listing check found.
pub(super) struct Listing {
    pub result: CheckResult,
    /// One id the target lists, to shape a made-up id like it.
    pub sample: Option<String>,
}

/// Lists every account twice.
pub(super) async fn listing(
    connector: &dyn Connector,
    metadata: &Metadata,
    deadline: Duration,
) -> Listing {
    if !metadata.has(Capability::ListUsers) {
        return Listing {
            result: CheckResult::skip("listing", "the connector does not list users"),
            sample: None,
        };
    }
    let first = match walk(connector, metadata, deadline).await {
        Ok(first) => first,
        Err(why) => {
            return Listing {
                result: CheckResult::fail("listing", why),
                sample: None,
            };
        }
    };
    let sample = first.ids.first().cloned();
    let result = match walk(connector, metadata, deadline).await {
        Err(why) => CheckResult::fail("listing", format!("the second listing: {why}")),
        Ok(second) => {
            let a: HashSet<&String> = first.keys.iter().collect();
            let b: HashSet<&String> = second.keys.iter().collect();
            let differ = a.symmetric_difference(&b).count();
            if differ == 0 {
                CheckResult::pass(
                    "listing",
                    format!(
                        "{} users in {} pages, ids unique and the same in two listings",
                        first.ids.len(),
                        first.pages
                    ),
                )
            } else {
                CheckResult::fail(
                    "listing",
                    format!("ids are not stable: two listings differ by {differ} ids"),
                )
            }
        }
    };
    Listing { result, sample }
}

struct Walk {
    ids: Vec<String>,
    keys: Vec<String>,
    pages: usize,
}

/// One whole listing, checking that it ends and repeats no id.
async fn walk(
    connector: &dyn Connector,
    metadata: &Metadata,
    deadline: Duration,
) -> Result<Walk, String> {
    let mut seen = HashSet::new();
    let mut walk = Walk {
        ids: Vec::new(),
        keys: Vec::new(),
        pages: 0,
    };
    let mut cursor = None;
    loop {
        let page = call(deadline, connector.list_users(cursor.clone()))
            .await
            .map_err(|e| format!("page {}: {e}", walk.pages + 1))?;
        walk.pages += 1;
        for user in page.users {
            if user.id.trim().is_empty() {
                return Err(format!("page {} has an empty id", walk.pages));
            }
            let key = if metadata.case_insensitive_ids {
                user.id.to_lowercase()
            } else {
                user.id.clone()
            };
            if !seen.insert(key.clone()) {
                return Err(format!(
                    "id `{}` is listed twice (page {})",
                    user.id, walk.pages
                ));
            }
            walk.ids.push(user.id);
            walk.keys.push(key);
        }
        match page.next {
            None => return Ok(walk),
            Some(next) if Some(&next) == cursor.as_ref() => {
                return Err(format!(
                    "page {} gives back its own cursor: the listing would never end",
                    walk.pages
                ));
            }
            Some(_) if walk.pages >= MAX_PAGES => {
                return Err(format!("the listing did not end after {MAX_PAGES} pages"));
            }
            Some(next) => cursor = Some(next),
        }
    }
}
