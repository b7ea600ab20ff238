//! [`PagedListing`]: for vendors that return every account in one reply.

use tokio::sync::Mutex;

use crate::error::ConnectorError;
use crate::model::{UserEntry, UserPage};

/// Hands out, in bounded pages, a listing the vendor returns all at once, so that
/// no single reply across the plugin boundary holds every user.
///
/// The first page (no cursor) fetches the listing; later pages read the kept copy
/// (fetching again if it is gone); after the last page the copy is dropped. The
/// cursor is the offset of the next page.
#[derive(Debug)]
pub struct PagedListing {
    page_size: usize,
    users: Mutex<Option<Vec<UserEntry>>>,
}

impl PagedListing {
    /// Pages of `page_size` users (at least one).
    pub fn new(page_size: usize) -> Self {
        PagedListing {
            page_size: page_size.max(1),
            users: Mutex::new(None),
        }
    }

    /// The page at `cursor`, fetching the listing with `fetch` when needed.
    pub async fn page<F, Fut>(
        &self,
        cursor: Option<String>,
        fetch: F,
    ) -> Result<UserPage, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<UserEntry>, ConnectorError>>,
    {
        let offset: usize = match &cursor {
            None => 0,
            Some(cursor) => cursor
                .parse()
                .map_err(|_| ConnectorError::fatal(format!("unknown listing cursor `{cursor}`")))?,
        };
        let mut kept = self.users.lock().await;
        let users = match kept.take() {
            Some(users) if cursor.is_some() => users,
            _ => fetch().await?,
        };
        let end = offset.saturating_add(self.page_size).min(users.len());
        let page = users.get(offset..end).unwrap_or_default().to_vec();
        let next = (end < users.len()).then(|| end.to_string());
        if next.is_some() {
            *kept = Some(users);
        }
        Ok(UserPage { users: page, next })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn fetches_once_and_hands_out_pages() {
        let listing = PagedListing::new(2);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok((1..=5).map(|i| UserEntry::new(format!("u{i}"))).collect())
        };
        let mut cursor = None;
        let mut ids = Vec::new();
        loop {
            let page = listing.page(cursor, fetch).await.unwrap();
            assert!(page.users.len() <= 2);
            ids.extend(page.users.into_iter().map(|u| u.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(ids, ["u1", "u2", "u3", "u4", "u5"]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // A new listing fetches afresh; a bad cursor is refused.
        listing.page(None, fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert!(listing.page(Some("x".into()), fetch).await.is_err());
    }
}
