//! Secret references: `{ env = "NAME" }` and `{ file = "PATH" }`.

use std::fs;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use rekey_api::Secret;

/// Where a secret setting's value comes from.
#[derive(Debug)]
pub enum SecretRef {
    /// Written in the config itself.
    Literal(Secret),
    /// `{ env = "NAME" }`.
    Env(String),
    /// `{ file = "PATH" }` (relative to the config's directory).
    File(std::path::PathBuf),
}

impl SecretRef {
    /// Reads a reference from a setting's TOML value; `None` when the value is
    /// neither a string nor a reference table.
    pub fn parse(value: &toml::Value, config_dir: &Path) -> anyhow::Result<Option<SecretRef>> {
        match value {
            toml::Value::String(text) => Ok(Some(SecretRef::Literal(Secret::from(text.as_str())))),
            toml::Value::Table(table) => {
                let mut keys = table.keys();
                match (
                    keys.next().map(String::as_str),
                    keys.next(),
                    table.values().next(),
                ) {
                    (Some("env"), None, Some(toml::Value::String(name))) => {
                        Ok(Some(SecretRef::Env(name.clone())))
                    }
                    (Some("file"), None, Some(toml::Value::String(path))) => {
                        Ok(Some(SecretRef::File(config_dir.join(path))))
                    }
                    _ => bail!("must be {{ env = \"NAME\" }} or {{ file = \"PATH\" }}"),
                }
            }
            _ => Ok(None),
        }
    }

    /// Whether the secret is written in the config itself.
    pub fn is_literal(&self) -> bool {
        matches!(self, SecretRef::Literal(_))
    }

    /// The secret's value.
    pub fn resolve(self) -> anyhow::Result<Secret> {
        match self {
            SecretRef::Literal(secret) => Ok(secret),
            SecretRef::Env(name) => {
                let value = std::env::var(&name).map_err(|e| match e {
                    std::env::VarError::NotPresent => {
                        anyhow!("environment variable {name} is not set")
                    }
                    std::env::VarError::NotUnicode(_) => {
                        anyhow!("environment variable {name} is not valid UTF-8")
                    }
                })?;
                if value.is_empty() {
                    bail!("environment variable {name} is empty");
                }
                Ok(Secret::new(value))
            }
            SecretRef::File(path) => read_secret_file(&path),
        }
    }
}

/// Reads a secret from a file: its whole content but one trailing newline.
pub fn read_secret_file(path: &Path) -> anyhow::Result<Secret> {
    let mut text = fs::read_to_string(path)
        .with_context(|| format!("cannot read secret file {}", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    let secret = Secret::new(text);
    if secret.is_empty() {
        bail!("secret file {} is empty", path.display());
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let dir = Path::new("/etc/rekey");
        let literal = SecretRef::parse(&toml::Value::String("x".into()), dir)
            .unwrap()
            .unwrap();
        assert!(literal.is_literal());
        let env: toml::Value =
            toml::from_str::<toml::Table>("v = { env = 'X' }").unwrap()["v"].clone();
        assert!(
            matches!(SecretRef::parse(&env, dir).unwrap(), Some(SecretRef::Env(n)) if n == "X")
        );
        let file: toml::Value =
            toml::from_str::<toml::Table>("v = { file = 'pw.txt' }").unwrap()["v"].clone();
        assert!(
            matches!(SecretRef::parse(&file, dir).unwrap(), Some(SecretRef::File(p)) if p == Path::new("/etc/rekey/pw.txt"))
        );
        let bad: toml::Value =
            toml::from_str::<toml::Table>("v = { vault = 'x' }").unwrap()["v"].clone();
        assert!(SecretRef::parse(&bad, dir).is_err());
        assert!(
            SecretRef::parse(&toml::Value::Integer(3), dir)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn files_lose_one_trailing_newline() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"s3cret\r\n").unwrap();
        assert_eq!(read_secret_file(file.path()).unwrap().expose(), "s3cret");
        let err = SecretRef::Env("REKEY_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable REKEY_TEST_SURELY_UNSET is not set"
        );
    }
}
