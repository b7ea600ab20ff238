//! [`PagedListing`]: for vendors that return every account in one reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::{ConnectorError, UserEntry, UserPage};

/// What a vendor's full user list is kept as: the entries handed out in pages, and
/// whatever else the connector wants from the same fetch (an index by id, say).
pub trait UserList: Send + Sync + 'static {
    /// The accounts, in the order pages hand them out.
    fn users(&self) -> &[UserEntry];
}

impl UserList for Vec<UserEntry> {
    fn users(&self) -> &[UserEntry] {
        self
    }
}

/// Hands out, in bounded pages, a listing the vendor returns all at once, so that
/// no single reply across the plugin boundary holds every user; and, when asked,
/// shares what it fetched with the rest of the connector.
///
/// By default the first page (no cursor) fetches the list; later pages read the
/// kept copy (fetching again if it is gone); after the last page the copy is
/// dropped. The cursor is the offset of the next page.
///
/// With [`reuse_for`](Self::reuse_for), every fetch is also kept as the *latest*
/// list: a listing that starts soon after a fetch (a `check` that fetched the list
/// to prove the credentials, say) hands that out instead of fetching again, and
/// [`latest`](Self::latest) gives it to any other call (to spell an id as the
/// vendor does, or to tell an unknown user), fetching once however many callers
/// ask at once. `D` is then usually the connector's own type, holding the entries
/// and an index.
///
/// ```
/// use rekey_api::{ConnectorError, PagedListing, UserEntry};
///
/// # async fn demo() -> Result<(), ConnectorError> {
/// let listing: PagedListing = PagedListing::new(2);
/// let fetch = || async {
///     Ok((1..=3).map(|i| UserEntry::new(format!("u{i}"))).collect::<Vec<_>>())
/// };
/// let first = listing.page(None, fetch).await?;
/// assert_eq!(first.users.len(), 2);
/// let second = listing.page(first.next, fetch).await?; // no second fetch
/// assert_eq!(second.users[0].id, "u3");
/// assert!(second.next.is_none());
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub struct PagedListing<D: UserList = Vec<UserEntry>> {
    page_size: usize,
    /// How long a kept latest list may start a listing; `None`: nothing is kept
    /// beyond a listing.
    reuse: Option<Duration>,
    /// The latest list fetched, and when.
    latest: Mutex<Option<(Arc<D>, Instant)>>,
    /// The list that the listing in progress hands out.
    pinned: Mutex<Option<Arc<D>>>,
}

impl<D: UserList> std::fmt::Debug for PagedListing<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedListing")
            .field("page_size", &self.page_size)
            .field("reuse", &self.reuse)
            .finish_non_exhaustive()
    }
}

impl<D: UserList> PagedListing<D> {
    /// Pages of `page_size` users (at least one).
    pub fn new(page_size: usize) -> Self {
        PagedListing {
            page_size: page_size.max(1),
            reuse: None,
            latest: Mutex::new(None),
            pinned: Mutex::new(None),
        }
    }

    /// Keeps every fetched list as the latest, and starts a listing from it when it
    /// is younger than `age` instead of fetching again.
    pub fn reuse_for(mut self, age: Duration) -> Self {
        self.reuse = Some(age);
        self
    }

    /// The page at `cursor`, fetching the list with `fetch` when needed.
    pub async fn page<F, Fut>(
        &self,
        cursor: Option<String>,
        fetch: F,
    ) -> Result<UserPage, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<D, ConnectorError>>,
    {
        let offset: usize = match &cursor {
            None => 0,
            Some(cursor) => cursor
                .parse()
                .map_err(|_| ConnectorError::fatal(format!("unknown listing cursor `{cursor}`")))?,
        };
        let mut pinned = self.pinned.lock().await;
        let list = match (cursor.is_some(), pinned.take()) {
            (true, Some(list)) => list,
            (false, _) => match self.recent().await {
                Some(list) => list,
                None => self.fetched(fetch).await?,
            },
            // The listing's copy is gone (another listing started meanwhile).
            (true, None) => self.fetched(fetch).await?,
        };
        let users = list.users();
        let end = offset.saturating_add(self.page_size).min(users.len());
        let page = users.get(offset..end).unwrap_or_default().to_vec();
        let next = (end < users.len()).then(|| end.to_string());
        if next.is_some() {
            *pinned = Some(list);
        }
        Ok(UserPage { users: page, next })
    }

    /// Fetches the list now and keeps it as the latest.
    pub async fn refresh<F, Fut>(&self, fetch: F) -> Result<Arc<D>, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<D, ConnectorError>>,
    {
        let list = Arc::new(fetch().await?);
        *self.latest.lock().await = Some((Arc::clone(&list), Instant::now()));
        Ok(list)
    }

