//! ADManager Plus's legacy `/RestAPI` shapes (vendor-apis.md §4): the match
//! attributes, the SEVERE envelope, and lenient field access.

use rekey_api::ConnectorError;
use serde_json::{Map, Value};

/// `ERROR_CODE`s that mean the authtoken itself was refused: `00000003`
/// ("Product to Product Authentication Failure", seen in ManageEngine's own
/// client), and the `/api/v2` codes for Unauthorized and Forbidden [INF: the same
/// numbering may surface on `/RestAPI`].
pub(crate) const AUTH_ERROR_CODES: [&str; 3] = ["00000003", "00000101", "00000106"];

/// The `ERROR_CODE` of a refusal because the licence's daily API quota is spent.
/// The real code was not found \[INF\]; rekey's simulator uses this one.
pub(crate) const QUOTA_ERROR_CODE: &str = "00000429";

/// The AD attribute that user ids are values of (`match_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchBy {
    SamAccountName,
    UserPrincipalName,
    Mail,
    EmployeeId,
    DistinguishedName,
    ObjectGuid,
    ObjectSid,
}

impl MatchBy {
    /// Every attribute, in the order the setting lists them.
    pub(crate) const ALL: [MatchBy; 7] = [
        MatchBy::SamAccountName,
        MatchBy::UserPrincipalName,
        MatchBy::Mail,
        MatchBy::EmployeeId,
        MatchBy::DistinguishedName,
        MatchBy::ObjectGuid,
        MatchBy::ObjectSid,
    ];

    /// The setting's choices.
    pub(crate) fn choices() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.ldap_name()).collect()
    }

    /// The attribute named `name` (as the setting spells it).
    pub(crate) fn parse(name: &str) -> Option<MatchBy> {
        Self::ALL.into_iter().find(|m| m.ldap_name() == name)
    }

    /// The LDAP name: the key of an `inputFormat` object and of a ResetPwd reply.
    pub(crate) fn ldap_name(self) -> &'static str {
        match self {
            MatchBy::SamAccountName => "sAMAccountName",
            MatchBy::UserPrincipalName => "userPrincipalName",
            MatchBy::Mail => "mail",
            MatchBy::EmployeeId => "employeeID",
            MatchBy::DistinguishedName => "distinguishedName",
            MatchBy::ObjectGuid => "objectGUID",
            MatchBy::ObjectSid => "objectSID",
        }
    }

    /// The SearchUser column holding the attribute. Only `SAM_ACCOUNT_NAME` and
    /// `LOGON_NAME` (the user logon name, i.e. the UPN) are evidenced; the others
    /// follow the same upper-snake naming \[INF\].
    pub(crate) fn search_field(self) -> &'static str {
        match self {
            MatchBy::SamAccountName => "SAM_ACCOUNT_NAME",
            MatchBy::UserPrincipalName => "LOGON_NAME",
            MatchBy::Mail => "EMAIL_ADDRESS",
            MatchBy::EmployeeId => "EMPLOYEE_ID",
            MatchBy::DistinguishedName => "DISTINGUISHED_NAME",
            MatchBy::ObjectGuid => "OBJECT_GUID",
            MatchBy::ObjectSid => "OBJECT_SID",
        }
    }

    /// A value of this attribute as compared: two values name the same account
    /// when their keys are equal. AD compares them without regard to case, and a
    /// GUID may come with or without braces.
    pub(crate) fn key(self, value: &str) -> String {
        let value = value.trim();
        match self {
            MatchBy::ObjectGuid => value
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_ascii_lowercase(),
            _ => value.to_lowercase(),
        }
    }
}

/// A request-level refusal: HTTP 200 with a single object holding `SEVERITY`
/// (other than `SUCCESS`) or `ERROR_CODE`. Nothing in the request was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Severe {
    /// `ERROR_CODE`, if given.
    pub code: Option<String>,
    /// `STATUS_MESSAGE`, HTML entities decoded.
    pub message: String,
}

