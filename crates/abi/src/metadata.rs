//! What a connector says about itself before it is created: its name, the
//! credential kinds and capabilities it offers, its settings schema, and the limits
//! its vendor puts on passwords ([`PasswordRules`], in a module of their own).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::password_rules::PasswordRules;

/// A connector's description, returned by `Plugin::metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The connector's name, as written in a target's `connector` key
    /// (`smartermail`, `oracle-cloud`): lower-case letters, digits and `-`.
    pub name: String,
    /// The connector's own version (usually its crate version).
    pub version: String,
    /// One line saying which system it talks to.
    pub description: String,
    /// The credential kinds it can reset. Never empty.
    pub kinds: Vec<CredentialKind>,
    /// What it can do beyond checking and resetting.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// The settings a target of this connector takes.
    #[serde(default)]
    pub settings: Vec<SettingSpec>,
    /// Whether user ids compare without regard to case (e-mail addresses, AD
    /// account names). The host uses it to de-duplicate users and to match
    /// exclusions and the connector's own account.
    #[serde(default)]
    pub case_insensitive_ids: bool,
    /// Limits the vendor puts on password values.
    #[serde(default)]
    pub password_rules: PasswordRules,
}

impl Metadata {
    /// Metadata with a name, version and description, the `password` kind, and
    /// nothing else; add the rest with the builder methods.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Metadata {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            kinds: vec![CredentialKind::Password],
            capabilities: Vec::new(),
            settings: Vec::new(),
            case_insensitive_ids: false,
            password_rules: PasswordRules::default(),
        }
    }

    /// Sets the credential kinds.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = CredentialKind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// Adds a capability.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Adds a setting to the schema.
    pub fn setting(mut self, spec: SettingSpec) -> Self {
        self.settings.push(spec);
        self
    }

    /// Declares that user ids compare without regard to case.
    pub fn case_insensitive_ids(mut self) -> Self {
        self.case_insensitive_ids = true;
        self
    }

    /// Sets the vendor's password rules.
    pub fn password_rules(mut self, rules: PasswordRules) -> Self {
        self.password_rules = rules;
        self
    }

    /// Whether the connector declares `capability`.
    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The schema entry for setting `name`.
    pub fn setting_spec(&self, name: &str) -> Option<&SettingSpec> {
        self.settings.iter().find(|s| s.name == name)
    }

    /// Checks that the metadata is well formed: a valid name, at least one kind,
    /// unique setting names, defaults of the declared type.
    pub fn validate(&self) -> Result<(), String> {
        if !is_valid_name(&self.name) {
            return Err(format!(
                "connector name `{}` is not valid: use lower-case letters, digits and `-`",
                self.name
            ));
        }
        if self.kinds.is_empty() {
            return Err("the connector declares no credential kinds".into());
        }
        let rules = &self.password_rules;
        if let (Some(min), Some(max)) = (rules.min_length, rules.max_length)
            && min > max
        {
            return Err(format!(
                "the password rules ask for at least {min} characters and at most {max}"
            ));
        }
        if rules
            .max_length
            .is_some_and(|max| max < rules.required.len())
        {
            return Err(
                "the password rules require more classes of character than the longest password holds"
                    .into(),
            );
        }
        for (i, spec) in self.settings.iter().enumerate() {
            if self.settings[..i].iter().any(|s| s.name == spec.name) {
                return Err(format!("setting `{}` is declared twice", spec.name));
            }
            if let Some(range) = spec.range_text() {
                if spec.ty != SettingType::Integer {
                    return Err(format!(
                        "setting `{}` has a range ({range}) but is not an integer",
                        spec.name
                    ));
                }
                if spec.min.zip(spec.max).is_some_and(|(min, max)| min > max) {
                    return Err(format!(
                        "setting `{}` has an empty range ({range})",
                        spec.name
                    ));
                }
            }
            if spec.list && spec.default.is_some() {
                return Err(format!(
                    "setting `{}` is a list and has a default: a list setting has none (a host older than list settings could not read it), and is empty when not given",
                    spec.name
                ));
            }
            if spec.list && spec.secret {
                return Err(format!(
                    "setting `{}` is a list of secrets: a secret is one value",
                    spec.name
                ));
            }
            if let Some(default) = &spec.default {
                if !spec.ty.accepts(default) {
                    return Err(format!(
                        "the default of setting `{}` is not a {}",
                        spec.name, spec.ty
                    ));
                }
                if let Some(value) = default.as_u64()
                    && !spec.in_range(value)
                {
                    return Err(format!(
                        "the default of setting `{}` ({value}) is outside its range ({})",
                        spec.name,
                        spec.range_text().unwrap_or_default()
                    ));
                }
                if spec.required {
                    return Err(format!(
                        "setting `{}` is required and has a default",
                        spec.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `name` is a valid connector name: lower-case ASCII letters, digits and
/// single `-`, starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Which credential of an account to reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// The account's login or web password.
    Password,
    /// A SIP authentication password.
    Sip,
    /// A numeric voicemail or portal passcode.
    Passcode,
}

impl CredentialKind {
    /// All kinds, in a stable order.
    pub const ALL: [CredentialKind; 3] = [
        CredentialKind::Password,
        CredentialKind::Sip,
        CredentialKind::Passcode,
    ];

    /// The kind's name as written on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Password => "password",
            CredentialKind::Sip => "sip",
            CredentialKind::Passcode => "passcode",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CredentialKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown credential kind `{s}`: use password, sip or passcode"))
    }
}

/// An optional ability of a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// `Connector::list_users` enumerates the
    /// target's accounts (needed for `--all`).
    ListUsers,
    /// `Connector::generate` asks the vendor for new
    /// values, which the host then journals and sets like its own.
    VendorValues,
    /// The vendor can make and set a password itself
    /// ([`NewPassword::VendorGenerated`](crate::NewPassword::VendorGenerated));
    /// it may not tell rekey the value.
    VendorReset,
}

impl Capability {
    /// The capability's name as shown by `rekey connectors`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ListUsers => "list_users",
            Capability::VendorValues => "vendor_values",
            Capability::VendorReset => "vendor_reset",
        }
    }
}

/// One setting in a connector's schema (ConnId's configuration property).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingSpec {
    /// The key in the target's config table.
    pub name: String,
    /// The value's type.
    #[serde(rename = "type")]
    pub ty: SettingType,
    /// Whether the target must give it.
    #[serde(default)]
    pub required: bool,
    /// Whether it is a secret: given as `{ env = … }` or `{ file = … }`, never
    /// printed, and delivered to the connector as a [`Secret`](crate::Secret).
    #[serde(default)]
    pub secret: bool,
    /// The value used when the target does not give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// The only values accepted, for a string setting with a closed set of values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// The smallest value accepted, for an integer setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// The largest value accepted, for an integer setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// One or two sentences for the operator.
    pub doc: String,
    /// Whether the value is a list of values of [`ty`](Self::ty) (in TOML
    /// `["a", "b"]`) rather than one value; see [`strings`](Self::strings).
    ///
    /// Added after plugin ABI 1 shipped, as a field rather than a new
    /// [`SettingType`] so that a host that predates it still reads the metadata
    /// (it takes the setting for a single value of `ty`, and the connector refuses
    /// that value when it is created, naming the setting). For the same reason a
    /// list setting has no default: an older host would find an array where it
    /// expects a `ty`, and refuse the whole connector.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub list: bool,
}

