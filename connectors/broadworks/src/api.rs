//! The Odin API's JSON shapes (vendor-apis.md §2) and its error replies.

use rekey_api::Secret;
use rekey_http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of `POST auth/token`. No `encryption` field: R22 and later take the
/// plain password, and older releases are out of scope.
#[derive(Serialize)]
pub(crate) struct LoginBody<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// The reply to `POST auth/token` and `PUT auth/token`. Only `token` is documented;
/// the other fields are expiry hints some deployments may add, read when present
/// and ignored when unreadable.
#[derive(Deserialize)]
pub(crate) struct TokenReply {
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub expiration: Option<Value>,
    #[serde(default)]
    pub expires: Option<Value>,
    #[serde(default, rename = "expiresAt")]
    pub expires_at: Option<Value>,
    #[serde(default, rename = "expiresIn")]
    pub expires_in: Option<Value>,
    #[serde(default, rename = "expires_in")]
    pub expires_in_snake: Option<Value>,
}

/// One user of `GET users`: only the fields rekey uses; the rest are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListedUser {
    pub user_id: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

impl ListedUser {
    /// "First Last", if the user has either.
    pub fn display_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .filter_map(|p| p.as_deref().map(str::trim))
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// The reply to `GET users/authentication`: the SIP authentication settings.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthenticationSettings {
    #[serde(default)]
    pub user_name: Option<String>,
}

/// The body of `PUT users/authentication`: the user, the SIP authentication name
/// read just before (as the Odin UI sends it back), and the new password.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthenticationBody<'a> {
    pub user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
    pub new_password: &'a str,
}

/// The body of `PUT users/passwords` (web password). `newPassword`, not the
/// `password` of odins-spear 2.3.0 (vendor-apis.md §2.3 [!]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebPasswordBody<'a> {
    pub user_id: &'a str,
    pub new_password: &'a str,
}

/// The body of `PUT users/portal-passcode`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasscodeBody<'a> {
    pub user_id: &'a str,
    pub new_passcode: &'a str,
}

/// The plural reply of `GET password/generate?limit=N`.
#[derive(Deserialize)]
pub(crate) struct GeneratedPasswords {
    pub passwords: Vec<Secret>,
}

/// The plural reply of `GET passcode/generate?limit=N`.
#[derive(Deserialize)]
pub(crate) struct GeneratedPasscodes {
    pub passcodes: Vec<Secret>,
}

/// The singular reply of `GET sip-password/generate`.
#[derive(Deserialize)]
pub(crate) struct GeneratedPassword {
    pub password: Secret,
}

/// Odin's error body, `{details, status, error}` (types not documented: `status`
/// may be a number or a string).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    details: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// An error reply, described for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The message: `"{details} {status}: {error}"` as odins-spear formats it, or
    /// the HTTP status when the body is not Odin's error shape.
    pub message: String,
    /// Whether the body was Odin's error shape, i.e. the answer came from Odin and
    /// not from something in front of it.
    pub from_odin: bool,
}

/// Describes an error reply. The raw body is never quoted unless it is Odin's
/// error shape: anything else might echo what was sent.
pub(crate) fn failure(status: StatusCode, body: &[u8]) -> Failure {
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .filter(|b| b.details.is_some() || b.error.is_some());
    match parsed {
        Some(body) => {
            let code = body
                .status
                .as_ref()
                .map(text)
                .unwrap_or_else(|| status.as_u16().to_string());
            let error = body
                .error
                .as_ref()
                .map(text)
                .or_else(|| status.canonical_reason().map(str::to_owned))
                .unwrap_or_default();
            let message = match body.details.as_ref().map(text) {
                Some(details) if !details.is_empty() => format!("{details} {code}: {error}"),
                _ => format!("{code}: {error}"),
            };
            Failure {
                message,
                from_odin: true,
            }
        }
        None => Failure {
            message: format!("HTTP {status}"),
            from_odin: false,
        },
    }
}

/// A JSON value as plain text (strings without their quotes).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_formatted_like_the_library() {
        let body = br#"{"details":"[Error 4961] Password does not meet the password rules","status":400,"error":"Bad Request"}"#;
        let f = failure(StatusCode::BAD_REQUEST, body);
        assert_eq!(
            f.message,
            "[Error 4961] Password does not meet the password rules 400: Bad Request"
        );
        assert!(f.from_odin);

        let f = failure(
            StatusCode::NOT_FOUND,
            br#"{"error":"Not Found","status":"404"}"#,
        );
        assert_eq!(f.message, "404: Not Found");

        let f = failure(StatusCode::NOT_FOUND, br#"{"details":"User not found"}"#);
        assert_eq!(f.message, "User not found 404: Not Found");
    }

    #[test]
    fn other_bodies_are_not_quoted() {
        let f = failure(StatusCode::BAD_GATEWAY, b"<html>secret-echo</html>");
        assert_eq!(f.message, "HTTP 502 Bad Gateway");
        assert!(!f.from_odin);
        let f = failure(StatusCode::BAD_REQUEST, br#"{"message":"secret-echo"}"#);
        assert_eq!(f.message, "HTTP 400 Bad Request");
        let f = failure(StatusCode::BAD_REQUEST, b"[]");
        assert!(!f.from_odin);
    }

    #[test]
    fn display_names() {
        let user: ListedUser =
            serde_json::from_str(r#"{"userId":"a@b","firstName":"John","lastName":" Smith "}"#)
                .unwrap();
        assert_eq!(user.display_name().as_deref(), Some("John Smith"));
        let user: ListedUser = serde_json::from_str(r#"{"userId":"a@b","lastName":""}"#).unwrap();
        assert_eq!(user.display_name(), None);
    }

    #[test]
    fn bodies_use_odins_field_names() {
        let body = serde_json::to_string(&AuthenticationBody {
            user_id: "u@d",
            user_name: Some("u"),
            new_password: "p",
        })
        .unwrap();
        assert_eq!(body, r#"{"userId":"u@d","userName":"u","newPassword":"p"}"#);
        let body = serde_json::to_string(&PasscodeBody {
            user_id: "u@d",
            new_passcode: "1357",
        })
        .unwrap();
        assert_eq!(body, r#"{"userId":"u@d","newPasscode":"1357"}"#);
        let body = serde_json::to_string(&WebPasswordBody {
            user_id: "u@d",
            new_password: "p",
        })
        .unwrap();
        assert_eq!(body, r#"{"userId":"u@d","newPassword":"p"}"#);
    }
}
