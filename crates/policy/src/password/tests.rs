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
