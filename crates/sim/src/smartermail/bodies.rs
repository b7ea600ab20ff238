//! Reading request bodies as the real server's .NET model binding does: field
//! names without regard to case, JSON or form.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use super::{bad_request, unsupported_media};
use crate::common::has_content_type;

/// The login's fields.
pub(super) struct Credentials {
    pub username: String,
    pub password: String,
}

/// A field of a JSON object, its name compared without regard to case (.NET
/// model binding), an exact match first.
pub(super) fn field<'a>(
    object: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// A string field of a JSON object (see [`field`]).
pub(super) fn string_field(object: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    field(object, name)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Reads `{username, password}` from a JSON or form body.
pub(super) fn credentials(headers: &HeaderMap, body: &[u8]) -> Result<Credentials, Response> {
    let (username, password) = if has_content_type(headers, "application/json") {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return Err(bad_request("The request body is not valid JSON."));
        };
        (
            string_field(&object, "username"),
            string_field(&object, "password"),
        )
    } else if has_content_type(headers, "application/x-www-form-urlencoded") {
        let mut username = None;
        let mut password = None;
        for (key, value) in url::form_urlencoded::parse(body) {
            if key.eq_ignore_ascii_case("username") {
                username.get_or_insert(value.into_owned());
            } else if key.eq_ignore_ascii_case("password") {
                password.get_or_insert(value.into_owned());
            }
        }
        (username, password)
    } else {
        return Err(unsupported_media());
    };
    match (username, password) {
        (Some(username), Some(password)) => Ok(Credentials { username, password }),
        _ => Err(bad_request("username and password are required.")),
    }
}
