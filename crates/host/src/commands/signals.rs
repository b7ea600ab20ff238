//! Interruption: the first Ctrl-C (or SIGTERM) stops the job gracefully, a second
//! one exits at once. Either way the journal already covers every user.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::engine::StopSignal;
use crate::exit::Exit;

/// Watches for interruptions while job `job` runs; abort the handle when it ends.
pub fn watch(stop: Arc<StopSignal>, job: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        interrupted().await;
        stop.interrupt();
        eprintln!(
            "interrupted: taking no new users and letting requests in flight finish; press Ctrl-C again to quit at once"
        );
        interrupted().await;
        eprintln!(
            "interrupted again: quitting now. Every user is in the journal; finish with: rekey resume {job}"
        );
        std::process::exit(Exit::Stopped as i32);
    })
}

/// Waits for Ctrl-C, or on Unix also SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
