//! Why and whether a job must stop, shared by the workers and the signal handler.
//!
//! A job stops in two steps: once asked to stop, no further request is sent and
//! requests in flight finish; once asked to abandon them (a second Ctrl-C, or the
//! grace period after the first), requests in flight are dropped, leaving their
//! users' outcomes unknown in the journal for `rekey resume`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

/// The first reason a job must stop. Once set, no further request is sent;
/// requests in flight finish (within a grace period if the operator interrupted).
#[derive(Debug, Default)]
pub struct StopSignal {
    reason: Mutex<Option<String>>,
    interrupted: AtomicBool,
    abandoned: AtomicBool,
    notify: Notify,
}

impl StopSignal {
    /// Asks the job to stop for `reason` (the first reason wins).
    pub fn stop(&self, reason: impl Into<String>) {
        let mut current = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if current.is_none() {
            *current = Some(reason.into());
            self.notify.notify_waiters();
        }
    }

    /// The operator interrupted the job (Ctrl-C, SIGTERM).
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.stop("interrupted");
        self.notify.notify_waiters();
    }

    /// The operator will not wait for requests in flight (a second Ctrl-C).
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.interrupt();
    }

    /// Whether requests in flight are to be abandoned now.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Why the job is stopping, if it is.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the job is stopping.
    pub fn is_set(&self) -> bool {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Whether the operator interrupted the job.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Waits until the job is asked to stop.
    pub async fn stopped(&self) {
        self.until(Self::is_set).await;
    }

    /// Waits until the operator interrupts the job.
    pub async fn interrupted(&self) {
        self.until(Self::is_interrupted).await;
    }

    /// Waits until requests in flight are to be abandoned.
    pub async fn abandoned(&self) {
        self.until(Self::is_abandoned).await;
    }

    async fn until(&self, condition: fn(&Self) -> bool) {
        loop {
            let notified = self.notify.notified();
            if condition(self) {
                return;
            }
            notified.await;
        }
    }
}
