//! [`Settings`]: a target's connector settings, checked against the connector's
//! schema.
//!
//! The host checks a target's settings before it creates the connector, so the
//! operator hears about a missing or mistyped key at once, by name. The plugin side
//! checks them again against the same schema when it receives them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::metadata::{SettingSpec, SettingType};
use crate::secret::Secret;

/// A value given for a setting, before it is checked.
#[derive(Debug, Clone)]
pub enum SettingValue {
    /// A plain value (string, integer, boolean).
    Plain(Value),
    /// A secret already resolved from wherever it was kept.
    Secret(Secret),
}

/// Why a target's settings do not fit the connector's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A key the connector does not know.
    #[error("unknown setting `{name}`: this connector takes {known}")]
    Unknown {
        /// The key.
        name: String,
        /// The settings the connector does take.
        known: String,
    },
    /// A required key is missing.
    #[error("missing setting `{name}` ({doc})")]
    Missing {
        /// The key.
        name: String,
        /// What the setting is for.
        doc: String,
    },
    /// A value of the wrong type.
    #[error("setting `{name}` must be of type {expected}, not {found}")]
    WrongType {
        /// The key.
        name: String,
        /// The type the schema declares.
        expected: SettingType,
        /// What was given instead.
        found: String,
    },
    /// A single value where the schema declares a list.
    #[error("setting `{name}` must be a list of {item}s, like [\"one\", \"two\"], not {found}")]
    NotAList {
        /// The key.
        name: String,
        /// The type of each item.
        item: SettingType,
        /// What was given instead.
        found: String,
    },
    /// A value outside the setting's closed set.
    #[error("setting `{name}` must be one of {choices}, not `{value}`")]
    NotAChoice {
        /// The key.
        name: String,
        /// The value given.
        value: String,
        /// The accepted values.
        choices: String,
    },
    /// An integer outside the setting's range.
    #[error("setting `{name}` must be {range}, not {value}")]
    OutOfRange {
        /// The key.
        name: String,
        /// The value given.
        value: u64,
        /// The accepted range in words (`1 to 100`).
        range: String,
    },
    /// A URL that cannot be used.
    #[error("setting `{name}`: {reason}")]
    BadUrl {
        /// The key.
        name: String,
        /// What is wrong with it and how to fix it.
        reason: String,
    },
    /// A secret given where a plain value is expected, or the reverse.
    #[error("setting `{name}` {reason}")]
    SecretMismatch {
        /// The key.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// A connector's settings, checked against its schema, with defaults applied.
///
/// Secret settings are held as [`Secret`]s, apart from the plain ones, so `Debug`
/// never shows them.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    plain: BTreeMap<String, Value>,
    secrets: BTreeMap<String, Secret>,
}

