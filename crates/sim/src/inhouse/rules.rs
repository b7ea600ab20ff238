//! What Acme Directory accepts: the media types, the shape of a reset item, its
//! credential policy, the values it makes, and its opaque paging cursor.

use axum::http::{HeaderMap, header};
use rand::RngExt as _;
use rand::rngs::StdRng;
use serde_json::Value;

/// Which credential of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    /// The login password.
    Password,
    /// The numeric PIN.
    Passcode,
}

impl Credential {
    /// The JSON field that carries a value of this credential, singular.
    pub(super) fn field(self) -> &'static str {
        match self {
            Credential::Password => "password",
            Credential::Passcode => "passcode",
        }
    }
}

/// Whether a request's `Accept` header (if any) admits a JSON reply.
pub(super) fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| {
            v.split(',').any(|t| {
                let t = t.split(';').next().unwrap_or_default().trim();
                matches!(t, "application/json" | "application/*" | "*/*")
            })
        })
}

/// Hex of a string, and back: the cursor is opaque to clients, not secret.
pub(super) fn encode_cursor(last_id: &str) -> String {
    let hex: String = last_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("c1.{hex}")
}

pub(super) fn decode_cursor(cursor: &str) -> Option<String> {
    let hex = cursor.strip_prefix("c1.")?;
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Reads item `i`: its id and its value (`None` for `generate: true`), or why the
/// request is malformed.
pub(super) fn parse_item(
    i: usize,
    item: &Value,
    credential: Credential,
) -> Result<(String, Option<String>), String> {
    let field = credential.field();
    let Some(item) = item.as_object() else {
        return Err(format!("items[{i}] must be an object"));
    };
    if let Some(other) = item
        .keys()
        .find(|k| !["id", field, "generate"].contains(&k.as_str()))
    {
        return Err(format!("items[{i}]: unknown field `{other}`"));
    }
    let id = match item.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(format!("items[{i}].id must be a non-empty string")),
    };
    match (item.get(field), item.get("generate")) {
        (Some(Value::String(value)), None) => {
            let well_formed = match credential {
                Credential::Password => value.chars().all(|c| c == ' ' || c.is_ascii_graphic()),
                Credential::Passcode => value.bytes().all(|b| b.is_ascii_digit()),
            };
            if value.is_empty() || !well_formed {
                let shape = match credential {
                    Credential::Password => "printable ASCII",
                    Credential::Passcode => "digits",
                };
                return Err(format!("items[{i}].{field} must be non-empty {shape}"));
            }
            Ok((id, Some(value.clone())))
        }
        (None, Some(Value::Bool(true))) => Ok((id, None)),
        _ => Err(format!(
            "items[{i}] needs either `{field}` (a string) or `generate: true`, not both"
        )),
    }
}

/// The directory's policy: passwords 12 to 64 characters with an upper-case and a
/// lower-case letter and a digit, not containing the user id; passcodes 6 to 12
/// digits, not all the same.
pub(super) fn policy_violation(id: &str, value: &str, credential: Credential) -> Option<String> {
    match credential {
        Credential::Password => {
            let len = value.chars().count();
            if !(12..=64).contains(&len) {
                return Some("password must be 12 to 64 characters long".into());
            }
            let classes = [
                value.chars().any(|c| c.is_ascii_uppercase()),
                value.chars().any(|c| c.is_ascii_lowercase()),
                value.chars().any(|c| c.is_ascii_digit()),
            ];
            if classes.contains(&false) {
                return Some(
                    "password must contain an upper-case letter, a lower-case letter and a digit"
                        .into(),
                );
            }
            if value.to_lowercase().contains(&id.to_lowercase()) {
                return Some("password must not contain the user id".into());
            }
            None
        }
        Credential::Passcode => {
            if !(6..=12).contains(&value.len()) {
                return Some("passcode must be 6 to 12 digits".into());
            }
            if value.bytes().all(|b| Some(&b) == value.as_bytes().first()) {
                return Some("passcode must not repeat one digit".into());
            }
            None
        }
    }
}

/// A value the directory makes: 20 characters meeting its password policy, or 8
/// digits that are not all the same.
pub(super) fn make_value(rng: &mut StdRng, credential: Credential) -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const ALL: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_!#";
    let mut pick = |set: &[u8]| char::from(set[rng.random_range(0..set.len())]);
    match credential {
        Credential::Password => {
            let mut value: String = [pick(UPPER), pick(LOWER), pick(DIGIT)].iter().collect();
            value.extend((0..17).map(|_| pick(ALL)));
            value
        }
        Credential::Passcode => loop {
            let value: String = (0..8).map(|_| pick(b"0123456789")).collect();
            if policy_violation("", &value, credential).is_none() {
                break value;
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use serde_json::json;

    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = encode_cursor("u00042");
        assert_eq!(decode_cursor(&cursor).as_deref(), Some("u00042"));
        for bad in ["", "c1.", "c1.zz", "c1.abc", "u00042", "c2.7530"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_values_meet_the_policy() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let password = make_value(&mut rng, Credential::Password);
            assert_eq!(
                policy_violation("u00001", &password, Credential::Password),
                None
            );
            let passcode = make_value(&mut rng, Credential::Passcode);
            assert_eq!(passcode.len(), 8);
            assert_eq!(
                policy_violation("u00001", &passcode, Credential::Passcode),
                None
            );
        }
    }

    #[test]
    fn items_are_checked_for_shape() {
        let ok = json!({ "id": "u1", "passcode": "12345678" });
        assert!(parse_item(0, &ok, Credential::Passcode).is_ok());
        for bad in [
            json!({ "id": "u1", "passcode": "12a4" }),
            json!({ "id": "u1", "password": "x" }),
            json!({ "id": "", "passcode": "1234" }),
            json!({ "id": "u1", "passcode": "1234", "generate": true }),
            json!({ "id": "u1", "generate": false }),
            json!({ "id": "u1" }),
        ] {
            assert!(parse_item(3, &bad, Credential::Passcode).is_err(), "{bad}");
        }
    }
}
