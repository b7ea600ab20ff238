//! Ctrl-C and SIGTERM, honoured by every command.
//!
//! A command that is not running a job stops at the first interruption (nothing
//! has changed, so there is nothing to finish). A running job stops gracefully at
//! the first: no new user is sent and requests in flight finish; at the second it
//! abandons requests in flight; either way it writes and syncs its results file
//! before rekey exits. A third interruption quits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::exit::Exit;

/// Counts interruptions for the life of the process.
#[derive(Debug, Default)]
pub struct Interrupts {
    count: AtomicUsize,
    notify: Notify,
}

impl Interrupts {
    /// Starts watching for Ctrl-C (and SIGTERM on Unix).
    pub fn watch() -> Arc<Interrupts> {
        let interrupts = Arc::new(Interrupts::default());
        let watcher = Arc::clone(&interrupts);
        tokio::spawn(async move {
            let mut signals = Signals::new();
            while signals.next().await {
                let count = watcher.count.fetch_add(1, Ordering::SeqCst) + 1;
                watcher.notify.notify_waiters();
                if count >= 3 {
                    eprintln!("interrupted a third time: quitting now");
                    std::process::exit(Exit::Stopped as i32);
                }
            }
        });
        interrupts
    }

    /// How many times rekey was interrupted so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until rekey has been interrupted `n` times in all.
    pub async fn reached(&self, n: usize) {
        loop {
            let notified = self.notify.notified();
            if self.count() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Interrupts as if the operator pressed Ctrl-C (tests).
    pub fn raise(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// The signals that interrupt rekey: Ctrl-C, and on Unix SIGTERM too.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                streams: signal(SignalKind::interrupt())
                    .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                    .ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// Waits for the next signal; false if none can be watched.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            match &mut self.streams {
                Some((int, term)) => tokio::select! {
                    got = int.recv() => got.is_some(),
                    got = term.recv() => got.is_some(),
                },
                None => tokio::signal::ctrl_c().await.is_ok(),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}