impl Settings {
    /// Checks `values` against `schema`: every key known, every required key
    /// present, every value of its declared type, in its choices and in its range,
    /// every URL usable. Defaults fill the keys not given.
    pub fn check(
        schema: &[SettingSpec],
        values: impl IntoIterator<Item = (String, SettingValue)>,
    ) -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();
        for (name, value) in values {
            let Some(spec) = schema.iter().find(|s| s.name == name) else {
                return Err(SettingsError::Unknown {
                    name,
                    known: known_list(schema),
                });
            };
            match (spec.secret, value) {
                (true, SettingValue::Secret(secret)) => {
                    settings.secrets.insert(name, secret);
                }
                (false, SettingValue::Plain(value)) => {
                    check_plain(spec, &value)?;
                    settings.plain.insert(name, value);
                }
                (true, SettingValue::Plain(_)) => {
                    return Err(SettingsError::SecretMismatch {
                        name,
                        reason: "is a secret and was given as a plain value".into(),
                    });
                }
                (false, SettingValue::Secret(_)) => {
                    return Err(SettingsError::SecretMismatch {
                        name,
                        reason: "is not a secret: give its value directly".into(),
                    });
                }
            }
        }
        for spec in schema {
            let given = settings.plain.contains_key(&spec.name)
                || settings.secrets.contains_key(&spec.name);
            if given {
                continue;
            }
            if spec.required {
                return Err(SettingsError::Missing {
                    name: spec.name.clone(),
                    doc: spec.doc.clone(),
                });
            }
            if let Some(default) = &spec.default {
                settings.plain.insert(spec.name.clone(), default.clone());
            }
        }
        Ok(settings)
    }

    /// Checks settings received as a JSON object (the plugin side of `create`),
    /// taking the schema's secret flags to decide which strings are secrets.
    pub fn from_json(
        schema: &[SettingSpec],
        object: Map<String, Value>,
    ) -> Result<Settings, SettingsError> {
        let values = object.into_iter().map(|(name, value)| {
            let secret = schema.iter().any(|s| s.name == name && s.secret);
            let value = match (secret, value) {
                (true, Value::String(s)) => SettingValue::Secret(Secret::new(s)),
                (_, other) => SettingValue::Plain(other),
            };
            (name, value)
        });
        Settings::check(schema, values)
    }

    /// Serializes the settings as one map, secrets in plaintext: only for handing
    /// them to the connector across the plugin boundary.
    pub(crate) fn serialize_exposing_secrets<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.plain.len() + self.secrets.len()))?;
        for (name, value) in &self.plain {
            map.serialize_entry(name, value)?;
        }
        for (name, secret) in &self.secrets {
            map.serialize_entry(name, secret.expose())?;
        }
        map.end()
    }

    /// A string (or URL) setting, if given or defaulted.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.plain.get(name).and_then(Value::as_str)
    }

    /// A required string (or URL) setting.
    pub fn str(&self, name: &str) -> Result<&str, SettingsError> {
        self.get_str(name).ok_or_else(|| missing(name))
    }

    /// A secret setting, if given.
    pub fn get_secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name)
    }

    /// A required secret setting.
    pub fn secret(&self, name: &str) -> Result<&Secret, SettingsError> {
        self.get_secret(name).ok_or_else(|| missing(name))
    }

    /// A boolean setting, if given or defaulted.
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        self.plain.get(name).and_then(Value::as_bool)
    }

    /// An integer setting, if given or defaulted.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.plain.get(name).and_then(Value::as_u64)
    }

    /// An integer setting that is required or has a default (so it is always
    /// there), already checked against its range.
    pub fn u64(&self, name: &str) -> Result<u64, SettingsError> {
        self.get_u64(name).ok_or_else(|| missing(name))
    }

    /// [`u64`](Self::u64) as a `usize` (saturating on 32-bit machines).
    pub fn usize(&self, name: &str) -> Result<usize, SettingsError> {
        self.u64(name)
            .map(|value| usize::try_from(value).unwrap_or(usize::MAX))
    }

    /// A list setting's values, in order; empty when the target does not give it
    /// (list settings have no default). For a list of strings
    /// ([`SettingSpec::strings`]).
    pub fn strings(&self, name: &str) -> Vec<&str> {
        match self.plain.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// A boolean setting that is required or has a default.
    pub fn bool(&self, name: &str) -> Result<bool, SettingsError> {
        self.get_bool(name).ok_or_else(|| missing(name))
    }
}

fn missing(name: &str) -> SettingsError {
    SettingsError::Missing {
        name: name.to_owned(),
        doc: "asked for by the connector".into(),
    }
}

