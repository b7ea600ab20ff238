//! Numeric passcodes (voicemail and portal PINs).

use rand::rngs::SysRng;
use rand::{CryptoRng, Rng, RngExt as _};
use rekey_api::Secret;
use serde::{Deserialize, Serialize};

use crate::{PolicyError, probe_os_random};

/// The shortest passcode rekey generates.
pub const MIN_LENGTH: usize = 4;
/// The longest passcode rekey generates.
pub const MAX_LENGTH: usize = 32;

/// How generated passcodes look (`[targets.NAME.passcode_policy]` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasscodePolicy {
    /// Number of digits.
    pub length: usize,
}

impl Default for PasscodePolicy {
    fn default() -> Self {
        PasscodePolicy { length: 8 }
    }
}

impl PasscodePolicy {
    /// Checks the policy and builds its generator.
    pub fn generator(&self) -> Result<PasscodeGenerator, PolicyError> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&self.length) {
            return Err(PolicyError::Length {
                length: self.length,
                min: MIN_LENGTH,
                max: MAX_LENGTH,
            });
        }
        probe_os_random()?;
        Ok(PasscodeGenerator {
            length: self.length,
        })
    }
}

/// Makes passcodes: `length` digits, no digit three times in a row, no ascending or
/// descending run of four (runs wrap: `7890` and `2109` count).
///
/// Each digit is an unbiased uniform choice among the digits that keep the rules
/// given the digits before it. At most two digits are ever ruled out (a third repeat
/// and the next step of a run; the last three digits cannot run both ways), so at
/// least eight remain and generation never backtracks: the time is fixed by the
/// length.
#[derive(Debug, Clone)]
pub struct PasscodeGenerator {
    length: usize,
}

impl PasscodeGenerator {
    /// A new passcode from the operating system's CSPRNG.
    pub fn generate(&self) -> Secret {
        self.generate_with(&mut rand::rand_core::UnwrapErr(SysRng))
    }

    /// A new passcode from `rng`.
    pub fn generate_with<R: Rng + CryptoRng + ?Sized>(&self, rng: &mut R) -> Secret {
        let mut digits: Vec<u8> = Vec::with_capacity(self.length);
        let mut allowed: Vec<u8> = Vec::with_capacity(10);
        while digits.len() < self.length {
            allowed.clear();
            allowed.extend((0..10u8).filter(|&d| !breaks_rules(&digits, d)));
            let pick = allowed[rng.random_range(0..allowed.len())];
            digits.push(pick);
        }
        let mut text = String::with_capacity(self.length);
        text.extend(digits.iter().map(|d| char::from(b'0' + d)));
        digits.fill(0);
        allowed.fill(0);
        Secret::new(text)
    }
}

/// Whether appending `next` to `digits` would make three equal digits in a row or a
/// run of four ascending or descending by one (wrapping from 9 to 0).
fn breaks_rules(digits: &[u8], next: u8) -> bool {
    let n = digits.len();
    if n >= 2 && digits[n - 1] == next && digits[n - 2] == next {
        return true;
    }
    if n >= 3 {
        // Runs wrap around (7890, 2109), as on many PBXs' rules: stricter is safer.
        let step = |from: u8, to: u8| (to + 10 - from) % 10;
        let [a, b, c] = [digits[n - 3], digits[n - 2], digits[n - 1]];
        for run in [1, 9] {
            if step(a, b) == run && step(b, c) == run && step(c, next) == run {
                return true;
            }
        }
    }
    false
}

/// Whether `code` is all digits and keeps the passcode rules (no digit three times in
/// a row, no ascending or descending run of four).
pub fn is_acceptable_passcode(code: &str) -> bool {
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u8> = code.bytes().map(|b| b - b'0').collect();
    (0..digits.len()).all(|i| !breaks_rules(&digits[..i], digits[i]))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rules() {
        for good in ["1357", "1123", "9753", "12124343", "0909", "1231"] {
            assert!(is_acceptable_passcode(good), "{good}");
        }
        for bad in [
            "1112", "1234", "4321", "901234", "98760", "12a4", "", "7890", "2109",
        ] {
            assert!(!is_acceptable_passcode(bad), "{bad}");
        }
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert!(PasscodePolicy { length: 3 }.generator().is_err());
        assert!(PasscodePolicy { length: 33 }.generator().is_err());
        let err = PasscodePolicy { length: 2 }.generator().unwrap_err();
        assert_eq!(err.to_string(), "length 2 is out of range: use 4 to 32");
    }

    #[test]
    fn at_least_eight_digits_always_remain() {
        // Exhaustively over every three-digit prefix.
        for prefix in 0..1000u32 {
            let digits = [prefix / 100, prefix / 10 % 10, prefix % 10].map(|d| d as u8);
            let allowed = (0..10u8).filter(|&d| !breaks_rules(&digits, d)).count();
            assert!(allowed >= 8, "{digits:?}");
        }
    }

    proptest! {
        #[test]
        fn every_passcode_meets_the_rules(length in MIN_LENGTH..=MAX_LENGTH) {
            let generator = PasscodePolicy { length }.generator().unwrap();
            for _ in 0..50 {
                let code = generator.generate();
                prop_assert_eq!(code.len(), length);
                prop_assert!(is_acceptable_passcode(code.expose()), "{}", code.expose());
            }
        }
    }
}
