//! SmarterMail's JSON shapes (vendor-apis.md §1).

use rekey_api::Secret;
use serde::{Deserialize, Serialize};

/// The body of `auth/authenticate-user`.
#[derive(Serialize)]
pub(crate) struct LoginBody<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// The body of `auth/refresh-token`.
#[derive(Serialize)]
pub(crate) struct RefreshBody<'a> {
    pub token: &'a str,
}

/// The login and refresh replies.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenReply {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub access_token_expiration: Option<String>,
}

/// The reply to `settings/sysadmin/manage-domain/{domain}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImpersonateReply {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub impersonate_access_token: Option<Secret>,
    #[serde(default)]
    pub impersonate_refresh_token: Option<Secret>,
    #[serde(default)]
    pub impersonate_access_token_expiration: Option<String>,
}

/// The common envelope `{success, message}`.
#[derive(Deserialize)]
pub(crate) struct Reply {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The reply to `settings/domain/list-users`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListUsersReply {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub user_data: Vec<ListedUser>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListedUser {
    pub email_address: String,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub security_flags: Option<SecurityFlags>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecurityFlags {
    #[serde(default)]
    pub is_disabled: bool,
}

/// The body of `settings/domain/post-user`: a partial merge of `userData`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostUserBody<'a> {
    pub email: &'a str,
    pub user_data: PostUserData<'a>,
}

#[derive(Serialize)]
pub(crate) struct PostUserData<'a> {
    pub password: &'a str,
}

/// The `message` of a JSON error body, or the body itself (shortened) when it is
/// not JSON.
pub(crate) fn message_of(body: &str) -> String {
    if let Ok(reply) = serde_json::from_str::<Reply>(body)
        && let Some(message) = reply.message
    {
        return message;
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        "no message".to_owned()
    } else {
        trimmed.chars().take(200).collect()
    }
}