fn known_list(schema: &[SettingSpec]) -> String {
    if schema.is_empty() {
        return "no settings".into();
    }
    let names: Vec<String> = schema.iter().map(|s| format!("`{}`", s.name)).collect();
    names.join(", ")
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

fn check_plain(spec: &SettingSpec, value: &Value) -> Result<(), SettingsError> {
    if !spec.list {
        return check_one(spec, &spec.name, value);
    }
    let Value::Array(items) = value else {
        return Err(SettingsError::NotAList {
            name: spec.name.clone(),
            item: spec.ty,
            found: describe(value),
        });
    };
    for (i, item) in items.iter().enumerate() {
        check_one(spec, &format!("{}[{i}]", spec.name), item)?;
    }
    Ok(())
}

/// Checks one value (a setting's, or one item of a list setting's, called `name`).
fn check_one(spec: &SettingSpec, name: &str, value: &Value) -> Result<(), SettingsError> {
    if !spec.ty.accepts(value) {
        return Err(SettingsError::WrongType {
            name: name.to_owned(),
            expected: spec.ty,
            found: describe(value),
        });
    }
    if !spec.choices.is_empty() {
        let given = value.as_str().unwrap_or_default();
        if !spec.choices.iter().any(|c| c == given) {
            return Err(SettingsError::NotAChoice {
                name: name.to_owned(),
                value: given.to_owned(),
                choices: spec.choices.join(", "),
            });
        }
    }
    if let Some(number) = value.as_u64()
        && !spec.in_range(number)
    {
        return Err(SettingsError::OutOfRange {
            name: name.to_owned(),
            value: number,
            range: spec.range_text().unwrap_or_default(),
        });
    }
    if spec.ty == SettingType::Url {
        check_root_url(value.as_str().unwrap_or_default()).map_err(|reason| {
            SettingsError::BadUrl {
                name: name.to_owned(),
                reason,
            }
        })?;
    }
    Ok(())
}

impl From<SettingsError> for crate::ConnectorError {
    fn from(error: SettingsError) -> Self {
        crate::ConnectorError::invalid_settings(error.to_string())
    }
}

/// Checks that `text` is an `http` or `https` URL naming a server's root: scheme,
/// host and optional port, nothing else. Connectors add their API's own path.
pub fn check_root_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("`{text}` is not a URL ({e}); write it like https://mail.example.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}` must start with https:// (or http:// for a server on this machine)"
        ));
    }
    if url.host().is_none() {
        return Err(format!("`{text}` names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL must not hold credentials; use the connector's credential settings".into(),
        );
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{text}` must be the server's root (scheme, host and port) only: rekey adds the API's path itself, so write {}://{}",
            url.scheme(),
            url.host_str().unwrap_or_default().to_owned()
                + &url.port().map(|p| format!(":{p}")).unwrap_or_default()
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<SettingSpec> {
        vec![
            SettingSpec::url("url", "the server").required(),
            SettingSpec::secret("password", "the admin password").required(),
            SettingSpec::integer("batch_size", "users a request")
                .range(1..=100)
                .default_value(25),
            SettingSpec::string("match_by", "attribute").choices(&["mail", "sAMAccountName"]),
        ]
    }

    fn plain(v: Value) -> SettingValue {
        SettingValue::Plain(v)
    }

    #[test]
    fn defaults_and_getters() {
        let s = Settings::check(
            &schema(),
            [
                ("url".into(), plain("https://h.example".into())),
                ("password".into(), SettingValue::Secret("pw".into())),
            ],
        )
        .unwrap();
        assert_eq!(s.get_u64("batch_size"), Some(25));
        assert_eq!(s.usize("batch_size").unwrap(), 25);
        assert!(s.bool("batch_size").is_err());
        assert_eq!(s.str("url").unwrap(), "https://h.example");
        assert_eq!(s.secret("password").unwrap().expose(), "pw");
        assert!(!format!("{s:?}").contains("\"pw\""));
    }

    #[test]
    fn errors_name_the_setting() {
        let err = Settings::check(&schema(), [("uri".into(), plain("x".into()))]).unwrap_err();
        assert!(err.to_string().contains("`uri`") && err.to_string().contains("`url`"));
        let err =
            Settings::check(&schema(), [("url".into(), plain("https://h".into()))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing setting `password` (the admin password)"
        );
        let err =
            Settings::check(&schema(), [("batch_size".into(), plain("10".into()))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `batch_size` must be of type integer, not the string \"10\""
        );
        let err =
            Settings::check(&schema(), [("batch_size".into(), plain(500.into()))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `batch_size` must be 1 to 100, not 500"
        );
        let err =
            Settings::check(&schema(), [("match_by".into(), plain("cn".into()))]).unwrap_err();
        assert!(err.to_string().contains("one of mail, sAMAccountName"));
        let err =
            Settings::check(&schema(), [("password".into(), plain("literal".into()))]).unwrap_err();
        assert!(err.to_string().contains("secret"));
    }

    #[test]
    fn list_settings() {
        let schema = [
            SettingSpec::strings("texts", "extra texts"),
            SettingSpec::strings("modes", "modes").choices(&["a", "b"]),
        ];
        let list = |v: Value| [("texts".to_owned(), plain(v))];
        let s = Settings::check(&schema, list(serde_json::json!(["One.", "two"]))).unwrap();
        assert_eq!(s.strings("texts"), ["One.", "two"]);
        assert!(s.strings("modes").is_empty(), "not given: empty");
        let s = Settings::check(&schema, list(serde_json::json!([]))).unwrap();
        assert!(s.strings("texts").is_empty());
        let err = Settings::check(&schema, list("One.\ntwo".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `texts` must be a list of strings, like [\"one\", \"two\"], not the string \"One.\ntwo\""
        );
        let err = Settings::check(&schema, list(serde_json::json!(["a", 3]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `texts[1]` must be of type string, not the number 3"
        );
        let err = Settings::check(
            &schema,
            [("modes".into(), plain(serde_json::json!(["a", "c"])))],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`modes[1]` must be one of a, b"),
            "{err}"
        );
        // Across the plugin boundary and back.
        let mut obj = Map::new();
        obj.insert("texts".into(), serde_json::json!(["x"]));
        assert_eq!(
            Settings::from_json(&schema, obj).unwrap().strings("texts"),
            ["x"]
        );
    }

    #[test]
    fn urls_must_be_roots() {
        assert!(check_root_url("https://mail.example.com").is_ok());
        assert!(check_root_url("http://127.0.0.1:8080/").is_ok());
        let err = check_root_url("https://mail.example.com/api/v1").unwrap_err();
        assert!(err.contains("https://mail.example.com"), "{err}");
        assert!(check_root_url("ftp://x").is_err());
        assert!(
            check_root_url("https://u:p@x")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(check_root_url("mail.example.com").is_err());
    }

    #[test]
    fn from_json_marks_secrets() {
        let mut obj = Map::new();
        obj.insert("url".into(), "https://h".into());
        obj.insert("password".into(), "pw".into());
        let s = Settings::from_json(&schema(), obj).unwrap();
        assert_eq!(s.secret("password").unwrap().expose(), "pw");
        assert_eq!(s.get_u64("batch_size"), Some(25));
    }
}
