//! Log output: `tracing` events on standard error, filtered by `-v`, `-q` or
//! `RUST_LOG`, and kept from tearing through the progress bar.

use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The progress bar on screen, if any: log lines are printed around it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Registers (or with `None` clears) the bar that log lines must not tear.
pub fn set_active_bar(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// Installs the global subscriber. `RUST_LOG`, when set, decides alone; otherwise
/// `-q` shows errors only, the default shows rekey's own information and every
/// warning, `-v` adds rekey's debug events, `-vv` everything.
pub fn init(verbose: u8, quiet: bool) {
    let directives = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => match (quiet, verbose) {
            (true, _) => "error".to_owned(),
            (false, 0) => "warn,rekey=info".to_owned(),
            (false, 1) => "info,rekey=debug".to_owned(),
            (false, _) => "trace".to_owned(),
        },
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|error| {
        eprintln!("warning: ignoring RUST_LOG ({error}); using the default");
        EnvFilter::new("warn,rekey=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(BarAwareStderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(true)
        .try_init();
}

/// Standard error, suspending the progress bar while a line is written.
struct BarAwareStderr;

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = BarAwareStderr;

    fn make_writer(&'a self) -> Self::Writer {
        BarAwareStderr
    }
}

impl Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bar = ACTIVE_BAR
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| io::stderr().write_all(buf))?,
            None => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