impl SettingSpec {
    fn new(name: &str, ty: SettingType, doc: &str) -> Self {
        SettingSpec {
            name: name.to_owned(),
            ty,
            required: false,
            secret: false,
            default: None,
            choices: Vec::new(),
            min: None,
            max: None,
            doc: doc.to_owned(),
            list: false,
        }
    }

    /// A string setting.
    pub fn string(name: &str, doc: &str) -> Self {
        Self::new(name, SettingType::String, doc)
    }

    /// A secret string setting.
    pub fn secret(name: &str, doc: &str) -> Self {
        let mut spec = Self::new(name, SettingType::String, doc);
        spec.secret = true;
        spec
    }

    /// A URL setting (`http` or `https`; the server's root).
    pub fn url(name: &str, doc: &str) -> Self {
        Self::new(name, SettingType::Url, doc)
    }

    /// An integer setting.
    pub fn integer(name: &str, doc: &str) -> Self {
        Self::new(name, SettingType::Integer, doc)
    }

    /// A boolean setting.
    pub fn boolean(name: &str, doc: &str) -> Self {
        Self::new(name, SettingType::Boolean, doc)
    }

    /// A list of strings (`success_messages = ["Done.", "OK"]`), empty when the
    /// target does not give it; read with
    /// [`Settings::strings`](crate::Settings::strings). A list setting has no
    /// default (see [`list`](Self::list)), and [`choices`](Self::choices) apply to
    /// each item.
    ///
    /// ```
    /// # use rekey_abi::{SettingSpec, SettingValue, Settings};
    /// let schema = [SettingSpec::strings("success_messages", "Extra texts that mean success")];
    /// let given = serde_json::json!(["Password changed.", "OK"]);
    /// let settings = Settings::check(
    ///     &schema,
    ///     [("success_messages".to_owned(), SettingValue::Plain(given))],
    /// )?;
    /// assert_eq!(settings.strings("success_messages"), ["Password changed.", "OK"]);
    /// # Ok::<(), rekey_abi::SettingsError>(())
    /// ```
    pub fn strings(name: &str, doc: &str) -> Self {
        let mut spec = Self::new(name, SettingType::String, doc);
        spec.list = true;
        spec
    }

