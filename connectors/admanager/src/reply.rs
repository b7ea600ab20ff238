//! Reading a ResetPwd reply (vendor-apis.md §4.2, "Client success rule", and §5).
//!
//! HTTP 200 always. A single object with `SEVERITY`/`ERROR_CODE` refuses the whole
//! request; otherwise an array holds one object per `inputFormat` entry, matched
//! to the inputs by the match attribute (by index where the reply does not echo
//! it), with the SDK's `match_per_user_by`. Per user, `status` decides
//! when it is there (messages are localised). The vendor's own documented sample
//! has no `status`, only `statusMessage` ("Successfully modified."): then a known
//! success text ([`SuccessMessages`]) is a success and any other text an outcome
//! that is unknown, never a silent success.

use rekey_api::{Applied, ConnectorError, ErrorKind, match_per_user_by};
use serde_json::{Map, Value};

use crate::api::{self, MatchBy, Severe};

/// Success texts ADManager is known to answer per user: the vendor's documented
/// sample (seed 003), and the texts seen from production servers in English
/// and Spanish (vendor-apis.md §4.2).
pub(crate) const KNOWN_SUCCESS_MESSAGES: [&str; 3] = [
    "Successfully modified.",
    "Password reset successful.",
    "Contraseña restablecida correctamente.",
];

/// The per-user texts that mean success in a result without `status`: the known
/// ones and the target's `success_messages`. Compared robustly: HTML entities
/// decoded, surrounding and repeated white space ignored, without regard to case.
#[derive(Debug, Clone)]
pub(crate) struct SuccessMessages(Vec<String>);

impl SuccessMessages {
    /// The known texts and `extra`.
    pub(crate) fn new<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        let texts = KNOWN_SUCCESS_MESSAGES
            .into_iter()
            .chain(extra)
            .map(normalise)
            .filter(|text| !text.is_empty())
            .collect();
        SuccessMessages(texts)
    }

    /// Whether `message` (as the server sent it) is a success text.
    pub(crate) fn contains(&self, message: &str) -> bool {
        let message = normalise(message);
        self.0.contains(&message)
    }
}

/// A message as compared: entities decoded, white space collapsed, lower case.
fn normalise(text: &str) -> String {
    api::unescape(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// One outcome per user of `users` (in order) from a ResetPwd reply body.
pub(crate) fn classify(
    match_by: MatchBy,
    success: &SuccessMessages,
    users: &[&str],
    body: &[u8],
) -> Vec<Result<Applied, ConnectorError>> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => {
            let error = ConnectorError::fatal(format!(
                "unreadable ResetPwd reply: {}; whether the reset was applied is unknown",
                rekey_api::json_error_position(&error)
            ));
            return vec![Err(error); users.len()];
        }
    };
    if let Some(severe) = Severe::of(&value) {
        return vec![Err(severe.to_error()); users.len()];
    }
    let Value::Array(elements) = value else {
        let error = ConnectorError::fatal(
            "the ResetPwd reply is neither a list of results nor an error; whether the reset was applied is unknown",
        );
        return vec![Err(error); users.len()];
    };
    // An element names its user by the match attribute. One that names nobody
    // (`mail` and `employeeID` are not echoed) is the user at its index, but only
    // when the reply has one element per input: otherwise the index proves nothing.
    let same_length = elements.len() == users.len();
    let replies = elements.iter().enumerate().filter_map(|(index, element)| {
        let element = element.as_object()?;
        let id = attribute(match_by, element)
            .or_else(|| same_length.then(|| users[index].to_owned()))?;
        Some((id, element))
    });
    match_per_user_by(
        users.iter().copied(),
        replies,
        |id| match_by.key(id),
        |element| item_outcome(success, element),
    )
    .into_iter()
    .map(|outcome| outcome.result)
    .collect()
}

/// The element's value of the match attribute, when it gives one.
fn attribute(match_by: MatchBy, element: &Map<String, Value>) -> Option<String> {
    api::field_str(element, match_by.ldap_name()).filter(|v| !v.trim().is_empty())
}

