//! A target's connector settings: TOML values to the connector's schema.

use anyhow::{Context, anyhow, bail};
use rekey_api::{SettingSpec, SettingValue, Settings};

use super::secret_ref::SecretRef;
use super::{Config, TargetConfig};

/// Resolves and checks a target's connector settings against `schema`: secrets
/// come from their references (a literal secret only when the config file is
/// private), plain values are converted, and every key, type and required setting
/// is checked.
pub fn connector_settings(
    config: &Config,
    target: &TargetConfig,
    schema: &[SettingSpec],
) -> anyhow::Result<Settings> {
    Ok(Settings::check(
        schema,
        connector_values(config, target, schema)?,
    )?)
}

/// A target's connector settings as values, secrets resolved, before they are
/// checked against the schema (the conformance kit varies them).
pub fn connector_values(
    config: &Config,
    target: &TargetConfig,
    schema: &[SettingSpec],
) -> anyhow::Result<Vec<(String, SettingValue)>> {
    let mut values = Vec::with_capacity(target.settings.len());
    for (name, value) in &target.settings {
        let spec = schema.iter().find(|s| &s.name == name);
        let reference =
            SecretRef::parse(value, &config.dir()).with_context(|| format!("setting `{name}`"))?;
        let value = match (spec, reference) {
            (Some(spec), Some(reference)) if spec.secret => {
                if reference.is_literal() && !config.private {
                    bail!(
                        "setting `{name}` is a secret written in the config, and {path} can be read by group or others: give it as {{ env = \"VAR\" }} or {{ file = \"PATH\" }}, or make the config private (chmod 600 {path})",
                        path = config.path.display()
                    );
                }
                SettingValue::Secret(
                    reference
                        .resolve()
                        .with_context(|| format!("setting `{name}`"))?,
                )
            }
            (Some(_), Some(reference)) if !reference.is_literal() => {
                bail!("setting `{name}` is not a secret: give its value directly")
            }
            _ => SettingValue::Plain(
                toml_to_json(value).map_err(|e| anyhow!("setting `{name}`: {e}"))?,
            ),
        };
        values.push((name.clone(), value));
    }
    Ok(values)
}

fn toml_to_json(value: &toml::Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{f} is not a usable number"))?,
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => serde_json::Value::Object(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), toml_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}
