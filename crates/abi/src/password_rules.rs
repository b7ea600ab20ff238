//! [`PasswordRules`]: the limits a vendor puts on password values, which a
//! connector declares in its metadata and the host checks before anything is sent.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Limits the vendor puts on password values (kinds `password` and `sip`; passcodes
/// are always digits): the characters it accepts, the shortest and longest value,
/// and the classes of character every value must hold.
///
/// The host checks them twice, before anything is sent: a target's generator
/// policy must always produce values that meet them (when the target is opened),
/// and a known value (`--password-env`, `--password-file`) must meet them (when the
/// job is planned). Either is refused with the reason, and exit 2.
///
/// ```
/// use rekey_abi::{CharClass, Charset, PasswordRules};
///
/// // 12 to 64 printable ASCII characters, with a lower-case and an upper-case
/// // letter and a digit.
/// let rules = PasswordRules::new()
///     .charset(Charset::PrintableAscii)
///     .length(12..=64)
///     .require([CharClass::Lower, CharClass::Upper, CharClass::Digit]);
/// assert!(rules.check("Correct-horse-7").is_ok());
/// let why = rules.check("Sh0rt").unwrap_err();
/// assert_eq!(why, "it is shorter than the 12 characters the vendor requires");
/// ```
///
/// Fields were added after plugin ABI 1 shipped (`min_length`, `required`); each
/// has a serde default, so a host that predates them reads a newer connector's
/// metadata and ignores them (the vendor then refuses a value that breaks them
/// itself), and this host reads an older connector's as "no such rule".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordRules {
    /// The characters the vendor accepts.
    #[serde(default)]
    pub charset: Charset,
    /// The longest password the vendor accepts, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// The shortest password the vendor accepts, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// The classes of character every password must hold at least one of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<CharClass>,
}

impl PasswordRules {
    /// No rules beyond "no control characters": add them with the builder methods.
    pub fn new() -> Self {
        PasswordRules::default()
    }

    /// The characters the vendor accepts.
    pub fn charset(mut self, charset: Charset) -> Self {
        self.charset = charset;
        self
    }

    /// The shortest and longest password the vendor accepts, in characters
    /// (`12..=64`, or `12..` for no maximum).
    pub fn length(mut self, range: impl std::ops::RangeBounds<usize>) -> Self {
        use std::ops::Bound;
        self.min_length = match range.start_bound() {
            Bound::Included(&min) => Some(min),
            Bound::Excluded(&min) => Some(min + 1),
            Bound::Unbounded => None,
        };
        self.max_length = match range.end_bound() {
            Bound::Included(&max) => Some(max),
            Bound::Excluded(&max) => Some(max.saturating_sub(1)),
            Bound::Unbounded => None,
        };
        self
    }

    /// Every password must hold at least one character of each of `classes`.
    pub fn require(mut self, classes: impl IntoIterator<Item = CharClass>) -> Self {
        for class in classes {
            if !self.required.contains(&class) {
                self.required.push(class);
            }
        }
        self
    }

    /// Why `value` breaks these rules, if it does. The reason never quotes the
    /// value, nor any character of it: it is a password.
    pub fn check(&self, value: &str) -> Result<(), String> {
        if value.chars().any(|c| !self.charset.allows(c)) {
            return Err(format!(
                "it holds a character the vendor does not accept (the vendor accepts only {})",
                self.charset
            ));
        }
        let len = value.chars().count();
        if let Some(min) = self.min_length
            && len < min
        {
            return Err(format!(
                "it is shorter than the {min} characters the vendor requires"
            ));
        }
        if let Some(max) = self.max_length
            && len > max
        {
            return Err(format!(
                "it is longer than the {max} characters the vendor accepts"
            ));
        }
        let missing: Vec<&str> = self
            .required
            .iter()
            .filter(|class| !value.chars().any(|c| class.holds(c)))
            .map(|class| class.describe())
            .collect();
        if !missing.is_empty() {
            let required: Vec<&str> = self.required.iter().map(|c| c.describe()).collect();
            return Err(format!(
                "it has no {}, and the vendor requires at least one {}",
                words(&missing, "or"),
                words(&required, "and")
            ));
        }
        Ok(())
    }
}

/// `a`, `a and b`, `a, b and c`.
fn words(items: &[&str], last: &str) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., end] => format!("{} {last} {end}", init.join(", ")),
    }
}

/// A class of character a vendor may require in every password.
///
/// Adding a class is an ABI change (an older host could not read it): see the
/// crate's version policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CharClass {
    /// A lower-case letter (`a`–`z`, and lower-case letters of other scripts).
    Lower,
    /// An upper-case letter (`A`–`Z`, and upper-case letters of other scripts).
    Upper,
    /// A digit, `0`–`9`.
    Digit,
    /// A symbol: any character that is not a letter, a digit, white space or a
    /// control character (`!`, `#`, `%`, ...).
    Symbol,
}