impl Severe {
    /// The envelope in `value`, if it is one.
    pub(crate) fn of(value: &Value) -> Option<Severe> {
        let object = value.as_object()?;
        let severity = field_str(object, "SEVERITY");
        let code = field_str(object, "ERROR_CODE").filter(|c| !c.is_empty());
        let failed = severity
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("SUCCESS"))
            || code.is_some();
        failed.then(|| Severe {
            code,
            message: field_str(object, "STATUS_MESSAGE")
                .map(|m| unescape(&m))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the server refused the request and gave no message".into()),
        })
    }

    /// The text for the operator: the vendor's message and code.
    pub(crate) fn describe(&self) -> String {
        match &self.code {
            Some(code) => format!("{} (ERROR_CODE {code})", self.message),
            None => self.message.clone(),
        }
    }

    /// Whether the code says the authtoken was refused.
    pub(crate) fn is_auth(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| AUTH_ERROR_CODES.contains(&c))
    }

    /// Whether the code says the daily quota is spent.
    pub(crate) fn is_quota(&self) -> bool {
        self.code.as_deref() == Some(QUOTA_ERROR_CODE)
    }

    /// The error for a ResetPwd-like call, classified by code only (messages are
    /// localised): auth → [`AuthRefused`](rekey_api::ErrorKind::AuthRefused),
    /// quota → [`QuotaExhausted`](rekey_api::ErrorKind::QuotaExhausted), anything
    /// else a definite [`Rejected`](rekey_api::ErrorKind::Rejected).
    pub(crate) fn to_error(&self) -> ConnectorError {
        if self.is_auth() {
            ConnectorError::auth_refused(format!(
                "the server refused the authtoken: {}",
                self.describe()
            ))
        } else if self.is_quota() {
            ConnectorError::new(
                rekey_api::ErrorKind::QuotaExhausted,
                format!(
                    "the server's daily API quota is spent: {}; nothing was applied, a later run carries on",
                    self.describe()
                ),
            )
        } else {
            ConnectorError::rejected(self.describe())
        }
    }
}

/// A field of a vendor object, its name compared exactly first and then without
/// regard to case (the docs spell `objectSID` and `objectSid`).
pub(crate) fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// A field as text: strings as they are, numbers and booleans written out.
pub(crate) fn field_str(object: &Map<String, Value>, name: &str) -> Option<String> {
    match field(object, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Decodes the HTML entities ADManager puts in its messages (`&amp;` → `&`).
pub(crate) fn unescape(text: &str) -> String {
    html_escape::decode_html_entities(text).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelopes_are_recognised_by_severity_or_code() {
        let severe = Severe::of(&json!({
            "SEVERITY": "SEVERE",
            "STATUS_MESSAGE": "Can&#39;t process &amp; stop",
            "ERROR_CODE": "00000003"
        }))
        .unwrap();
        assert!(severe.is_auth());
        assert_eq!(severe.message, "Can't process & stop");
        assert_eq!(severe.to_error().kind, rekey_api::ErrorKind::AuthRefused);
        let code_only = Severe::of(&json!({ "ERROR_CODE": "00000429" })).unwrap();
        assert_eq!(
            code_only.to_error().kind,
            rekey_api::ErrorKind::QuotaExhausted
        );
        let other = Severe::of(&json!({ "SEVERITY": "warning", "STATUS_MESSAGE": "x" })).unwrap();
        assert_eq!(other.to_error().kind, rekey_api::ErrorKind::Rejected);
        assert!(Severe::of(&json!({ "SEVERITY": "success" })).is_none());
        assert!(Severe::of(&json!({ "ERROR_CODE": "" })).is_none());
        assert!(Severe::of(&json!([{ "ERROR_CODE": "1" }])).is_none());
    }

    #[test]
    fn attributes_compare_like_ad() {
        let same = |m: MatchBy, a: &str, b: &str| m.key(a) == m.key(b);
        assert!(same(MatchBy::SamAccountName, "JDoe", "jdoe"));
        assert!(same(
            MatchBy::ObjectGuid,
            "{B6EBC9F3-703E-43F4-BAF9-FC785E34099D}",
            "b6ebc9f3-703e-43f4-baf9-fc785e34099d"
        ));
        assert!(!same(MatchBy::Mail, "a@x", "b@x"));
        for m in MatchBy::ALL {
            assert_eq!(MatchBy::parse(m.ldap_name()), Some(m));
        }
        let object = json!({ "objectSid": "S-1", "n": 1 });
        let object = object.as_object().unwrap();
        assert_eq!(field_str(object, "objectSID").as_deref(), Some("S-1"));
        assert_eq!(field_str(object, "n").as_deref(), Some("1"));
    }
}
