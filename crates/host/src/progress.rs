//! Progress of a job: a bar on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::logging;
use crate::results::Status;

/// How often progress is logged when there is no bar.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Counts outcomes and shows them.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    reset: u64,
    failed: u64,
    skipped: u64,
    last_log: Instant,
}

impl Progress {
    /// Progress over `total` users: a bar when standard error is a terminal and
    /// output is not quiet.
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            logging::set_active_bar(Some(bar.clone()));
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
            reset: 0,
            failed: 0,
            skipped: 0,
            last_log: Instant::now(),
        }
    }

    /// Counts one user's outcome.
    pub fn record(&mut self, status: Status) {
        self.done += 1;
        match status {
            Status::Reset => self.reset += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done);
                bar.set_message(self.counts());
            }
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                tracing::info!(
                    "progress: {}/{} done ({})",
                    self.done,
                    self.total,
                    self.counts()
                );
            }
            None => {}
        }
    }

    fn counts(&self) -> String {
        format!(
            "{} reset, {} failed, {} skipped",
            self.reset, self.failed, self.skipped
        )
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            logging::set_active_bar(None);
            bar.finish_and_clear();
        }
    }
}
