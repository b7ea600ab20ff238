//! The age recipients a job's results are encrypted to: `--recipient`,
//! `--recipients-file`, or `[rekey] recipients` in the config.
//!
//! A recipient is an age X25519 public key (`age1…`) or an SSH public key
//! (`ssh-ed25519 …`, `ssh-rsa …`), as the `age` tool takes them. They are checked
//! when given, and kept as given (they are public) in the job's definition, so that
//! `resume` and `discard` encrypt to the same keys.

use std::path::Path;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::trust;

/// The largest recipients file rekey reads (thousands of keys).
pub const RECIPIENTS_FILE_LIMIT: u64 = 1024 * 1024;

/// How much of a refused recipient an error message shows.
const SHOWN: usize = 60;

/// The recipients a job's results are encrypted to; none means plain results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Recipients(Vec<String>);

impl Recipients {
    /// Checks recipients given as text; `origin` says where they came from, for
    /// errors (`--recipient`, `[rekey] recipients in FILE`).
    pub fn parse<S: AsRef<str>>(
        values: impl IntoIterator<Item = S>,
        origin: &str,
    ) -> anyhow::Result<Recipients> {
        let mut checked = Vec::new();
        for (n, value) in values.into_iter().enumerate() {
            let value = value.as_ref().trim();
            if let Err(why) = parse_one(value) {
                bail!("{origin} (recipient {}): {why}", n + 1);
            }
            checked.push(value.to_owned());
        }
        Ok(Recipients(Vec::new()).with(checked))
    }

    /// Reads a recipients file: one recipient a line, `#` comments and blank lines
    /// ignored. The file gets the same trust checks as the config.
    pub fn read_file(path: &Path) -> anyhow::Result<Recipients> {
        let text = trust::read_trusted(path, "recipients file", RECIPIENTS_FILE_LIMIT)?;
        let mut checked = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Err(why) = parse_one(line) {
                bail!("recipients file {}, line {}: {why}", path.display(), n + 1);
            }
            checked.push(line.to_owned());
        }
        if checked.is_empty() {
            bail!(
                "recipients file {} holds no recipient: rekey would have no one to encrypt the results to",
                path.display()
            );
        }
        Ok(Recipients(Vec::new()).with(checked))
    }

    /// Adds `other`'s recipients.
    pub fn extend(&mut self, other: Recipients) {
        *self = std::mem::take(self).with(other.0);
    }

    /// These recipients and `more` (checked), a recipient given twice kept once.
    fn with(mut self, more: Vec<String>) -> Recipients {
        for recipient in more {
            if !self.0.contains(&recipient) {
                self.0.push(recipient);
            }
        }
        self
    }

    /// Whether there are none (the results are written plain).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// An encryptor to every recipient, or `None` for plain results.
    pub(super) fn encryptor(&self) -> std::io::Result<Option<age::Encryptor>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let keys = self
            .0
            .iter()
            .map(|text| parse_one(text).map_err(std::io::Error::other))
            .collect::<std::io::Result<Vec<_>>>()?;
        age::Encryptor::with_recipients(keys.iter().map(|k| k.as_ref() as &dyn age::Recipient))
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("cannot encrypt to these recipients: {e}")))
    }
}

impl TryFrom<Vec<String>> for Recipients {
    type Error = String;

    fn try_from(values: Vec<String>) -> Result<Self, Self::Error> {
        Recipients::parse(values, "the job's recipients").map_err(|e| e.to_string())
    }
}

impl From<Recipients> for Vec<String> {
    fn from(recipients: Recipients) -> Self {
        recipients.0
    }
}

