//! What a connector says about itself: its description and settings schema.

use rekey_api::{Metadata, SettingType, SettingValue, Settings};
use serde_json::Value;

use crate::CheckResult;

/// The metadata is well formed: a valid name, at least one kind, unique settings
/// with defaults of their type, a doc line for every setting.
pub(super) fn describe(metadata: &Metadata) -> CheckResult {
    if let Err(why) = metadata.validate() {
        return CheckResult::fail("describe", why);
    }
    if let Some(spec) = metadata.settings.iter().find(|s| s.doc.trim().is_empty()) {
        return CheckResult::fail(
            "describe",
            format!("setting `{}` has no doc line for operators", spec.name),
        );
    }
    CheckResult::pass(
        "describe",
        format!(
            "{} {}: kinds {}, {} settings",
            metadata.name,
            metadata.version,
            metadata
                .kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
            metadata.settings.len()
        ),
    )
}

/// The schema refuses each required setting missing and each setting given a value
/// of another type.
pub(super) fn settings(metadata: &Metadata, valid: &[(String, SettingValue)]) -> CheckResult {
    let schema = &metadata.settings;
    if let Err(error) = Settings::check(schema, valid.iter().cloned()) {
        return CheckResult::fail(
            "settings",
            format!("the settings given do not suit the connector's own schema: {error}"),
        );
    }
    let mut missing = 0;
    for spec in schema.iter().filter(|s| s.required) {
        let without = valid.iter().filter(|(name, _)| *name != spec.name).cloned();
        if Settings::check(schema, without).is_ok() {
            return CheckResult::fail(
                "settings",
                format!("required setting `{}` left out was accepted", spec.name),
            );
        }
        missing += 1;
    }
    let mut mistyped = 0;
    for (name, value) in valid {
        let Some(spec) = schema.iter().find(|s| s.name == *name) else {
            continue;
        };
        let wrong = match (spec.secret, value) {
            (true, _) => SettingValue::Plain(Value::from(42)),
            (false, _) => SettingValue::Plain(match spec.ty {
                SettingType::Integer | SettingType::Boolean => {
                    Value::from("not a value of this type")
                }
                _ => Value::from(42),
            }),
        };
        let given = valid
            .iter()
            .map(|(n, v)| (n.clone(), if n == name { wrong.clone() } else { v.clone() }));
        if Settings::check(schema, given).is_ok() {
            return CheckResult::fail(
                "settings",
                format!("setting `{name}` given a value of another type was accepted"),
            );
        }
        mistyped += 1;
    }
    CheckResult::pass(
        "settings",
        format!(
            "{missing} required settings refused when missing, {mistyped} refused when mistyped"
        ),
    )
}
