//! ResetPwd and UnlockUser: the calls that change accounts, one result object per
//! `inputFormat` entry.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::directory::LOOKUP_ATTRIBUTES;
use super::texts::quoted;
use super::{
    ERROR_CODE_QUOTA, ERROR_CODE_REQUEST, Inner, QuotaRefusal, RawRequest, ReplyShape, Shared,
    severe,
};
use crate::common::{json_response, lock};

/// What a per-user call does to each account it finds.
enum Change {
    Password(Option<String>, Option<bool>),
    Unlock,
}

pub(super) async fn reset_pwd(State(shared): State<Arc<Shared>>, request: RawRequest) -> Response {
    per_user_call(&shared, &request, true)
}

pub(super) async fn unlock_user(
    State(shared): State<Arc<Shared>>,
    request: RawRequest,
) -> Response {
    per_user_call(&shared, &request, false)
}

/// ResetPwd (`reset`) or UnlockUser.
fn per_user_call(shared: &Shared, request: &RawRequest, reset: bool) -> Response {
    let params = match shared.authorise(request, true, true) {
        Ok(params) => params,
        Err(response) => return response,
    };
    let texts = shared.texts();
    let input = match shared.encoded(&params, "inputFormat") {
        Ok(Some(input)) if !input.is_empty() => input,
        Ok(_) => {
            return severe(
                &format!("{} inputFormat", texts.missing),
                Some(ERROR_CODE_REQUEST),
            );
        }
        Err(response) => return response,
    };
    let Ok(Value::Array(entries)) = serde_json::from_str::<Value>(&input) else {
        return shared.request_error("inputFormat is not a JSON array");
    };
    let change = if reset {
        let must_change = match params.get("mustChangePassword") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
            Some(_) => return shared.request_error("mustChangePassword must be true or false"),
        };
        match params.get("passwordType").unwrap_or("password") {
            "password" => match shared.encoded(&params, "pwd") {
                Ok(Some(pwd)) if !pwd.is_empty() => Change::Password(Some(pwd), must_change),
                Ok(_) => {
                    return severe(&format!("{} pwd", texts.missing), Some(ERROR_CODE_REQUEST));
                }
                Err(response) => return response,
            },
            "generate" => Change::Password(None, must_change),
            _ => return shared.request_error("passwordType must be password or generate"),
        }
    } else {
        Change::Unlock
    };
    let mut inner = lock(&shared.inner);
    if reset {
        inner.reset_requests += 1;
    }
    let limit = shared.config.daily_limit;
    if shared.quota_used(&mut inner) >= limit
        && shared.config.quota_refusal == QuotaRefusal::Envelope
    {
        return severe(texts.quota, Some(ERROR_CODE_QUOTA));
    }
    let results: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut result = apply(shared, &mut inner, entry, &change);
            if shared.config.reply_shape == ReplyShape::Seed {
                result.remove("status");
                result.remove("reset");
            }
            Value::Object(result)
        })
        .collect();
    json_response(StatusCode::OK, Value::Array(results))
}

/// Applies one `inputFormat` entry and returns its result object.
fn apply(shared: &Shared, inner: &mut Inner, entry: &Value, change: &Change) -> Map<String, Value> {
    let texts = shared.texts();
    let failed = |mut result: Map<String, Value>, message: String| {
        result.insert("statusMessage".into(), message.into());
        result.insert("status".into(), "0".into());
        result.insert("reset".into(), "no".into());
        result
    };
    // Lookup by the first supported attribute, names and values case-insensitive.
    let key = entry.as_object().and_then(|object| {
        object.iter().find_map(|(name, value)| {
            let name = name.to_lowercase();
            let value = value.as_str()?;
            LOOKUP_ATTRIBUTES
                .contains(&name.as_str())
                .then(|| (name, value.to_owned()))
        })
    });
    let Some((attribute, value)) = key else {
        return failed(Map::new(), texts.no_attribute.to_owned());
    };
    let Some(index) = inner
        .accounts
        .iter()
        .position(|a| a.has(&attribute, &value))
    else {
        let mut echo = Map::new();
        for (name, given) in entry.as_object().into_iter().flatten() {
            echo.insert(name.clone(), given.clone());
        }
        return failed(echo, format!("{} {}", texts.not_found, quoted(&value)));
    };
    let result = inner.accounts[index].result();
    if shared.quota_used(inner) >= shared.config.daily_limit {
        let mut result = failed(result, texts.quota.to_owned());
        result.insert("ERROR_CODE".into(), ERROR_CODE_QUOTA.into());
        return result;
    }
    let message = match change {
        Change::Password(given, must_change) => {
            let policy = &shared.config.policy;
            let password = match given {
                Some(password) => password.clone(),
                None => policy.generate(&inner.accounts[index], &mut inner.rng),
            };
            if !policy.allows(&inner.accounts[index], &password) {
                return failed(result, texts.policy.to_owned());
            }
            let account = &mut inner.accounts[index];
            account.password = password.clone();
            account.history.push(password);
            if must_change.is_some() {
                account.must_change = *must_change;
            }
            match shared.config.reply_shape {
                ReplyShape::Status => texts.reset_ok,
                ReplyShape::Seed => texts.modified_ok,
            }
        }
        Change::Unlock => {
            inner.accounts[index].locked = false;
            texts.unlock_ok
        }
    };
    inner.quota_used += 1;
    let mut result = result;
    result.insert("statusMessage".into(), message.into());
    result.insert("status".into(), "1".into());
    result.insert(
        "reset".into(),
        if matches!(change, Change::Unlock) {
            "no"
        } else {
            "yes"
        }
        .into(),
    );
    result
}
