//! The daily API quota, counted across runs.
//!
//! ADManager Plus allows `50 × help-desk technician licences` successful objects a
//! day, shared by every technician and task (vendor-apis.md §4.4). rekey keeps its
//! own count in the target's state directory so that it never sends more than
//! `daily_limit` resets in one of the vendor's days:
//!
//! - Before a request, its users' share is *reserved*: added to the count and
//!   written to disk (temp file, fsync, rename) before anything is sent, so a crash
//!   mid-request can only over-count.
//! - After the reply, the users that succeeded stay counted, so do those whose
//!   outcome is unknown (the vendor may have applied them), and the rest are
//!   released.
//! - When the quota has no room, a request waits for reservations in flight to
//!   settle (they may free room) and then takes what is left; users that do not fit
//!   are not sent.
//! - The day is the vendor's: the UTC date of the `Date` header of the latest
//!   reply, never this machine's clock. The count starts afresh when that date
//!   moves forward. Whether the vendor's day turns at UTC midnight or at the
//!   server's local midnight is not documented \[INF\]: UTC is assumed.
//! - An exclusive lock on `admanager.lock`, held for the connector's life, keeps
//!   two runs on the same target from spending the same quota.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use rekey_api::{ConnectorError, ErrorKind};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use tokio::sync::Notify;

const STATE_FILE: &str = "admanager-quota.json";
const LOCK_FILE: &str = "admanager.lock";

/// What is kept on disk.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The vendor's day the count is for (`2025-06-01`).
    day: String,
    /// Resets spent that day, reservations in flight included.
    used: u64,
}

#[derive(Debug)]
struct State {
    day: Option<Date>,
    /// Spent today, reservations in flight included (what is on disk).
    used: u64,
    /// Reserved and not yet settled.
    in_flight: u64,
    /// The vendor's clock, from the latest reply.
    server_now: Option<SystemTime>,
}

/// The connector's quota account for one target.
#[derive(Debug)]
pub(crate) struct Quota {
    limit: u64,
    path: PathBuf,
    state: Mutex<State>,
    settled: Notify,
    /// Held (locked) for the connector's life.
    _lock: File,
}

/// Room taken in the quota for one request. Dropping it without
/// [`settle`](Reservation::settle) keeps all of it counted (the outcome of a
/// cancelled request is unknown).
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    quota: &'a Quota,
    granted: u64,
    open: bool,
}

