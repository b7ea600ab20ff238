//! The simulated BroadWorks password and passcode rules, and Odin's generators,
//! which always make values that keep them.

use rand::{Rng, RngExt as _};

/// Password rules (BroadWorks "Password Rules" for web passwords, "SIP
/// Authentication Password Rules" for SIP passwords).
#[derive(Debug, Clone)]
pub struct PasswordRules {
    /// Shortest accepted password.
    pub min_length: usize,
    /// Longest accepted password.
    pub max_length: usize,
    /// Needs an upper-case letter.
    pub require_upper: bool,
    /// Needs a lower-case letter.
    pub require_lower: bool,
    /// Needs a digit.
    pub require_digit: bool,
    /// May not contain the user's name (the user id's local part for web
    /// passwords, the authentication name for SIP passwords), in any case.
    pub forbid_name: bool,
}

impl PasswordRules {
    /// The web password rules: 8 to 60 characters with an upper-case letter, a
    /// lower-case letter and a digit, not containing the user's name.
    pub fn web() -> Self {
        PasswordRules {
            min_length: 8,
            max_length: 60,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            forbid_name: true,
        }
    }

    /// The SIP authentication password rules of odins-spear's example: "at least 6
    /// characters and not more than 60 characters; including 1 uppercase alpha
    /// char(s); including 1 lowercase alpha char(s); In addition, it cannot contain
    /// the authentication name".
    pub fn sip() -> Self {
        PasswordRules {
            min_length: 6,
            max_length: 60,
            require_upper: true,
            require_lower: true,
            require_digit: false,
            forbid_name: true,
        }
    }

    /// Why `password` breaks the rules for a user called `name`, if it does. Never
    /// quotes the password.
    pub fn violation(&self, password: &str, name: &str) -> Option<String> {
        let length = password.chars().count();
        if length < self.min_length || length > self.max_length {
            return Some(format!(
                "it must be at least {} characters and not more than {} characters long",
                self.min_length, self.max_length
            ));
        }
        let checks = [
            (
                self.require_upper,
                char::is_uppercase as fn(char) -> bool,
                "1 uppercase alpha character",
            ),
            (
                self.require_lower,
                char::is_lowercase,
                "1 lowercase alpha character",
            ),
            (
                self.require_digit,
                |c: char| c.is_ascii_digit(),
                "1 numeric character",
            ),
        ];
        for (required, test, what) in checks {
            if required && !password.chars().any(test) {
                return Some(format!("it must include {what}"));
            }
        }
        if self.forbid_name
            && !name.is_empty()
            && password.to_lowercase().contains(&name.to_lowercase())
        {
            return Some("it cannot contain the user's name".into());
        }
        None
    }
}

/// Passcode rules (BroadWorks "Passcode Rules"): digits only, a length range, no
/// digit three times in a row, no ascending or descending run of four (wrapping
/// from 9 to 0, as `7890` and `2109`).
#[derive(Debug, Clone)]
pub struct PasscodeRules {
    /// Fewest digits.
    pub min_length: usize,
    /// Most digits.
    pub max_length: usize,
    /// Refuse a digit three times in a row.
    pub forbid_repeats: bool,
    /// Refuse four digits ascending or descending by one.
    pub forbid_runs: bool,
}

impl Default for PasscodeRules {
    fn default() -> Self {
        PasscodeRules {
            min_length: 4,
            max_length: 10,
            forbid_repeats: true,
            forbid_runs: true,
        }
    }
}

