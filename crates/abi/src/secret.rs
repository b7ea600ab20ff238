//! [`Secret`]: a string that never prints and is wiped from memory when dropped.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Deserializer};
use zeroize::Zeroize;

/// A secret string: an admin credential, an API token or a new password.
///
/// `Debug` prints `Secret([redacted])`, there is no `Display`, and the bytes are
/// zeroized when the value is dropped. Reading the value takes an explicit
/// [`Secret::expose`], so every place that handles the plaintext is easy to find.
///
/// `Secret` deserializes from a JSON string but deliberately does not implement
/// `Serialize`: a struct holding one cannot be logged or dumped by accident. Wire
/// types that must carry a secret opt in field by field with
/// `#[serde(with = "rekey_api::secret::expose")]`.
pub struct Secret(SecretBox<str>);

impl Secret {
    /// Wraps a string. The string's buffer moves into the secret; if it had spare
    /// capacity, the value is copied into an exact-size buffer and the original
    /// buffer is zeroized, so no stray copy is left behind.
    pub fn new(value: impl Into<String>) -> Self {
        let mut value: String = value.into();
        let boxed: Box<str> = if value.capacity() == value.len() {
            value.into_boxed_str()
        } else {
            let exact = Box::<str>::from(value.as_str());
            value.zeroize();
            exact
        };
        Secret(SecretBox::new(boxed))
    }

    /// The plaintext. Call this only where the value must leave the process (a
    /// request body, the results file) or be compared.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret::new(self.expose().to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value.to_owned())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// `#[serde(with = "rekey_api::secret::expose")]`: serialize a [`Secret`] field as its
/// plaintext. Used only by wire types that must carry the value to the other side.
pub mod expose {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Secret;

    /// Writes the plaintext.
    pub fn serialize<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    /// Reads a plaintext string into a [`Secret`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        Secret::deserialize(deserializer)
    }

    /// The same for `Option<Secret>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::Secret;

        /// Writes the plaintext, or `null`.
        pub fn serialize<S: Serializer>(
            secret: &Option<Secret>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match secret {
                Some(secret) => serializer.serialize_some(secret.expose()),
                None => serializer.serialize_none(),
            }
        }

        /// Reads a plaintext string or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Secret>, D::Error> {
            Option::<Secret>::deserialize(deserializer)
        }
    }

    /// The same for `Vec<Secret>`.
    pub mod vec {
        use serde::ser::SerializeSeq;
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::Secret;

        /// Writes an array of plaintext strings.
        pub fn serialize<S: Serializer>(
            secrets: &[Secret],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(secrets.len()))?;
            for secret in secrets {
                seq.serialize_element(secret.expose())?;
            }
            seq.end()
        }

        /// Reads an array of plaintext strings.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<Secret>, D::Error> {
            Vec::<Secret>::deserialize(deserializer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::from("hunter2-Very-Secret");
        let printed = format!("{secret:?} {:?}", Some(&secret));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn spare_capacity_is_copied_exactly() {
        let mut value = String::with_capacity(64);
        value.push_str("abc");
        let secret = Secret::new(value);
        assert_eq!(secret.expose(), "abc");
        assert_eq!(secret.len(), 3);
    }

    #[test]
    fn wire_round_trip_is_explicit() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Wire {
            #[serde(with = "expose")]
            one: Secret,
            #[serde(with = "expose::option")]
            maybe: Option<Secret>,
            #[serde(with = "expose::vec")]
            many: Vec<Secret>,
        }
        let json = serde_json::to_string(&Wire {
            one: "a".into(),
            maybe: None,
            many: vec!["b".into(), "c".into()],
        })
        .unwrap();
        assert_eq!(json, r#"{"one":"a","maybe":null,"many":["b","c"]}"#);
        let back: Wire = serde_json::from_str(&json).unwrap();
        assert_eq!(back.one.expose(), "a");
        assert!(back.maybe.is_none());
        assert_eq!(back.many[1].expose(), "c");
    }
}