impl Quota {
    /// Opens the quota account in `state_dir`, taking the target's lock.
    pub(crate) fn open(
        state_dir: &Path,
        limit: u64,
        target: &str,
    ) -> Result<Quota, ConnectorError> {
        let lock_path = state_dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                ConnectorError::invalid_settings(format!(
                    "cannot open the quota lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(ConnectorError::invalid_settings(format!(
                    "another rekey run is using target `{target}` (it holds {}); two runs at once could overspend ADManager's daily API quota: wait for it to finish",
                    lock_path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(ConnectorError::invalid_settings(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )));
            }
        }
        let path = state_dir.join(STATE_FILE);
        let (day, used) = match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| {
                    ConnectorError::invalid_settings(format!(
                        "the quota file {} is unreadable ({}); it counts today's resets, so fix or remove it knowingly",
                        path.display(),
                        rekey_api::json_error_position(&e)
                    ))
                })?;
                let day = parse_day(&stored.day).ok_or_else(|| {
                    ConnectorError::invalid_settings(format!(
                        "the quota file {} holds an unreadable day `{}`",
                        path.display(),
                        stored.day
                    ))
                })?;
                (Some(day), stored.used)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, 0),
            Err(e) => {
                return Err(ConnectorError::invalid_settings(format!(
                    "cannot read the quota file {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(Quota {
            limit,
            path,
            state: Mutex::new(State {
                day,
                used,
                in_flight: 0,
                server_now: None,
            }),
            settled: Notify::new(),
            _lock: lock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the vendor's clock from a reply's `Date` header.
    pub(crate) fn observe(&self, server_now: Option<SystemTime>) {
        if let Some(now) = server_now {
            let mut state = self.lock();
            if state.server_now.is_none_or(|seen| seen < now) {
                state.server_now = Some(now);
            }
        }
    }

    /// Whether a reply has told the vendor's date yet.
    pub(crate) fn knows_day(&self) -> bool {
        self.lock().server_now.is_some()
    }

    /// How much of the quota the vendor's current day has used (for messages).
    pub(crate) fn describe(&self) -> String {
        let mut state = self.lock();
        if let Some(today) = state.server_now.map(vendor_day) {
            roll(&mut state, today);
        }
        match state.day {
            Some(day) => format!("{} of {} used on {day} (UTC)", state.used, self.limit),
            None => format!("none of {} used yet", self.limit),
        }
    }

    /// Reserves room for up to `wanted` users; the reservation may grant fewer
    /// (none when the day's quota is spent).
    pub(crate) async fn reserve(&self, wanted: u64) -> Result<Reservation<'_>, ConnectorError> {
        loop {
            let settled = self.settled.notified();
            {
                let mut state = self.lock();
                let today = state
                    .server_now
                    .map(vendor_day)
                    .ok_or_else(|| ConnectorError::fatal("the server's date is not known yet"))?;
                roll(&mut state, today);
                let room = self.limit.saturating_sub(state.used);
                if room >= wanted || state.in_flight == 0 {
                    let granted = room.min(wanted);
                    if granted > 0 {
                        state.used += granted;
                        state.in_flight += granted;
                        if let Err(e) = self.persist(&state) {
                            state.used -= granted;
                            state.in_flight -= granted;
                            return Err(ConnectorError::new(
                                ErrorKind::QuotaExhausted,
                                format!(
                                    "cannot record the daily quota in {}: {e}; nothing was sent",
                                    self.path.display()
                                ),
                            ));
                        }
                    }
                    return Ok(Reservation {
                        quota: self,
                        granted,
                        open: true,
                    });
                }
            }
            // Reservations in flight may be released: wait for one to settle.
            settled.await;
        }
    }

    /// Ends a reservation of `granted` of which `counted` stay spent.
    fn settle(&self, granted: u64, counted: u64) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(granted);
            let released = granted.saturating_sub(counted);
            if released > 0 {
                state.used = state.used.saturating_sub(released);
                if let Some(today) = state.server_now.map(vendor_day) {
                    roll(&mut state, today);
                }
                // A failed write leaves the file over-counting: safe.
                if let Err(e) = self.persist(&state) {
                    tracing::warn!(
                        "cannot record the daily quota in {}: {e}",
                        self.path.display()
                    );
                }
            }
        }
        self.settled.notify_waiters();
    }

    /// Writes the count: a temp file, fsynced, renamed over the old one.
    fn persist(&self, state: &State) -> std::io::Result<()> {
        let Some(day) = state.day else {
            return Ok(());
        };
        let stored = Stored {
            day: day.to_string(),
            used: state.used,
        };
        let text = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
        let temp = self.path.with_extension("json.tmp");
        {
            let mut file = File::create(&temp)?;
            file.write_all(&text)?;
            file.sync_all()?;
        }
        std::fs::rename(&temp, &self.path)?;
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = File::open(dir)
        {
            // Makes the rename itself durable; not every platform can fsync a directory.
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Reservation<'_> {
    /// How many users the reservation covers.
    pub(crate) fn granted(&self) -> u64 {
        self.granted
    }

    /// Ends the reservation: `counted` users (applied, or outcome unknown) stay
    /// spent, the rest are released.
    pub(crate) fn settle(mut self, counted: u64) {
        self.open = false;
        self.quota.settle(self.granted, counted.min(self.granted));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.open {
            self.quota.settle(self.granted, self.granted);
        }
    }
}

/// Starts a new count when the vendor's day has moved forward. Reservations in
/// flight stay counted on the new day (they may land on it). A day that goes back
/// keeps the later day's count: never under-count.
fn roll(state: &mut State, today: Date) {
    match state.day {
        Some(day) if day >= today => {}
        _ => {
            state.day = Some(today);
            state.used = state.in_flight;
        }
    }
}

/// The vendor's day at `now` (UTC).
pub(crate) fn vendor_day(now: SystemTime) -> Date {
    OffsetDateTime::from(now).date()
}

fn parse_day(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn noon() -> SystemTime {
        // 2025-06-01T12:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_748_779_200)
    }

    #[tokio::test]
    async fn reserves_settles_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Quota::open(dir.path(), 5, "t").unwrap();
        assert!(!quota.knows_day());
        assert!(quota.reserve(1).await.is_err(), "no day without a reply");
        quota.observe(Some(noon()));
        let r = quota.reserve(3).await.unwrap();
        assert_eq!(r.granted(), 3);
        let on_disk = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert_eq!(
            on_disk, r#"{"day":"2025-06-01","used":3}"#,
            "reserved before sending"
        );
        r.settle(1);
        let r = quota.reserve(10).await.unwrap();
        assert_eq!(r.granted(), 4, "what is left");
        drop(r); // unknown outcome: stays counted
        assert_eq!(quota.reserve(1).await.unwrap().granted(), 0);
        assert!(quota.describe().contains("5 of 5 used on 2025-06-01"));
        drop(quota);

        // A new run the same day carries the count on; the next day starts afresh.
        let quota = Quota::open(dir.path(), 5, "t").unwrap();
        quota.observe(Some(noon() + Duration::from_secs(3600)));
        assert_eq!(quota.reserve(1).await.unwrap().granted(), 0);
        quota.observe(Some(noon() + DAY));
        let r = quota.reserve(2).await.unwrap();
        assert_eq!(r.granted(), 2);
        r.settle(2);
        // A reply dated earlier does not turn the day back.
        quota.observe(Some(noon()));
        assert!(quota.describe().starts_with("2 of 5 used on 2025-06-02"));
    }

    #[tokio::test]
    async fn a_second_run_on_the_target_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Quota::open(dir.path(), 5, "ad").unwrap();
        let error = Quota::open(dir.path(), 5, "ad").unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidSettings);
        assert!(
            error.message.contains("another rekey run"),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn a_full_quota_waits_for_reservations_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Arc::new(Quota::open(dir.path(), 2, "t").unwrap());
        quota.observe(Some(noon()));
        let first = quota.reserve(2).await.unwrap();
        let waiter = {
            let quota = Arc::clone(&quota);
            tokio::spawn(async move { quota.reserve(1).await.map(|r| r.granted()) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "waits while room may come back");
        first.settle(1);
        assert_eq!(waiter.await.unwrap().unwrap(), 1);
    }

    #[test]
    fn a_corrupt_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{oops").unwrap();
        let error = Quota::open(dir.path(), 5, "t").unwrap_err();
        assert!(error.message.contains("unreadable"), "{}", error.message);
    }
}
