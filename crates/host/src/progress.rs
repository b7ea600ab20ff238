//! Progress of a job, per target: a bar each on a terminal, periodic log lines
//! otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::logging;
use crate::results::Status;

/// How often a target's progress is logged when there is no bar.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The job's progress: where each target's bar is drawn.
pub struct Progress {
    /// The bars, when standard error is a terminal and output is not quiet.
    bars: Option<MultiProgress>,
    /// The width target names are padded to, so the bars line up.
    label_width: usize,
    registered: bool,
}

impl Progress {
    /// Progress of a job over `targets`: bars when standard error is a terminal
    /// and output is not quiet.
    pub fn new<'a>(targets: impl IntoIterator<Item = &'a str>, quiet: bool) -> Self {
        let bars = (!quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            bars,
            label_width: targets.into_iter().map(str::len).max().unwrap_or(0),
            registered: false,
        }
    }

    /// The progress of `target`, over its `total` users still to settle.
    pub fn target(&mut self, target: &str, total: u64) -> TargetProgress {
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(format!("{target:<width$}", width = self.label_width));
            bar.enable_steady_tick(Duration::from_millis(200));
            if !self.registered {
                // Log lines suspend the whole set of bars through any one of them.
                logging::set_active_bar(Some(bar.clone()));
                self.registered = true;
            }
            bar
        });
        TargetProgress {
            target: target.to_owned(),
            bar,
            total,
            done: 0,
            reset: 0,
            failed: 0,
            skipped: 0,
            last_log: Instant::now(),
        }
    }

    /// Removes the bars.
    pub fn finish(self) {
        if let Some(bars) = self.bars {
            logging::set_active_bar(None);
            let _ = bars.clear();
        }
    }
}

/// Counts one target's outcomes and shows them.
pub struct TargetProgress {
    target: String,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    reset: u64,
    failed: u64,
    skipped: u64,
    last_log: Instant,
}

impl TargetProgress {
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
                    "progress: {}: {}/{} done ({})",
                    self.target,
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
}

impl Drop for TargetProgress {
    /// A target that ends before the others keeps its bar, full or not, so the
    /// operator sees where it stopped.
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.abandon_with_message(self.counts());
        }
    }
}