/// One recipient, or why `text` is not one (never quoting a secret key).
fn parse_one(text: &str) -> Result<Box<dyn age::Recipient + Send>, String> {
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("AGE-SECRET-KEY-") || upper.contains("PRIVATE KEY") {
        return Err(
            "this is a secret key, not a recipient: give its public key instead (`age-keygen -y KEYFILE` prints an age key's; an SSH key's is its .pub file)"
                .to_owned(),
        );
    }
    if text.starts_with("age1") {
        return text
            .parse::<age::x25519::Recipient>()
            .map(|r| Box::new(r) as _)
            .map_err(|why| {
                format!(
                    "`{}` is not an age X25519 recipient ({why}); age plugin recipients are not supported",
                    shown(text)
                )
            });
    }
    if text.starts_with("ssh-") {
        return text
            .parse::<age::ssh::Recipient>()
            .map(|r| Box::new(r) as _)
            .map_err(|why| {
                let why = match why {
                    age::ssh::ParseRecipientKeyError::Unsupported(kind) => {
                        format!(
                            "SSH keys of type {kind} are not supported: use ssh-ed25519 or ssh-rsa"
                        )
                    }
                    age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => {
                        "the RSA key is shorter than 2048 bits".to_owned()
                    }
                    age::ssh::ParseRecipientKeyError::RsaModulusTooLarge => {
                        "the RSA key is longer than age supports".to_owned()
                    }
                    _ => "it is not a valid SSH public key".to_owned(),
                };
                format!("`{}` is not a usable recipient: {why}", shown(text))
            });
    }
    Err(format!(
        "`{}` is not a recipient: give an age public key (age1…) or an SSH public key (ssh-ed25519 … or ssh-rsa …)",
        shown(text)
    ))
}

/// The start of a refused value, with anything unprintable escaped.
fn shown(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > SHOWN {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recipient and its identity.
    pub(crate) fn key() -> (String, age::x25519::Identity) {
        let identity = age::x25519::Identity::generate();
        (identity.to_public().to_string(), identity)
    }

    const SSH_ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust";

    #[test]
    fn age_and_ssh_recipients_are_accepted() {
        let (age_key, _) = key();
        let recipients = Recipients::parse([age_key.as_str(), SSH_ED25519], "--recipient").unwrap();
        assert_eq!(recipients.len(), 2);
        assert!(recipients.encryptor().unwrap().is_some());
        assert!(Recipients::default().encryptor().unwrap().is_none());
    }

    #[test]
    fn bad_recipients_are_named_and_secret_keys_never_quoted() {
        let err = Recipients::parse(["age1nope"], "--recipient")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--recipient (recipient 1): `age1nope`"),
            "{err}"
        );
        let err = Recipients::parse(["ssh-dss AAAA"], "--recipient")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssh-dss"), "{err}");
        let err = Recipients::parse(["bob\u{1b}[2J"], "--recipient")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bob\\u{1b}[2J"), "{err}");
        let secret = age::x25519::Identity::generate().to_string();
        use age::secrecy::ExposeSecret as _;
        let err = Recipients::parse([secret.expose_secret()], "--recipient")
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret key, not a recipient"), "{err}");
        assert!(!err.contains(&secret.expose_secret()[15..]), "{err}");
        let long = format!("x{}", "y".repeat(200));
        let err = Recipients::parse([long.as_str()], "--recipient")
            .unwrap_err()
            .to_string();
        assert!(err.len() < 250, "{err}");
    }

    #[test]
    fn files_hold_one_a_line_with_comments() {
        let (a, _) = key();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipients.txt");
        std::fs::write(
            &path,
            format!("# the admins\n\n{a}\n  {SSH_ED25519}  \n{a}\n"),
        )
        .unwrap();
        let mut recipients = Recipients::read_file(&path).unwrap();
        assert_eq!(recipients.len(), 2, "a repeated recipient is kept once");
        recipients.extend(Recipients::parse([a.as_str()], "x").unwrap());
        assert_eq!(recipients.len(), 2);
        std::fs::write(&path, format!("{a}\nnot-a-key\n")).unwrap();
        let err = Recipients::read_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        std::fs::write(&path, "# nobody\n").unwrap();
        assert!(Recipients::read_file(&path).is_err());
    }

    #[test]
    fn stored_recipients_are_checked_when_read_back() {
        let (a, _) = key();
        let json = serde_json::to_string(&Recipients::parse([a.as_str()], "x").unwrap()).unwrap();
        assert_eq!(json, format!("[\"{a}\"]"));
        let back: Recipients = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 1);
        assert!(serde_json::from_str::<Recipients>("[\"nonsense\"]").is_err());
    }
}
