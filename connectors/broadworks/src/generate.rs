//! Vendor-made values: Odin's password, passcode and SIP password generators.
//!
//! The web password and passcode generators take `limit=N` and answer with a plural
//! array (`passwords`, `passcodes`); without `limit` the reply is a singular object,
//! so `limit` is always sent, and values are fetched up to [`MAX_LIMIT`] a call,
//! never one call per user. The SIP generator is documented without parameters and
//! with a singular reply; whether it takes `limit` is unknown (vendor-apis.md §2.3
//! [!], §6), so it is called once per value, a few calls at a time.

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use rekey_api::{ConnectorError, CredentialKind, Secret, StatusMap};
use rekey_http::Method;

use crate::api::{GeneratedPasscodes, GeneratedPassword, GeneratedPasswords};
use crate::client::Odin;

/// The most values asked for in one call (odins-spear's bulk script asks for a
/// whole user list at once; 100 keeps replies small and within any server cap).
pub(crate) const MAX_LIMIT: usize = 100;

/// SIP generator calls in flight at once.
const SIP_CONCURRENCY: usize = 4;

/// The group whose rules Odin's generators follow.
pub(crate) struct Group<'a> {
    pub service_provider_id: &'a str,
    pub group_id: &'a str,
    /// What statuses mean on a call about the group.
    pub statuses: &'a StatusMap,
}

/// `count` new values of `kind` from Odin.
pub(crate) async fn generate(
    odin: &Odin,
    group: &Group<'_>,
    kind: CredentialKind,
    count: usize,
) -> Result<Vec<Secret>, ConnectorError> {
    let mut values = Vec::with_capacity(count);
    match kind {
        CredentialKind::Password | CredentialKind::Passcode => {
            while values.len() < count {
                let limit = (count - values.len()).min(MAX_LIMIT);
                values.extend(batch(odin, group, kind, limit).await?);
            }
        }
        CredentialKind::Sip => {
            values = stream::iter(0..count)
                .map(|_| sip_password(odin, group.statuses))
                .buffer_unordered(SIP_CONCURRENCY)
                .try_collect()
                .await?;
        }
    }
    Ok(values)
}

/// One `GET password/generate` or `GET passcode/generate` call for `limit` values.
async fn batch(
    odin: &Odin,
    group: &Group<'_>,
    kind: CredentialKind,
    limit: usize,
) -> Result<Vec<Secret>, ConnectorError> {
    let limit_text = limit.to_string();
    let query = [
        ("serviceProviderId", group.service_provider_id),
        ("groupId", group.group_id),
        ("limit", limit_text.as_str()),
    ];
    let endpoint = if kind == CredentialKind::Passcode {
        "passcode"
    } else {
        "password"
    };
    let reply = odin
        .call::<()>(Method::GET, &[endpoint, "generate"], &query, None)
        .await?;
    if !reply.is_success() {
        return Err(reply.error(group.statuses));
    }
    let values = if kind == CredentialKind::Passcode {
        reply.json::<GeneratedPasscodes>()?.passcodes
    } else {
        reply.json::<GeneratedPasswords>()?.passwords
    };
    check_values(kind, limit, &values, &reply.what)?;
    Ok(values)
}

/// One `GET sip-password/generate` call.
async fn sip_password(odin: &Odin, statuses: &StatusMap) -> Result<Secret, ConnectorError> {
    let reply = odin
        .call::<()>(Method::GET, &["sip-password", "generate"], &[], None)
        .await?;
    if !reply.is_success() {
        return Err(reply.error(statuses));
    }
    let value = reply.json::<GeneratedPassword>()?.password;
    check_values(
        CredentialKind::Sip,
        1,
        std::slice::from_ref(&value),
        &reply.what,
    )?;
    Ok(value)
}

/// Refuses a reply with the wrong number of values, an empty value, or a passcode
/// that is not all digits: setting such a value could lock a user out.
fn check_values(
    kind: CredentialKind,
    wanted: usize,
    values: &[Secret],
    what: &str,
) -> Result<(), ConnectorError> {
    if values.len() != wanted {
        return Err(ConnectorError::fatal(format!(
            "{what} gave {} values for limit={wanted}",
            values.len()
        )));
    }
    if values.iter().any(Secret::is_empty) {
        return Err(ConnectorError::fatal(format!("{what} gave an empty value")));
    }
    if kind == CredentialKind::Passcode
        && values
            .iter()
            .any(|v| !v.expose().bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ConnectorError::fatal(format!(
            "{what} gave a passcode that is not all digits"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rekey_api::ErrorKind;

    use super::*;

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|v| Secret::from(*v)).collect()
    }

    #[test]
    fn wrong_replies_are_fatal() {
        let ok = check_values(
            CredentialKind::Passcode,
            2,
            &secrets(&["1357", "2468"]),
            "x",
        );
        assert!(ok.is_ok());
        let short = check_values(CredentialKind::Password, 3, &secrets(&["a", "b"]), "x");
        assert_eq!(short.unwrap_err().kind, ErrorKind::Fatal);
        let empty = check_values(CredentialKind::Sip, 1, &secrets(&[""]), "x");
        assert_eq!(empty.unwrap_err().kind, ErrorKind::Fatal);
        let letters = check_values(CredentialKind::Passcode, 1, &secrets(&["12a4"]), "x");
        let error = letters.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Fatal);
        assert!(!error.message.contains("12a4"), "values are never quoted");
    }
}
