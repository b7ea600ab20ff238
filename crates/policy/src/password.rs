//! Passwords from four character classes.

use rand::rngs::SysRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{CryptoRng, Rng};
use rekey_api::{CharClass, PasswordRules, Secret};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{PolicyError, probe_os_random};

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
        let sum = self.min_lower + self.min_upper + self.min_digit + self.min_symbol;
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
        probe_os_random()?;
        Ok(PasswordGenerator {
            length: self.length,
            classes,
            all,
        })
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

/// Makes passwords that meet a checked [`PasswordPolicy`].
///
/// Each class's minimum is drawn from that class, the rest of the length from every
/// allowed character, and the whole is shuffled (Fisher–Yates). Every draw is an
/// unbiased uniform choice, and the number of draws is fixed by the length, so
/// generation always takes the same bounded time.
#[derive(Debug, Clone)]
pub struct PasswordGenerator {
    length: usize,
    classes: [Class; 4],
    all: Vec<u8>,
}

impl PasswordGenerator {
    /// A new password from the operating system's CSPRNG.
    pub fn generate(&self) -> Secret {
        self.generate_with(&mut rand::rand_core::UnwrapErr(SysRng))
    }

    /// A new password from `rng` (tests use a seeded one).
    pub fn generate_with<R: Rng + CryptoRng + ?Sized>(&self, rng: &mut R) -> Secret {
        let mut chars: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(self.length));
        for class in &self.classes {
            for _ in 0..class.min {
                chars.push(*class.chars.choose(rng).expect("checked non-empty"));
            }
        }
        while chars.len() < self.length {
            chars.push(*self.all.choose(rng).expect("checked non-empty"));
        }
        chars.shuffle(rng);
        let mut text = String::with_capacity(self.length);
        text.extend(chars.iter().map(|&b| char::from(b)));
        Secret::new(text)
    }

    /// Whether `password` meets the policy (used by tests and by the host to check
    /// values before sending them).
    pub fn satisfies(&self, password: &str) -> bool {
        if password.chars().count() != self.length {
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
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy(length: usize, mins: [usize; 4], symbols: &str, exclude: &str) -> PasswordPolicy {
        PasswordPolicy {
            length,
            min_lower: mins[0],
            min_upper: mins[1],
            min_digit: mins[2],
            min_symbol: mins[3],
            symbols: symbols.into(),
            exclude_chars: exclude.into(),
        }
    }

    #[test]
    fn default_policy_works() {
        let generator = PasswordPolicy::default().generator().unwrap();
        let password = generator.generate();
        assert_eq!(password.len(), 16);
        assert!(generator.satisfies(password.expose()));
    }

    #[test]
    fn impossible_policies_say_why() {
        let err = policy(8, [3, 3, 3, 0], "!", "").generator().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the minimums (min_lower + min_upper + min_digit + min_symbol = 9) exceed the length 8: lower a minimum or raise the length"
        );
        let err = policy(12, [1, 1, 1, 1], "", "").generator().unwrap_err();
        assert_eq!(err.to_string(), "min_symbol is 1, but symbols is empty");
        let err = policy(12, [1, 1, 1, 0], "!", "0123456789")
            .generator()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "min_digit is 1, but every digit is excluded"
        );
        let err = policy(12, [0, 0, 0, 1], "!", "!").generator().unwrap_err();
        assert!(err.to_string().contains("every symbol is excluded"));
        let err = policy(2, [0; 4], "!", "").generator().unwrap_err();
        assert!(err.to_string().contains("use 4 to 256"));
        let err = policy(12, [0; 4], "!a", "").generator().unwrap_err();
        assert!(err.to_string().contains("`a`"));
        let err = policy(12, [0; 4], "", &format!("{LOWER}{UPPER}{DIGITS}"))
            .generator()
            .unwrap_err();
        assert_eq!(err, PolicyError::NoCharacters);
    }

    #[test]
    fn vendor_rules() {
        let rules = PasswordRules::new()
            .charset(rekey_api::Charset::PrintableAscii)
            .length(..=32);
        assert!(PasswordPolicy::default().check_vendor_rules(&rules).is_ok());
        let long = policy(40, [1, 1, 1, 1], "!", "");
        assert!(
            long.check_vendor_rules(&rules)
                .unwrap_err()
                .to_string()
                .contains("32")
        );
        let rules = PasswordRules::new()
            .length(12..)
            .require([CharClass::Upper, CharClass::Digit]);
        assert!(PasswordPolicy::default().check_vendor_rules(&rules).is_ok());
        assert_eq!(
            policy(8, [1, 1, 1, 1], "!", "")
                .check_vendor_rules(&rules)
                .unwrap_err()
                .to_string(),
            "the policy does not suit this connector: length 8 is shorter than the vendor's minimum of 12: set length to 12 or more"
        );
        assert_eq!(
            policy(16, [1, 1, 0, 1], "!", "")
                .check_vendor_rules(&rules)
                .unwrap_err()
                .to_string(),
            "the policy does not suit this connector: the vendor requires a digit in every password, and min_digit is 0: set min_digit = 1 or more"
        );
    }

    #[test]
    fn excluded_characters_never_appear() {
        let generator = policy(64, [1, 1, 1, 1], "!#%", "O0Il1!")
            .generator()
            .unwrap();
        for _ in 0..200 {
            let password = generator.generate();
            assert!(!password.expose().contains(['O', '0', 'I', 'l', '1', '!']));
        }
    }

    fn valid_policy() -> impl Strategy<Value = PasswordPolicy> {
        let symbols = proptest::sample::subsequence(
            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
                .chars()
                .collect::<Vec<_>>(),
            0..=32,
        );
        let exclude = proptest::sample::subsequence(
            format!("{LOWER}{UPPER}{DIGITS}!#%+-.:=?@_")
                .chars()
                .collect::<Vec<_>>(),
            0..=20,
        );
        (
            MIN_LENGTH..=64usize,
            [0..4usize, 0..4, 0..4, 0..4],
            symbols,
            exclude,
        )
            .prop_map(|(length, mins, symbols, exclude)| {
                policy(
                    length,
                    mins,
                    &symbols.into_iter().collect::<String>(),
                    &exclude.into_iter().collect::<String>(),
                )
            })
    }

    proptest! {
        #[test]
        fn every_password_meets_its_policy(policy in valid_policy()) {
            // Policies the checker refuses are covered above; here every accepted
            // policy must only ever produce passwords that meet it.
            if let Ok(generator) = policy.generator() {
                for _ in 0..20 {
                    let password = generator.generate();
                    let text = password.expose();
                    prop_assert_eq!(text.chars().count(), policy.length);
                    prop_assert!(generator.satisfies(text), "{:?}", policy);
                    prop_assert!(!text.chars().any(|c| policy.exclude_chars.contains(c)));
                    let count = |set: &str| text.chars().filter(|c| set.contains(*c)).count();
                    prop_assert!(count(LOWER) >= policy.min_lower);
                    prop_assert!(count(UPPER) >= policy.min_upper);
                    prop_assert!(count(DIGITS) >= policy.min_digit);
                    prop_assert!(count(&policy.symbols) >= policy.min_symbol);
                    prop_assert!(text.chars().all(|c| c.is_ascii_alphanumeric() || policy.symbols.contains(c)));
                }
            }
        }

        #[test]
        fn accepted_means_possible(policy in valid_policy()) {
            // A policy is refused only when it truly cannot be met.
            let sum = policy.min_lower + policy.min_upper + policy.min_digit + policy.min_symbol;
            let available = |set: &str| set.chars().any(|c| !policy.exclude_chars.contains(c));
            let possible = sum <= policy.length
                && (policy.min_lower == 0 || available(LOWER))
                && (policy.min_upper == 0 || available(UPPER))
                && (policy.min_digit == 0 || available(DIGITS))
                && (policy.min_symbol == 0 || available(&policy.symbols))
                && (available(LOWER) || available(UPPER) || available(DIGITS) || available(&policy.symbols));
            prop_assert_eq!(policy.generator().is_ok(), possible);
        }
    }

    /// A connector's password rules, often ones the default policies can meet.
    fn any_vendor_rules() -> impl Strategy<Value = PasswordRules> {
        (
            prop_oneof![
                Just(rekey_api::Charset::Any),
                Just(rekey_api::Charset::PrintableAscii)
            ],
            proptest::option::of(0..=24usize),
            proptest::option::of(8..=80usize),
            proptest::sample::subsequence(CharClass::ALL.to_vec(), 0..=4),
        )
            .prop_map(|(charset, min, max, required)| PasswordRules {
                charset,
                min_length: min,
                max_length: max,
                required,
            })
    }

    proptest! {
        #[test]
        fn generated_values_meet_the_vendors_rules(policy in valid_policy(), rules in any_vendor_rules()) {
            // The host opens a target only when both checks pass; from then on
            // every generated value must pass the check a known value gets.
            if let (Ok(generator), Ok(())) = (policy.generator(), policy.check_vendor_rules(&rules)) {
                for _ in 0..20 {
                    let password = generator.generate();
                    prop_assert_eq!(rules.check(password.expose()), Ok(()), "{:?} {:?}", policy, rules);
                }
            }
        }

        #[test]
        fn vendor_rules_refuse_only_what_could_break_them(policy in valid_policy(), rules in any_vendor_rules()) {
            let min_of = |class: &CharClass| match class {
                CharClass::Lower => policy.min_lower,
                CharClass::Upper => policy.min_upper,
                CharClass::Digit => policy.min_digit,
                CharClass::Symbol => policy.min_symbol,
            };
            let fits = rules.min_length.is_none_or(|min| policy.length >= min)
                && rules.max_length.is_none_or(|max| policy.length <= max)
                && rules.required.iter().all(|class| min_of(class) > 0)
                && policy.symbols.chars().all(|c| rules.charset.allows(c));
            prop_assert_eq!(policy.check_vendor_rules(&rules).is_ok(), fits);
        }
    }
}
