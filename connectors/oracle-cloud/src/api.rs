//! Primavera Administration's JSON shapes and error texts (vendor-apis.md §3.3–3.4).

use serde::ser::SerializeSeq as _;
use serde::{Deserialize, Serialize, Serializer};

/// The words by which a `500` names the identity domain: a password it refused.
const IDENTITY_SYSTEM: &str = "identity management system";

/// The longest vendor text quoted in a message.
const MAX_TEXT: usize = 200;

/// A `User` of `GET user`, as far as rekey reads it. Every other field (there are
/// dozens, see §3.4) is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListedUser {
    #[serde(default)]
    pub login_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

impl ListedUser {
    /// "First Last", when the user has a name.
    pub fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// One entry of a `manual-reset-pwd` body: `{"loginId": "...", "password": ["P","a"]}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManualEntry<'a> {
    pub login_id: &'a str,
    pub password: CharArray<'a>,
}

/// A password written as Primavera wants it: a JSON array holding one string per
/// character (the Java side binds a `char[]`). Written straight from the secret,
/// without building a copy of each character.
pub(crate) struct CharArray<'a>(pub &'a str);

impl Serialize for CharArray<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.chars().count()))?;
        for c in self.0.chars() {
            // serde_json writes a `char` as a one-character string.
            seq.serialize_element(&c)?;
        }
        seq.end()
    }
}

/// Whether a `500` body names the identity domain, which is how Primavera reports
/// a password its identity domain refused.
pub(crate) fn names_identity_system(text: &str) -> bool {
    text.to_ascii_lowercase().contains(IDENTITY_SYSTEM)
}

/// A vendor's error body, fit to show the operator: trimmed and shortened. A body
/// that looks like JSON is not quoted (the documented errors are plain text, and
/// JSON may echo the request), and any of `secrets` it holds is redacted.
pub(crate) fn vendor_text(body: &[u8], secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "no message".to_owned();
    }
    if text.starts_with('{') || text.starts_with('[') {
        return "a JSON body, not shown".to_owned();
    }
    let mut text: String = text.chars().take(MAX_TEXT).collect();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_character_arrays() {
        let entry = ManualEntry {
            login_id: "JSMITH",
            password: CharArray("Pa$\"\\ 1"),
        };
        assert_eq!(
            serde_json::to_string(&[entry]).unwrap(),
            r#"[{"loginId":"JSMITH","password":["P","a","$","\"","\\"," ","1"]}]"#
        );
    }

    #[test]
    fn users_are_read_leniently() {
        let users: Vec<ListedUser> = serde_json::from_str(
            r#"[{"loginId":"JSMITH","firstName":"Jim","lastName":"Smith","disabled":false,
                 "organization":{"id":"4"},"roles":[]},
                {"loginId":"X","firstName":null,"lastName":" "},
                {"emailAddress":"no-login@example.com"}]"#,
        )
        .unwrap();
        assert_eq!(users[0].display_name().as_deref(), Some("Jim Smith"));
        assert_eq!(users[1].display_name(), None);
        assert!(users[2].login_id.is_none());
    }

    #[test]
    fn vendor_texts_are_shortened_and_scrubbed() {
        assert_eq!(
            vendor_text(b" Invalid input, Please check.\n", &[]),
            "Invalid input, Please check."
        );
        assert_eq!(vendor_text(b"", &[]), "no message");
        assert_eq!(
            vendor_text(br#"[{"password":"x"}]"#, &[]),
            "a JSON body, not shown"
        );
        assert_eq!(
            vendor_text(b"bad value Secret-1 for JSMITH", &["Secret-1", "abc"]),
            "bad value [redacted] for JSMITH"
        );
        assert_eq!(vendor_text(&[b'x'; 500], &[]).len(), MAX_TEXT);
        assert!(names_identity_system(
            "Internal Server Error. Underlying Identity Management System threw an error, Please check the logs."
        ));
        assert!(!names_identity_system("Internal Server Error"));
    }
}