    /// The latest list, however old; fetched now (once, however many callers ask
    /// at the same time) when there is none yet.
    pub async fn latest<F, Fut>(&self, fetch: F) -> Result<Arc<D>, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<D, ConnectorError>>,
    {
        let mut latest = self.latest.lock().await;
        if let Some((list, _)) = latest.as_ref() {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(fetch().await?);
        *latest = Some((Arc::clone(&list), Instant::now()));
        Ok(list)
    }

    /// The latest list, if reuse is on and it is young enough to start a listing.
    async fn recent(&self) -> Option<Arc<D>> {
        let age = self.reuse?;
        let latest = self.latest.lock().await;
        latest
            .as_ref()
            .filter(|(_, fetched)| fetched.elapsed() < age)
            .map(|(list, _)| Arc::clone(list))
    }

    /// Fetches for a listing, keeping the list as the latest when reuse is on.
    async fn fetched<F, Fut>(&self, fetch: F) -> Result<Arc<D>, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<D, ConnectorError>>,
    {
        if self.reuse.is_some() {
            return self.refresh(fetch).await;
        }
        Ok(Arc::new(fetch().await?))
    }
}

/// One page of a listing the vendor pages by number (`?page=1`, `?page=2`, ...,
/// `page_size` accounts a page): `fetch` gets the number of the page to fetch (1
/// for the first page, then the one the cursor names), and a full page is followed
/// by the next, so the listing ends at the first page that is not full.
///
/// ```
/// use rekey_api::{ConnectorError, UserEntry, numbered_page};
///
/// # async fn demo() -> Result<(), ConnectorError> {
/// // A vendor with 5 accounts, 2 a page.
/// let fetch = |page: u64| async move {
///     let first = (page - 1) * 2;
///     Ok((first..5.min(first + 2)).map(|i| UserEntry::new(format!("u{i}"))).collect())
/// };
/// let one = numbered_page(None, 2, fetch).await?;
/// let two = numbered_page(one.next, 2, fetch).await?;
/// let three = numbered_page(two.next, 2, fetch).await?;
/// assert_eq!(three.users.len(), 1);
/// assert!(three.next.is_none());
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub async fn numbered_page<F, Fut>(
    cursor: Option<String>,
    page_size: usize,
    fetch: F,
) -> Result<UserPage, ConnectorError>
where
    F: FnOnce(u64) -> Fut,
    Fut: Future<Output = Result<Vec<UserEntry>, ConnectorError>>,
{
    let page: u64 = match &cursor {
        None => 1,
        Some(cursor) => cursor
            .parse()
            .ok()
            .filter(|&page| page >= 1)
            .ok_or_else(|| ConnectorError::fatal(format!("unknown listing cursor `{cursor}`")))?,
    };
    let users = fetch(page).await?;
    let next = (users.len() >= page_size.max(1)).then(|| (page + 1).to_string());
    Ok(UserPage { users, next })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn users(n: usize) -> Vec<UserEntry> {
        (1..=n).map(|i| UserEntry::new(format!("u{i}"))).collect()
    }

    async fn all_ids<D: UserList, F, Fut>(listing: &PagedListing<D>, fetch: F) -> Vec<String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<D, ConnectorError>>,
    {
        let mut cursor = None;
        let mut ids = Vec::new();
        loop {
            let page = listing.page(cursor, &fetch).await.unwrap();
            assert!(page.users.len() <= listing.page_size);
            ids.extend(page.users.into_iter().map(|u| u.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return ids,
            }
        }
    }

    #[tokio::test]
    async fn fetches_once_and_hands_out_pages() {
        let listing: PagedListing = PagedListing::new(2);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(users(5))
        };
        assert_eq!(
            all_ids(&listing, fetch).await,
            ["u1", "u2", "u3", "u4", "u5"]
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // A new listing fetches afresh; a bad cursor is refused.
        listing.page(None, fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert!(listing.page(Some("x".into()), fetch).await.is_err());
        // Nothing is kept beyond a listing unless asked.
        assert!(listing.latest.lock().await.is_none());
    }

    /// A list with an index, as a connector keeps it.
    struct Indexed(Vec<UserEntry>);

    impl UserList for Indexed {
        fn users(&self) -> &[UserEntry] {
            &self.0
        }
    }

    #[tokio::test]
    async fn a_recent_fetch_is_shared_with_listings_and_other_calls() {
        let listing = PagedListing::new(2).reuse_for(Duration::from_secs(60));
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Indexed(users(3)))
        };
        // `check` fetches; the listing right after reuses that fetch.
        listing.refresh(fetch).await.unwrap();
        assert_eq!(all_ids(&listing, fetch).await, ["u1", "u2", "u3"]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Other calls read the latest list without fetching.
        let (a, b) = tokio::join!(listing.latest(fetch), listing.latest(fetch));
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Too old to start a listing: fetched again, and that becomes the latest.
        let listing = PagedListing::new(2).reuse_for(Duration::ZERO);
        listing.refresh(fetch).await.unwrap();
        all_ids(&listing, fetch).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let listing: PagedListing<Indexed> = PagedListing::new(10);
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Indexed(users(1)))
        };
        let (a, b, c) = tokio::join!(
            listing.latest(fetch),
            listing.latest(fetch),
            listing.latest(fetch)
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn numbered_pages_end_at_the_first_short_page() {
        let fetch = |page: u64| async move {
            Ok((0..if page < 3 { 3 } else { 0 })
                .map(|i| UserEntry::new(format!("p{page}-{i}")))
                .collect())
        };
        let first = numbered_page(None, 3, fetch).await.unwrap();
        assert_eq!(first.users[0].id, "p1-0");
        assert_eq!(first.next.as_deref(), Some("2"));
        let third = numbered_page(Some("3".into()), 3, fetch).await.unwrap();
        assert!(third.users.is_empty() && third.next.is_none());
        for bad in ["0", "x", "-1"] {
            let error = numbered_page(Some(bad.into()), 3, fetch).await.unwrap_err();
            assert!(error.message.contains("unknown listing cursor"), "{bad}");
        }
    }
}
