//! Secret references: `{ env = "NAME" }` and `{ file = "PATH" }`.

use std::path::Path;

use anyhow::{anyhow, bail};
use rekey_api::Secret;

use crate::trust::{self, LimitedReadError};

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

/// The largest secret file rekey reads: far more than any password or token.
pub const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// Reads a secret from a file: its whole content but one trailing newline. The
/// file must be readable by its owner only, and hold at most
/// [`SECRET_FILE_LIMIT`] bytes.
pub fn read_secret_file(path: &Path) -> anyhow::Result<Secret> {
    trust::check_secret_file(path, "secret file")?;
    let text = trust::read_limited(path, SECRET_FILE_LIMIT).map_err(|e| match e {
        LimitedReadError::TooLarge => anyhow!(
            "secret file {} is larger than {SECRET_FILE_LIMIT} bytes: it cannot be a password or token",
            path.display()
        ),
        LimitedReadError::Io(e) => {
            anyhow::Error::new(e).context(format!("cannot read secret file {}", path.display()))
        }
    })?;
    let mut value = text.as_str();
    if let Some(rest) = value.strip_suffix('\n') {
        value = rest.strip_suffix('\r').unwrap_or(rest);
    }
    if value.is_empty() {
        bail!("secret file {} is empty", path.display());
    }
    Ok(Secret::from(value))
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
        std::fs::write(file.path(), "\n").unwrap();
        let err = read_secret_file(file.path()).unwrap_err().to_string();
        assert!(err.ends_with("is empty"), "{err}");
        let err = SecretRef::Env("REKEY_TEST_SURELY_UNSET".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable REKEY_TEST_SURELY_UNSET is not set"
        );
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_others_can_read_or_too_large_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "s3cret").unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_file(file.path()).unwrap_err().to_string();
        assert!(err.contains(&file.path().display().to_string()), "{err}");
        assert!(err.contains("read by group or others"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(file.path(), "x".repeat(SECRET_FILE_LIMIT as usize + 1)).unwrap();
        let err = read_secret_file(file.path()).unwrap_err().to_string();
        assert!(err.contains("larger than 65536 bytes"), "{err}");
    }
}
