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
        let generator = PasswordGenerator {
            length: self.length,
            classes,
            all,
        };
        // Some position must be able to start the password: a class with a minimum
        // that has a safe character, or a free position with any safe character.
        let can_start = (0..SOURCES).any(|source| {
            let used = match source {
                FREE => sum < self.length,
                class => generator.classes[class].min > 0,
            };
            used && generator.source(source).iter().any(|&b| is_safe_start(b))
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
        let can_start = |source: usize| self.source(source).iter().any(|&b| is_safe_start(b));
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
        let mut first: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        for (i, &source) in sources.iter().enumerate() {
            let chars = self.source(source);
            let pick = if i == 0 {
                first.extend(chars.iter().copied().filter(|&b| is_safe_start(b)));
                *first
                    .choose(rng)
                    .expect("checked: the first source can start")
            } else {
                *chars.choose(rng).expect("checked non-empty")
            };
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
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng as _;

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
        let huge = usize::MAX / 2;
        let err = policy(12, [huge, huge, huge, 1], "!", "")
            .generator()
            .unwrap_err();
        assert!(
            matches!(err, PolicyError::MinimumsExceedLength { .. }),
            "{err}"
        );
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
    fn formula_characters_never_come_first() {
        // Symbols that all begin a formula, and a symbol-only policy: the one
        // character that can start is always first.
        let generator = policy(4, [0, 0, 0, 4], "=+-@#", "").generator().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let password = generator.generate_with(&mut rng);
            assert!(password.expose().starts_with('#'), "{}", password.expose());
        }
        // Formula symbols alone, but a letter is required: the letter comes first.
        let generator = policy(6, [1, 0, 0, 5], "=+", "").generator().unwrap();
        for _ in 0..200 {
            let password = generator.generate_with(&mut rng);
            assert!(
                password
                    .expose()
                    .starts_with(|c: char| c.is_ascii_lowercase())
            );
            assert!(generator.satisfies(password.expose()));
        }
        // Nothing could ever start a password.
        let err = policy(4, [0, 0, 0, 4], "=+-@", "").generator().unwrap_err();
        assert_eq!(err, PolicyError::FormulaOnly);
        let err = policy(8, [0; 4], "=@", &format!("{LOWER}{UPPER}{DIGITS}"))
            .generator()
            .unwrap_err();
        assert_eq!(err, PolicyError::FormulaOnly);
        assert!(!generator.satisfies("=abcde"));
    }

    #[test]
    fn the_first_character_is_uniform_over_those_that_can_start() {
        // Length 4 from "ab=" with no minimums: the first character is a or b, each
        // about half the time; the others are a, b or = about a third each.
        let generator = policy(4, [0; 4], "=", &format!("{}{UPPER}{DIGITS}", &LOWER[2..]))
            .generator()
            .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut first, mut later) = ([0u32; 3], [0u32; 3]);
        let index = |c: char| "ab=".find(c).unwrap();
        for _ in 0..30_000 {
            let password = generator.generate_with(&mut rng);
            let mut chars = password.expose().chars();
            first[index(chars.next().unwrap())] += 1;
            for c in chars {
                later[index(c)] += 1;
            }
        }
        assert_eq!(first[2], 0);
        for n in &first[..2] {
            assert!((14_000..16_000).contains(n), "{first:?}");
        }
        for n in later {
            assert!((28_500..31_500).contains(&n), "{later:?}");
        }
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
                    prop_assert!(!begins_formula(text), "{}", text);
                }
            }
        }

        #[test]
        fn no_password_begins_a_formula(
            policy in valid_policy(),
            formula_symbols in proptest::sample::subsequence(vec!['=', '+', '-', '@'], 1..=4),
            seed in proptest::num::u64::ANY,
        ) {
            // The same policies, with formula characters among the symbols for sure.
            let mut policy = policy;
            policy.symbols.extend(formula_symbols);
            policy.exclude_chars.retain(|c| !FORMULA_STARTS.contains(&c));
            if let Ok(generator) = policy.generator() {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                for _ in 0..50 {
                    let password = generator.generate_with(&mut rng);
                    prop_assert!(!begins_formula(password.expose()), "{}", password.expose());
                    prop_assert!(generator.satisfies(password.expose()));
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
            // And some character can start it: a letter, a digit or a symbol that
            // begins no formula, from a class with a minimum or a free position.
            let safe_symbols: String = policy.symbols.chars().filter(|c| !FORMULA_STARTS.contains(c)).collect();
            let can_start = [
                (policy.min_lower, available(LOWER)),
                (policy.min_upper, available(UPPER)),
                (policy.min_digit, available(DIGITS)),
                (policy.min_symbol, available(&safe_symbols)),
            ]
            .iter()
            .any(|&(min, safe)| min > 0 && safe)
                || (sum < policy.length
                    && (available(LOWER) || available(UPPER) || available(DIGITS) || available(&safe_symbols)));
            prop_assert_eq!(policy.generator().is_ok(), possible && can_start);
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