    /// The setting's type in words: `string`, or `list of string` for a list.
    pub fn type_text(&self) -> String {
        if self.list {
            format!("list of {}", self.ty)
        } else {
            self.ty.to_string()
        }
    }

    /// Marks the setting required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Gives the setting a default.
    pub fn default_value(mut self, value: impl Into<serde_json::Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Restricts a string setting to `choices`.
    pub fn choices(mut self, choices: &[&str]) -> Self {
        self.choices = choices.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Restricts an integer setting to `range` (both ends included). The host
    /// refuses a target whose value is outside it, naming the range, and
    /// `rekey connectors show` prints it; the connector need not check it again.
    ///
    /// ```
    /// # use rekey_abi::SettingSpec;
    /// let spec = SettingSpec::integer("batch_size", "Users per request")
    ///     .range(1..=100)
    ///     .default_value(50);
    /// assert_eq!(spec.range_text().as_deref(), Some("1 to 100"));
    /// ```
    pub fn range(mut self, range: std::ops::RangeInclusive<u64>) -> Self {
        self.min = Some(*range.start());
        self.max = Some(*range.end());
        self
    }

    /// Restricts an integer setting to `min` and above.
    pub fn at_least(mut self, min: u64) -> Self {
        self.min = Some(min);
        self
    }

    /// The accepted range in words (`1 to 100`, `at least 1`), if there is one.
    pub fn range_text(&self) -> Option<String> {
        match (self.min, self.max) {
            (Some(min), Some(max)) => Some(format!("{min} to {max}")),
            (Some(min), None) => Some(format!("at least {min}")),
            (None, Some(max)) => Some(format!("at most {max}")),
            (None, None) => None,
        }
    }

    /// Whether `value` is within the declared range.
    pub fn in_range(&self, value: u64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

/// The type of a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    /// A string.
    String,
    /// An integer (at least 0).
    Integer,
    /// `true` or `false`.
    Boolean,
    /// An `http` or `https` URL naming a server's root.
    Url,
}

impl SettingType {
    /// Whether `value` has this type (URLs are checked further by
    /// [`Settings`](crate::Settings)).
    pub fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            SettingType::String | SettingType::Url => value.is_string(),
            SettingType::Integer => value.as_u64().is_some(),
            SettingType::Boolean => value.is_boolean(),
        }
    }
}

impl fmt::Display for SettingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SettingType::String => "string",
            SettingType::Integer => "integer",
            SettingType::Boolean => "boolean",
            SettingType::Url => "url",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password_rules::CharClass;

