//! Passwords from four character classes.

use rand::rngs::SysRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{CryptoRng, Rng};
use rekey_api::{CharClass, PasswordRules, Secret};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{FORMULA_STARTS, PolicyError, begins_formula, probe_os_random};

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// The shortest password rekey generates.
pub const MIN_LENGTH: usize = 4;
/// The longest password rekey generates.
pub const MAX_LENGTH: usize = 256;

/// How generated passwords look (`[targets.NAME.policy]` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Length in characters.
    pub length: usize,
    /// At least this many lower-case letters.
    pub min_lower: usize,
    /// At least this many upper-case letters.
    pub min_upper: usize,
    /// At least this many digits.
    pub min_digit: usize,
    /// At least this many symbols.
    pub min_symbol: usize,
    /// The symbols to use (ASCII punctuation).
    pub symbols: String,
    /// Characters never to use (look-alikes such as `O0Il1`).
    pub exclude_chars: String,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            length: 16,
            min_lower: 1,
            min_upper: 1,
            min_digit: 1,
            min_symbol: 1,
            symbols: "!#%+-.:=?@_".to_owned(),
            exclude_chars: String::new(),
        }
    }
}

impl PasswordPolicy {
    /// Checks that the policy can be met, and builds its generator.
    pub fn generator(&self) -> Result<PasswordGenerator, PolicyError> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&self.length) {
            return Err(PolicyError::Length {
                length: self.length,
                min: MIN_LENGTH,
                max: MAX_LENGTH,
            });
        }
        if let Some(bad) = self.symbols.chars().find(|c| !c.is_ascii_punctuation()) {
            return Err(PolicyError::BadSymbol {
                shown: if bad.is_ascii_graphic() {
                    format!("`{bad}`")
                } else {
                    format!("U+{:04X}", u32::from(bad))
                },
            });
        }
        // Saturating: the minimums come from the config, and may be absurd.
        let sum = [
            self.min_lower,
            self.min_upper,
            self.min_digit,
            self.min_symbol,
        ]
        .iter()
        .fold(0usize, |sum, &min| sum.saturating_add(min));
        if sum > self.length {
            return Err(PolicyError::MinimumsExceedLength {
                sum,
                length: self.length,
            });
        }
        let keep = |set: &str| -> Vec<u8> {
            let mut chars: Vec<u8> = set
                .bytes()
                .filter(|b| !self.exclude_chars.as_bytes().contains(b))
                .collect();
            chars.sort_unstable();
            chars.dedup();
            chars
        };
        let classes = [
            Class::new(
                "min_lower",
                self.min_lower,
                keep(LOWER),
                "every lower-case letter is excluded",
            ),
            Class::new(
                "min_upper",
                self.min_upper,
                keep(UPPER),
                "every upper-case letter is excluded",
            ),
            Class::new(
                "min_digit",
                self.min_digit,
                keep(DIGITS),
                "every digit is excluded",
            ),
            Class::new(
                "min_symbol",
                self.min_symbol,
                keep(&self.symbols),
                if self.symbols.is_empty() {
                    "symbols is empty"
                } else {
                    "every symbol is excluded"
                },
            ),
        ];
        for class in &classes {
            if class.min > 0 && class.chars.is_empty() {
                return Err(PolicyError::EmptyClass {
                    setting: class.setting,
                    min: class.min,
                    reason: class.empty_reason.to_owned(),
                });
            }
        }
        let mut all: Vec<u8> = classes
            .iter()
            .flat_map(|c| c.chars.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        if all.is_empty() {
            return Err(PolicyError::NoCharacters);
        }
        let starts = std::array::from_fn(|source| {
            let chars = match source {
                FREE => &all,
                class => &classes[class].chars,
            };
            chars
                .iter()
                .copied()
                .filter(|&b| is_safe_start(b))
                .collect()
        });
        let generator = PasswordGenerator {
            length: self.length,
            classes,
            all,
            starts,
        };
        // Some position must be able to start the password: a class with a minimum
        // that has a safe character, or a free position with any safe character.
        let can_start = (0..SOURCES).any(|source| {
            let used = match source {
                FREE => sum < self.length,
                class => generator.classes[class].min > 0,
            };
            used && !generator.starts[source].is_empty()
        });
        if !can_start {
            return Err(PolicyError::FormulaOnly);
        }
        probe_os_random()?;
        Ok(generator)
    }

    /// Checks the policy against a vendor's rules, so that every password its
    /// generator makes meets them: its length within the vendor's, a minimum of at
    /// least one for each class the vendor requires, and only symbols the vendor
    /// accepts (letters and digits are ASCII, which every charset holds).
    pub fn check_vendor_rules(&self, rules: &PasswordRules) -> Result<(), PolicyError> {
        let refuse = |why: String| Err(PolicyError::VendorRules(why));
        if let Some(max) = rules.max_length
            && self.length > max
        {
            return refuse(format!(
                "length {} is longer than the vendor's maximum of {max}: set length to {max} or less",
                self.length
            ));
        }
        if let Some(min) = rules.min_length
            && self.length < min
        {
            return refuse(format!(
                "length {} is shorter than the vendor's minimum of {min}: set length to {min} or more",
                self.length
            ));
        }
        for class in &rules.required {
            let (setting, min) = match class {
                CharClass::Lower => ("min_lower", self.min_lower),
                CharClass::Upper => ("min_upper", self.min_upper),
                CharClass::Digit => ("min_digit", self.min_digit),
                CharClass::Symbol => ("min_symbol", self.min_symbol),
            };
            if min == 0 {
                return refuse(format!(
                    "the vendor requires a {class} in every password, and {setting} is 0: set {setting} = 1 or more"
                ));
            }
        }
        if let Some(bad) = self.symbols.chars().find(|c| !rules.charset.allows(*c)) {
            return refuse(format!(
                "the symbol `{bad}` is not accepted; the vendor accepts only {}",
                rules.charset
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Class {
    setting: &'static str,
    min: usize,
    chars: Vec<u8>,
    empty_reason: &'static str,
}

impl Class {
    fn new(setting: &'static str, min: usize, chars: Vec<u8>, empty_reason: &'static str) -> Self {
        Class {
            setting,
            min,
            chars,
            empty_reason,
        }
    }
}

/// The number of sources a position draws from: the four classes, then [`FREE`].
const SOURCES: usize = 5;

/// The source of a position not reserved for a class's minimum: every allowed
/// character.
const FREE: usize = 4;

/// Whether a password may begin with `b` (a spreadsheet reads `=`, `+`, `-`, `@` as
/// the start of a formula).
fn is_safe_start(b: u8) -> bool {
    !FORMULA_STARTS.contains(&char::from(b))
}

/// Makes passwords that meet a checked [`PasswordPolicy`].
///
/// Each position of the password draws from a *source*: `min` positions from each
/// class, the rest from every allowed character. The sources are laid out in a
/// uniformly random order (Fisher–Yates), then each position draws a character
/// uniformly from its source, except the first, which draws uniformly from its
/// source's characters that do not begin a spreadsheet formula (`=`, `+`, `-`,
/// `@`). So every minimum is met, every character is an unbiased uniform choice
/// from what its position allows, and no password begins with a formula
/// character; the only other difference from a plain shuffle is that, when a class
/// holds only formula characters (`symbols = "=+-@"`), its positions never come
/// first: a position whose source can start the password is swapped in, chosen
/// uniformly (the policy check guarantees one exists). The number of draws is
/// fixed by the length, so generation always takes the same bounded time.
#[derive(Debug, Clone)]
pub struct PasswordGenerator {
    length: usize,
    classes: [Class; 4],
    all: Vec<u8>,
    /// Each source's characters that may begin a password, by source.
    starts: [Vec<u8>; SOURCES],
}

impl PasswordGenerator {
    /// A new password from the operating system's CSPRNG.
    pub fn generate(&self) -> Secret {
        self.generate_with(&mut rand::rand_core::UnwrapErr(SysRng))
    }

    /// A new password from `rng` (tests use a seeded one).
    pub fn generate_with<R: Rng + CryptoRng + ?Sized>(&self, rng: &mut R) -> Secret {
        let mut sources: Zeroizing<Vec<usize>> = Zeroizing::new(Vec::with_capacity(self.length));
        for (source, class) in self.classes.iter().enumerate() {
            sources.extend(std::iter::repeat_n(source, class.min));
        }
        sources.resize(self.length, FREE);
        sources.shuffle(rng);
        let can_start = |source: usize| !self.starts[source].is_empty();
        if !can_start(sources[0]) {
            let starts: Vec<usize> = (1..self.length)
                .filter(|&i| can_start(sources[i]))
                .collect();
            let swap = *starts
                .choose(rng)
                .expect("checked: some position can start");
            sources.swap(0, swap);
        }
        let mut text = String::with_capacity(self.length);
        for (i, &source) in sources.iter().enumerate() {
            let chars = if i == 0 {
                &self.starts[source]
            } else {
                self.source(source)
            };
            let pick = *chars
                .choose(rng)
                .expect("checked: every source is non-empty, the first can start");
            text.push(char::from(pick));
        }
        Secret::new(text)
    }

    /// The characters a position with `source` draws from.
    fn source(&self, source: usize) -> &[u8] {
        match source {
            FREE => &self.all,
            class => &self.classes[class].chars,
        }
    }

    /// Whether `password` meets the policy (used by tests and by the host to check
    /// values before sending them), and does not begin a spreadsheet formula.
    pub fn satisfies(&self, password: &str) -> bool {
        if password.chars().count() != self.length || begins_formula(password) {
            return false;
        }
        if !password.bytes().all(|b| self.all.contains(&b)) {
            return false;
        }
        self.classes
            .iter()
            .all(|class| password.bytes().filter(|b| class.chars.contains(b)).count() >= class.min)
    }
}

#[cfg(test)]
mod tests;
