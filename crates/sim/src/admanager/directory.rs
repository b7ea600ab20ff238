//! The simulated Active Directory: accounts, their attributes and passwords, and
//! the domain's password policy.

use rand::{Rng, RngExt as _};
use serde_json::{Value, json};

/// The domain's password policy, AD-like.
#[derive(Debug, Clone)]
pub struct AdPolicy {
    /// Shortest accepted password.
    pub min_length: usize,
    /// Longest accepted password, if limited.
    pub max_length: Option<usize>,
    /// How many of the four classes (lower, upper, digit, other) it must hold.
    pub min_classes: usize,
    /// Whether it may not contain the sAMAccountName (AD's complexity rule).
    pub not_account_name: bool,
}

impl Default for AdPolicy {
    fn default() -> Self {
        AdPolicy {
            min_length: 8,
            max_length: None,
            min_classes: 3,
            not_account_name: true,
        }
    }
}

impl AdPolicy {
    /// Whether `password` satisfies the policy for `account`.
    pub(crate) fn allows(&self, account: &Account, password: &str) -> bool {
        let length = password.chars().count();
        let classes = [
            password.chars().any(|c| c.is_lowercase()),
            password.chars().any(|c| c.is_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_alphanumeric()),
        ]
        .into_iter()
        .filter(|&present| present)
        .count();
        let contains_name = self.not_account_name
            && account.sam.chars().count() > 2
            && password
                .to_lowercase()
                .contains(&account.sam.to_lowercase());
        length >= self.min_length
            && self.max_length.is_none_or(|max| length <= max)
            && classes >= self.min_classes
            && !contains_name
    }

    /// A random password that satisfies the policy (`passwordType=generate`).
    pub(crate) fn generate(&self, account: &Account, rng: &mut impl Rng) -> String {
        const SETS: [&[u8]; 4] = [
            b"abcdefghijkmnopqrstuvwxyz",
            b"ABCDEFGHJKLMNPQRSTUVWXYZ",
            b"23456789",
            b"!#%+-.:=?@_",
        ];
        let length = self
            .min_length
            .max(16)
            .min(self.max_length.unwrap_or(usize::MAX));
        loop {
            let mut chars: Vec<u8> = SETS
                .iter()
                .map(|set| set[rng.random_range(0..set.len())])
                .collect();
            while chars.len() < length {
                let set = SETS[rng.random_range(0..SETS.len())];
                chars.push(set[rng.random_range(0..set.len())]);
            }
            for i in (1..chars.len()).rev() {
                chars.swap(i, rng.random_range(0..=i));
            }
            let password: String = chars.into_iter().map(char::from).collect();
            if self.allows(account, &password) {
                return password;
            }
        }
    }
}

/// The attributes an account can be looked up by, lower-cased.
pub(crate) const LOOKUP_ATTRIBUTES: [&str; 7] = [
    "samaccountname",
    "userprincipalname",
    "mail",
    "employeeid",
    "distinguishedname",
    "objectguid",
    "objectsid",
];

/// One AD user account.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub sam: String,
    pub upn: String,
    pub mail: String,
    pub employee_id: String,
    pub dn: String,
    pub guid: String,
    pub sid: String,
    pub display: String,
    pub password: String,
    pub history: Vec<String>,
    pub must_change: Option<bool>,
    pub locked: bool,
}

impl Account {
    /// Account number `n` named `sam` in `domain`.
    pub(crate) fn new(n: usize, sam: &str, display: &str, domain: &str) -> Account {
        let dc: Vec<String> = domain.split('.').map(|p| format!("DC={p}")).collect();
        Account {
            sam: sam.to_owned(),
            upn: format!("{sam}@{domain}"),
            mail: format!("{sam}@mail.{domain}"),
            employee_id: format!("E{n:05}"),
            dn: format!("CN={},OU=Staff,{}", escape_rdn(display), dc.join(",")),
            guid: format!("{{6F9619FF-8B86-D011-B42D-{n:012X}}}"),
            sid: format!("S-1-5-21-1004336348-1177238915-682003330-{}", 1100 + n),
            display: display.to_owned(),
            password: format!("Initial-{n}-Passw0rd"),
            history: Vec::new(),
            must_change: None,
            locked: false,
        }
    }

    /// The value of a lookup attribute (`name` lower-cased).
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        Some(match name {
            "samaccountname" => &self.sam,
            "userprincipalname" => &self.upn,
            "mail" => &self.mail,
            "employeeid" => &self.employee_id,
            "distinguishedname" => &self.dn,
            "objectguid" => &self.guid,
            "objectsid" => &self.sid,
            _ => return None,
        })
    }

    /// Whether attribute `name` (lower-cased) has `value`, compared as AD does:
    /// without regard to case, GUIDs with or without braces.
    pub(crate) fn has(&self, name: &str, value: &str) -> bool {
        let Some(own) = self.attribute(name) else {
            return false;
        };
        let bare = |s: &str| {
            s.trim()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_lowercase()
        };
        if name == "objectguid" {
            bare(own) == bare(value)
        } else {
            own.to_lowercase() == value.trim().to_lowercase()
        }
    }

    /// The account as a ResetPwd/UnlockUser result.
    pub(crate) fn result(&self) -> serde_json::Map<String, Value> {
        let value = json!({
            "userPrincipalName": self.upn,
            "sAMAccountName": self.sam,
            "objectSID": self.sid,
            "objectGUID": self.guid,
            "distinguishedName": self.dn,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    /// The account as a SearchUser row.
    pub(crate) fn row(&self) -> Value {
        let (first, last) = self.display.split_once(' ').unwrap_or((&self.display, ""));
        json!({
            "SAM_ACCOUNT_NAME": self.sam,
            "LOGON_NAME": self.upn,
            "EMAIL_ADDRESS": self.mail,
            "EMPLOYEE_ID": self.employee_id,
            "DISTINGUISHED_NAME": self.dn,
            "OBJECT_GUID": self.guid,
            "OBJECT_SID": self.sid,
            "FIRST_NAME": first,
            "LAST_NAME": last,
            "DISPLAY_NAME": self.display,
            "OFFICE": "HQ",
        })
    }
}

/// Escapes a value for a DN's relative name (RFC 4514).
fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || (i == 0 && c == '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn policy_and_generation() {
        let account = Account::new(1, "jdoe", "John Doe", "example.com");
        let policy = AdPolicy::default();
        assert!(policy.allows(&account, "Abcdefg1"));
        assert!(!policy.allows(&account, "Abc1"));
        assert!(!policy.allows(&account, "abcdefgh1"), "two classes");
        assert!(
            !policy.allows(&account, "xJDOE-123"),
            "holds the account name"
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..50 {
            assert!(policy.allows(&account, &policy.generate(&account, &mut rng)));
        }
        assert_eq!(account.dn, "CN=John Doe,OU=Staff,DC=example,DC=com");
        assert!(account.has("objectguid", "6f9619ff-8b86-d011-b42d-000000000001"));
        assert_eq!(escape_rdn("#O'Brien, Pat"), "\\#O'Brien\\, Pat");
    }
}