impl PasscodeRules {
    /// Why `code` breaks the rules, if it does. Never quotes the passcode.
    pub fn violation(&self, code: &str) -> Option<String> {
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Some("it must contain digits only".into());
        }
        if code.len() < self.min_length || code.len() > self.max_length {
            return Some(format!(
                "it must be {} to {} digits long",
                self.min_length, self.max_length
            ));
        }
        let digits: Vec<i8> = code.bytes().map(|b| (b - b'0') as i8).collect();
        if self.forbid_repeats && digits.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
            return Some("it cannot contain the same digit three times in a row".into());
        }
        let step = |a: i8, b: i8| (b - a).rem_euclid(10);
        let run = |w: &[i8], by: i8| w.windows(2).all(|p| step(p[0], p[1]) == by);
        if self.forbid_runs && digits.windows(4).any(|w| run(w, 1) || run(w, 9)) {
            return Some("it cannot contain four ascending or descending digits in a row".into());
        }
        None
    }
}

/// The characters of Odin's generated passwords (vendor-apis.md §2.3 examples).
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
const SYMBOLS: &str = "!@#$%^*()_-+:.[]{}?";

/// A random password of `length` (kept within `rules`) that keeps `rules`, mixing
/// letters, digits and symbols like Odin's examples. (That it holds no user's name
/// is left to chance: about one value in 10^13 would.)
pub fn generate_password(rng: &mut impl Rng, rules: &PasswordRules, length: usize) -> String {
    let length = length.clamp(rules.min_length.max(4), rules.max_length.max(4));
    let alphabet: Vec<char> = [LETTERS, DIGITS, SYMBOLS].concat().chars().collect();
    loop {
        let candidate: String = (0..length)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let mixed = candidate.chars().any(|c| c.is_ascii_digit())
            && candidate.chars().any(|c| SYMBOLS.contains(c));
        if mixed && rules.violation(&candidate, "").is_none() {
            return candidate;
        }
    }
}

/// A random passcode of `length` digits (kept within `rules`) that keeps `rules`.
pub fn generate_passcode(rng: &mut impl Rng, rules: &PasscodeRules, length: usize) -> String {
    let length = length.clamp(rules.min_length.max(1), rules.max_length.max(1));
    loop {
        let candidate: String = (0..length)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        if rules.violation(&candidate).is_none() {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn passcode_rules_match_rekeys_own() {
        let rules = PasscodeRules::default();
        for good in [
            "1357",
            "1123",
            "9753",
            "12124343",
            "0909",
            "1231",
            "1357924680",
        ] {
            assert_eq!(rules.violation(good), None, "{good}");
        }
        for bad in [
            "1112",
            "1234",
            "4321",
            "901234",
            "98760",
            "12a4",
            "",
            "7890",
            "2109",
            "135",
            "13579246801",
        ] {
            assert!(rules.violation(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn password_rules() {
        let web = PasswordRules::web();
        assert_eq!(web.violation("Abcdefg1", "user0001"), None);
        assert!(
            web.violation("Abcdef1", "u")
                .unwrap()
                .contains("at least 8")
        );
        assert!(
            web.violation("abcdefg1", "u")
                .unwrap()
                .contains("uppercase")
        );
        assert!(web.violation("Abcdefgh", "u").unwrap().contains("numeric"));
        assert!(
            web.violation("xUSER0001x", "user0001")
                .unwrap()
                .contains("name")
        );
        let sip = PasswordRules::sip();
        assert_eq!(sip.violation("Abcdef", "john.smith"), None);
        assert!(sip.violation("Abcde", "x").is_some());
    }

    #[test]
    fn generated_values_keep_the_rules() {
        let mut rng = StdRng::seed_from_u64(7);
        let passcodes = PasscodeRules::default();
        let web = PasswordRules::web();
        for _ in 0..500 {
            let code = generate_passcode(&mut rng, &passcodes, 8);
            assert_eq!(code.len(), 8);
            assert_eq!(passcodes.violation(&code), None, "{code}");
            let password = generate_password(&mut rng, &web, 18);
            assert_eq!(password.chars().count(), 18);
            assert_eq!(web.violation(&password, "user0001"), None);
        }
        let strict = PasscodeRules {
            min_length: 6,
            max_length: 6,
            ..PasscodeRules::default()
        };
        assert_eq!(generate_passcode(&mut rng, &strict, 8).len(), 6);
    }
}
