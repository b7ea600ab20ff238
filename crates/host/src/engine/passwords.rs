//! Where each user's new password comes from.

use rekey_api::{Connector, ConnectorError, CredentialKind, NewPassword, Secret};
use rekey_policy::{PasscodeGenerator, PasswordGenerator};

/// A local generator for the job's credential kind.
#[derive(Debug, Clone)]
pub enum Generator {
    /// Passwords and SIP passwords.
    Password(Box<PasswordGenerator>),
    /// Numeric passcodes.
    Passcode(PasscodeGenerator),
}

impl Generator {
    /// A new value.
    pub fn generate(&self) -> Secret {
        match self {
            Generator::Password(g) => g.generate(),
            Generator::Passcode(g) => g.generate(),
        }
    }
}

/// How the job's new passwords are made.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// rekey generates one per user from the target's policy.
    Generate(Generator),
    /// One known value for every user.
    Known(Secret),
    /// The vendor makes the values; rekey fetches them, then sets them like its own.
    VendorValues,
    /// The vendor makes and sets the values; it may not tell rekey.
    VendorInPlace,
}

impl PasswordSource {
    /// Whether every user of a batch gets the same value (or the vendor's own), so
    /// that connectors needing one value per request can still batch.
    pub fn is_shared(&self) -> bool {
        matches!(
            self,
            PasswordSource::Known(_) | PasswordSource::VendorInPlace
        )
    }

    /// Whether rekey will know the new passwords (and so needs `--out`).
    pub fn knows_passwords(&self) -> bool {
        !matches!(self, PasswordSource::VendorInPlace)
    }

    /// New values for `count` users.
    pub async fn assign(
        &self,
        connector: &dyn Connector,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<NewPassword>, ConnectorError> {
        Ok(match self {
            PasswordSource::Generate(generator) => (0..count)
                .map(|_| NewPassword::Known(generator.generate()))
                .collect(),
            PasswordSource::Known(value) => (0..count)
                .map(|_| NewPassword::Known(value.clone()))
                .collect(),
            PasswordSource::VendorInPlace => {
                (0..count).map(|_| NewPassword::VendorGenerated).collect()
            }
            PasswordSource::VendorValues => {
                let values = connector.generate(kind, count).await?;
                if values.len() != count {
                    return Err(ConnectorError::fatal(format!(
                        "asked the vendor for {count} new values and got {}",
                        values.len()
                    )));
                }
                values.into_iter().map(NewPassword::Known).collect()
            }
        })
    }
}