impl CharClass {
    /// All classes, in a stable order.
    pub const ALL: [CharClass; 4] = [
        CharClass::Lower,
        CharClass::Upper,
        CharClass::Digit,
        CharClass::Symbol,
    ];

    /// Whether `c` belongs to the class.
    pub fn holds(self, c: char) -> bool {
        match self {
            CharClass::Lower => c.is_lowercase(),
            CharClass::Upper => c.is_uppercase(),
            CharClass::Digit => c.is_ascii_digit(),
            CharClass::Symbol => !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control(),
        }
    }

    /// The class in words, for messages (`lower-case letter`).
    pub fn describe(self) -> &'static str {
        match self {
            CharClass::Lower => "lower-case letter",
            CharClass::Upper => "upper-case letter",
            CharClass::Digit => "digit",
            CharClass::Symbol => "symbol",
        }
    }
}

impl fmt::Display for CharClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A set of characters a vendor accepts in passwords.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// Any character but control characters.
    #[default]
    Any,
    /// Printable ASCII: `!` to `~` and the space.
    PrintableAscii,
}

impl Charset {
    /// Whether the set holds `c`.
    pub fn allows(self, c: char) -> bool {
        match self {
            Charset::Any => !c.is_control(),
            Charset::PrintableAscii => c == ' ' || c.is_ascii_graphic(),
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Charset::Any => "characters other than control characters",
            Charset::PrintableAscii => "printable ASCII characters",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        let rules = PasswordRules::new()
            .charset(Charset::PrintableAscii)
            .length(..=5);
        assert!(rules.check("a b~!").is_ok());
        assert_eq!(
            rules.check("abcdef").unwrap_err(),
            "it is longer than the 5 characters the vendor accepts"
        );
        assert!(PasswordRules::default().check("tab\there").is_err());
        let rules = PasswordRules::new().length(12..).require([
            CharClass::Lower,
            CharClass::Digit,
            CharClass::Symbol,
        ]);
        assert_eq!(rules.min_length, Some(12));
        assert_eq!(rules.max_length, None);
        assert!(rules.check("long-enough-1").is_ok());
        assert_eq!(
            rules.check("LONG-ENOUGH-!").unwrap_err(),
            "it has no lower-case letter or digit, and the vendor requires at least one lower-case letter, digit and symbol"
        );
        assert!(rules.check("Zq9~Zq9~Z").unwrap_err().contains("12"));
    }

    #[test]
    fn rule_errors_never_quote_the_value() {
        let rules = PasswordRules::new()
            .charset(Charset::PrintableAscii)
            .length(4..=8)
            .require(CharClass::ALL);
        for value in [
            "Pässwort-1",
            "Pass\u{7}1!",
            "Zq~",
            "Zq~Zq~Zq~Zq~",
            "zzzzzzz",
            "ZQ9~ZQ9~",
        ] {
            let why = rules.check(value).unwrap_err();
            for c in value
                .chars()
                .filter(|c| c.is_alphanumeric() || !c.is_ascii())
            {
                assert!(
                    !why.contains(&format!("`{c}`"))
                        && !why.contains(&format!("U+{:04X}", u32::from(c))),
                    "{why}"
                );
            }
            assert!(!why.contains(value), "{why}");
            assert!(!why.contains('`'), "{why}");
        }
    }

    #[test]
    fn char_classes() {
        for (c, class) in [
            ('a', CharClass::Lower),
            ('é', CharClass::Lower),
            ('Z', CharClass::Upper),
            ('7', CharClass::Digit),
            ('!', CharClass::Symbol),
            ('€', CharClass::Symbol),
        ] {
            assert!(class.holds(c), "{c}");
            let others = CharClass::ALL.iter().filter(|k| **k != class);
            for other in others {
                assert!(!other.holds(c), "{c} {other}");
            }
        }
        assert!(!CharClass::Symbol.holds(' ') && !CharClass::Symbol.holds('\n'));
    }

    #[test]
    fn rules_read_by_an_older_host_and_from_an_older_connector() {
        // A connector built before min_length and required existed.
        let old: PasswordRules =
            serde_json::from_str(r#"{"charset":"printable_ascii","max_length":64}"#).unwrap();
        assert_eq!(
            old,
            PasswordRules::new()
                .charset(Charset::PrintableAscii)
                .length(..=64)
        );
        // No new rules: the wire form is what ABI 1 always wrote.
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"charset":"printable_ascii","max_length":64}"#
        );
        // A host that knows only charset and max_length reads the new fields away.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct RulesV1 {
            charset: Charset,
            max_length: Option<usize>,
        }
        let new = PasswordRules::new()
            .length(12..)
            .require([CharClass::Digit]);
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(
            text,
            r#"{"charset":"any","min_length":12,"required":["digit"]}"#
        );
        assert!(serde_json::from_str::<RulesV1>(&text).is_ok());
    }
}