/// One element's outcome. With a `status`: `"1"`, `1` or `"SUCCESS"` is success,
/// anything else a definite failure. Without one: `reset` `"yes"` or a known
/// success text is success; a quota or token refusal's `ERROR_CODE` is that
/// refusal; anything else is a failure whose outcome is unknown, carrying the
/// server's text.
fn item_outcome(
    success: &SuccessMessages,
    element: &Map<String, Value>,
) -> Result<Applied, ConnectorError> {
    let raw_message = api::field_str(element, "statusMessage");
    let message = raw_message
        .as_deref()
        .map(api::unescape)
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    let applied = || {
        Ok(Applied {
            vendor_password: None,
            detail: message.clone(),
        })
    };
    let status = api::field_str(element, "status");
    if let Some(status) = &status {
        if status.trim() == "1" || status.trim().eq_ignore_ascii_case("SUCCESS") {
            return applied();
        }
    } else {
        let reset_yes = api::field_str(element, "reset")
            .is_some_and(|reset| reset.trim().eq_ignore_ascii_case("yes"));
        if reset_yes || raw_message.as_deref().is_some_and(|m| success.contains(m)) {
            return applied();
        }
    }
    // A per-item refusal may carry the same codes as the envelope.
    if let Some(severe) = Severe::of(&Value::Object(element.clone()))
        && (severe.is_auth() || severe.is_quota())
    {
        let mut error = severe.to_error();
        if let Some(message) = &message {
            error.message = format!("{}: {message}", error.kind);
        }
        return Err(error);
    }
    match status {
        Some(status) => Err(ConnectorError::new(
            ErrorKind::Rejected,
            message.unwrap_or_else(|| {
                format!(
                    "the server did not reset the password (status {status:?}) and gave no message"
                )
            }),
        )),
        // No status, and a text that is not a known success: the server may have
        // applied the password (the text may be a success in words rekey does not
        // know), so the outcome is unknown and the password is kept.
        None => Err(ConnectorError::fatal(match message {
            Some(message) => format!(
                "{message} (the server gave no status; whether the password was reset is unknown: if this text means success, add it to success_messages)"
            ),
            None => "the ResetPwd result for this user has neither a status nor a message; whether the reset was applied is unknown".to_owned(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(
        match_by: MatchBy,
        users: &[&str],
        reply: Value,
    ) -> Vec<Result<Applied, ConnectorError>> {
        classify(
            match_by,
            &SuccessMessages::new([]),
            users,
            reply.to_string().as_bytes(),
        )
    }

    fn kind(outcome: &Result<Applied, ConnectorError>) -> Option<ErrorKind> {
        outcome.as_ref().err().map(|e| e.kind)
    }

    #[test]
    fn status_forms_and_entities() {
        let out = run(
            MatchBy::SamAccountName,
            &["a", "b", "c", "d", "e"],
            json!([
                { "sAMAccountName": "a", "status": "1", "statusMessage": "Password reset successful." },
                { "sAMAccountName": "b", "status": 1 },
                { "sAMAccountName": "c", "status": "SUCCESS" },
                { "sAMAccountName": "d", "status": "0", "reset": "no",
                  "statusMessage": "Policy: 8 chars &amp; 3 classes &lt;AD&gt;" },
                { "sAMAccountName": "e", "status": "SEVERE", "statusMessage": "" },
            ]),
        );
        assert_eq!(
            out[0].as_ref().unwrap().detail.as_deref(),
            Some("Password reset successful.")
        );
        assert!(out[1].is_ok() && out[2].is_ok());
        let error = out[3].as_ref().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Rejected);
        assert_eq!(error.message, "Policy: 8 chars & 3 classes <AD>");
        assert_eq!(kind(&out[4]), Some(ErrorKind::Rejected));
        assert!(out[4].as_ref().unwrap_err().message.contains("SEVERE"));
    }

    #[test]
    fn elements_match_by_attribute_when_out_of_order() {
        let out = run(
            MatchBy::UserPrincipalName,
            &["a@x.com", "b@x.com", "c@x.com"],
            json!([
                { "userPrincipalName": "B@X.COM", "status": "0", "statusMessage": "no" },
                { "userPrincipalName": "a@x.com", "status": "1" },
            ]),
        );
        assert!(out[0].is_ok());
        assert_eq!(kind(&out[1]), Some(ErrorKind::Rejected));
        assert_eq!(kind(&out[2]), Some(ErrorKind::Fatal), "no element: unknown");
    }

    #[test]
    fn attributes_not_echoed_match_by_index_only_when_lengths_agree() {
        let reply = json!([
            { "sAMAccountName": "jdoe", "status": "1" },
            { "sAMAccountName": "mroe", "status": "0" },
        ]);
        let out = run(MatchBy::Mail, &["j@x", "m@x"], reply.clone());
        assert!(out[0].is_ok());
        assert_eq!(kind(&out[1]), Some(ErrorKind::Rejected));
        let out = run(MatchBy::Mail, &["j@x", "m@x", "k@x"], reply);
        assert!(out.iter().all(|o| kind(o) == Some(ErrorKind::Fatal)));
    }

    #[test]
    fn a_mismatched_element_is_not_taken_for_another_user() {
        let out = run(
            MatchBy::SamAccountName,
            &["a", "b"],
            json!([{ "sAMAccountName": "zzz", "status": "1" }, { "sAMAccountName": "b", "status": "1" }]),
        );
        assert_eq!(kind(&out[0]), Some(ErrorKind::Fatal));
        assert!(out[1].is_ok());
    }

    #[test]
    fn whole_request_failures_and_bad_replies() {
        let out = run(
            MatchBy::SamAccountName,
            &["a", "b"],
            json!({ "SEVERITY": "SEVERE", "STATUS_MESSAGE": "Ung&uuml;ltig", "ERROR_CODE": "00000003" }),
        );
        assert!(out.iter().all(|o| kind(o) == Some(ErrorKind::AuthRefused)));
        let out = run(
            MatchBy::SamAccountName,
            &["a"],
            json!({ "SEVERITY": "SEVERE", "STATUS_MESSAGE": "Falta &quot;pwd&quot;", "ERROR_CODE": "00000002" }),
        );
        assert_eq!(
            out[0].as_ref().unwrap_err().message,
            "Falta \"pwd\" (ERROR_CODE 00000002)"
        );
        let out = run(
            MatchBy::SamAccountName,
            &["a", "b"],
            json!([
                { "sAMAccountName": "a", "status": "0", "ERROR_CODE": "00000429", "statusMessage": "L&iacute;mite" },
                { "sAMAccountName": "b", "reset": "yes" },
            ]),
        );
        assert_eq!(kind(&out[0]), Some(ErrorKind::QuotaExhausted));
        assert!(out[0].as_ref().unwrap_err().message.contains("Límite"));
        assert!(out[1].is_ok());
        let out = run(
            MatchBy::SamAccountName,
            &["a"],
            json!([{ "sAMAccountName": "a" }]),
        );
        assert_eq!(kind(&out[0]), Some(ErrorKind::Fatal), "no status: unknown");
        let out = classify(
            MatchBy::SamAccountName,
            &SuccessMessages::new([]),
            &["a"],
            b"<html>oops</html>",
        );
        assert_eq!(kind(&out[0]), Some(ErrorKind::Fatal));
        let out = run(MatchBy::SamAccountName, &["a"], json!({ "status": "1" }));
        assert_eq!(kind(&out[0]), Some(ErrorKind::Fatal));
    }

    #[test]
    fn without_status_known_texts_succeed_and_others_are_unknown() {
        let success = SuccessMessages::new(["Contrase&ntilde;a cambiada", " Done  OK "]);
        let reply = json!([
            { "sAMAccountName": "a", "statusMessage": "Successfully modified." },
            { "sAMAccountName": "b", "statusMessage": "  successfully   MODIFIED. " },
            { "sAMAccountName": "c", "statusMessage": "Password reset successful." },
            { "sAMAccountName": "d", "statusMessage": "contraseña cambiada" },
            { "sAMAccountName": "e", "statusMessage": "done ok" },
            { "sAMAccountName": "f", "statusMessage": "Access denied &amp; logged" },
            { "sAMAccountName": "g", "statusMessage": "" },
            { "sAMAccountName": "h", "statusMessage": "Successfully modified", "ERROR_CODE": "00000429" },
            { "sAMAccountName": "i", "statusMessage": "Successfully modified.", "status": "0" },
        ]);
        let users = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let out = classify(
            MatchBy::SamAccountName,
            &success,
            &users,
            reply.to_string().as_bytes(),
        );
        for outcome in &out[..5] {
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        assert_eq!(
            out[0].as_ref().unwrap().detail.as_deref(),
            Some("Successfully modified.")
        );
        let unknown = out[5].as_ref().unwrap_err();
        assert_eq!(unknown.kind, ErrorKind::Fatal);
        assert!(!unknown.kind.definitely_not_applied());
        assert!(
            unknown.message.starts_with("Access denied & logged"),
            "{}",
            unknown.message
        );
        assert!(unknown.message.contains("success_messages"));
        assert_eq!(kind(&out[6]), Some(ErrorKind::Fatal), "no text at all");
        assert_eq!(kind(&out[7]), Some(ErrorKind::QuotaExhausted));
        assert_eq!(
            kind(&out[8]),
            Some(ErrorKind::Rejected),
            "a status decides over the text"
        );
        // Without the target's extra texts, those two are unknown.
        let out = run(MatchBy::SamAccountName, &users, reply);
        assert_eq!(kind(&out[3]), Some(ErrorKind::Fatal));
        assert_eq!(kind(&out[4]), Some(ErrorKind::Fatal));
    }
}