    #[test]
    fn names() {
        for good in ["smartermail", "oracle-cloud", "x1"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "Oracle", "1x", "a_b", "a-", "a--b", "../x"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn validate_catches_bad_defaults() {
        let meta = Metadata::new("x", "1", "d")
            .setting(SettingSpec::integer("batch_size", "n").default_value("ten"));
        assert!(meta.validate().unwrap_err().contains("batch_size"));
        let meta = Metadata::new("x", "1", "d")
            .setting(SettingSpec::string("a", "d"))
            .setting(SettingSpec::string("a", "d"));
        assert!(meta.validate().unwrap_err().contains("twice"));
    }

    #[test]
    fn list_settings_are_read_by_an_older_host() {
        let spec = SettingSpec::strings("success_messages", "Extra texts");
        assert_eq!(spec.type_text(), "list of string");
        let text = serde_json::to_value(&spec).unwrap();
        assert_eq!(text["type"], "string", "a type every ABI 1 host knows");
        assert_eq!(text["list"], true);
        // A single value's spec is written exactly as before.
        let single = serde_json::to_value(SettingSpec::string("domain", "d")).unwrap();
        assert!(single.get("list").is_none());
        // What an ABI 1 host that predates `list` makes of it: a string setting.
        let mut old = text.clone();
        old.as_object_mut().unwrap().remove("list");
        let read: SettingSpec = serde_json::from_value(text).unwrap();
        assert!(read.list);
        let read_old: SettingSpec = serde_json::from_value(old).unwrap();
        assert!(!read_old.list && read_old.ty == SettingType::String);

        let meta = |spec| Metadata::new("x", "1", "d").setting(spec).validate();
        assert!(meta(SettingSpec::strings("s", "d")).is_ok());
        assert!(
            meta(SettingSpec::strings("s", "d").default_value(Vec::<String>::new()))
                .unwrap_err()
                .contains("has a default")
        );
        let mut secret_list = SettingSpec::strings("s", "d");
        secret_list.secret = true;
        assert!(meta(secret_list).unwrap_err().contains("secret"));
    }

    #[test]
    fn validate_catches_bad_ranges() {
        let spec = |spec: SettingSpec| Metadata::new("x", "1", "d").setting(spec).validate();
        assert!(
            spec(
                SettingSpec::integer("n", "d")
                    .range(1..=10)
                    .default_value(5)
            )
            .is_ok()
        );
        let err = spec(
            SettingSpec::integer("n", "d")
                .range(1..=10)
                .default_value(50),
        );
        assert!(err.unwrap_err().contains("outside its range (1 to 10)"));
        #[allow(clippy::reversed_empty_ranges)]
        let err = spec(SettingSpec::integer("n", "d").range(10..=1));
        assert!(err.unwrap_err().contains("empty range"));
        let err = spec(SettingSpec::string("s", "d").at_least(1));
        assert!(err.unwrap_err().contains("not an integer"));
    }

    #[test]
    fn impossible_rules_are_refused() {
        let meta = |rules| {
            Metadata::new("x", "1", "d")
                .password_rules(rules)
                .validate()
        };
        assert!(meta(PasswordRules::new().length(12..=64)).is_ok());
        assert!(
            meta(PasswordRules {
                min_length: Some(20),
                max_length: Some(10),
                ..PasswordRules::default()
            })
            .unwrap_err()
            .contains("at least 20")
        );
        let err = meta(PasswordRules::new().length(..=3).require(CharClass::ALL)).unwrap_err();
        assert!(err.contains("more classes"), "{err}");
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(
            "sip".parse::<CredentialKind>().unwrap(),
            CredentialKind::Sip
        );
        assert!(
            "voicemail"
                .parse::<CredentialKind>()
                .unwrap_err()
                .contains("passcode")
        );
    }
}
