//! The simulated domain's password policy and its messages.

/// The password rules the simulated domain enforces.
#[derive(Debug, Clone)]
pub struct SmarterMailPolicy {
    /// Shortest accepted password.
    pub min_length: usize,
    /// Needs an upper-case letter.
    pub require_upper: bool,
    /// Needs a lower-case letter.
    pub require_lower: bool,
    /// Needs a digit.
    pub require_number: bool,
    /// Needs a symbol.
    pub require_symbol: bool,
    /// May not contain the user name.
    pub not_username: bool,
}

impl Default for SmarterMailPolicy {
    fn default() -> Self {
        SmarterMailPolicy {
            min_length: 8,
            require_upper: true,
            require_lower: true,
            require_number: true,
            require_symbol: false,
            not_username: true,
        }
    }
}

impl SmarterMailPolicy {
    /// Why the domain refuses `password` for the user `user_name`, if it does.
    pub(crate) fn violation(&self, user_name: &str, password: &str) -> Option<String> {
        let policy = self;
        let count = password.chars().count();
        if count < policy.min_length {
            return Some(format!(
                "Password does not meet the requirements: it must be at least {} characters long.",
                policy.min_length
            ));
        }
        let checks = [
            (
                policy.require_upper,
                password.chars().any(char::is_uppercase),
                "a capital letter",
            ),
            (
                policy.require_lower,
                password.chars().any(char::is_lowercase),
                "a lower-case letter",
            ),
            (
                policy.require_number,
                password.chars().any(|c| c.is_ascii_digit()),
                "a number",
            ),
            (
                policy.require_symbol,
                password.chars().any(|c| !c.is_alphanumeric()),
                "a symbol",
            ),
        ];
        for (required, present, what) in checks {
            if required && !present {
                return Some(format!(
                    "Password does not meet the requirements: it must contain {what}."
                ));
            }
        }
        if policy.not_username && password.to_lowercase().contains(&user_name.to_lowercase()) {
            return Some(
                "Password does not meet the requirements: it may not contain the user name.".into(),
            );
        }
        None
    }
}
