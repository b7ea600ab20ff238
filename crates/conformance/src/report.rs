//! What the kit found: one line per check.

use std::fmt;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The connector keeps this part of the contract.
    Pass,
    /// It does not.
    Fail,
    /// The check does not apply (no listing), or could not run (a check it needs
    /// failed).
    Skip,
}

impl Verdict {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name (`listing`, `unknown-user`, ...).
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// Why, in a few words.
    pub detail: String,
}

impl CheckResult {
    /// A check that passed.
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        CheckResult {
            name,
            verdict: Verdict::Pass,
            detail: detail.into(),
        }
    }

    /// A check that failed.
    pub fn fail(name: &'static str, detail: impl Into<String>) -> Self {
        CheckResult {
            name,
            verdict: Verdict::Fail,
            detail: detail.into(),
        }
    }

    /// A check that did not apply or could not run.
    pub fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        CheckResult {
            name,
            verdict: Verdict::Skip,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CheckResult {
    /// `PASS listing: 120 users in 3 pages, unique and stable`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.verdict.as_str(),
            self.name,
            self.detail
        )
    }
}

/// Every check's outcome, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.failed().is_empty()
    }

    /// The names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.name)
            .collect()
    }

    /// The outcome of check `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Panics with the whole report unless every check passed or was skipped: for
    /// a connector's own tests.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(
            self.passed(),
            "the connector fails the conformance kit:\n{self}"
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}
