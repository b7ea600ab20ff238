//! Fault points for the crash-safety tests, compiled only with the
//! `fault-injection` feature (which the workspace's integration tests enable, and
//! a release build never does). `REKEY_FAULT` names the fault to inject.

/// Crashes the process here (as `kill -9` would, without unwinding or flushing)
/// when `REKEY_FAULT` names this point.
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    if std::env::var("REKEY_FAULT").is_ok_and(|fault| fault == name) {
        eprintln!("fault injected: crashing at {name}");
        std::process::abort();
    }
}

/// Without the `fault-injection` feature, nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// How many results rows may be written before writing fails, when
/// `REKEY_FAULT=results-write-fails-after:N`.
#[cfg(feature = "fault-injection")]
pub fn results_write_limit() -> Option<usize> {
    std::env::var("REKEY_FAULT")
        .ok()?
        .strip_prefix("results-write-fails-after:")?
        .parse()
        .ok()
}

/// Without the `fault-injection` feature, no limit.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn results_write_limit() -> Option<usize> {
    None
}
