//! Where each user's new password comes from.

use rekey_api::{Connector, ConnectorError, CredentialKind, NewPassword, Secret};
use rekey_policy::{PasscodeGenerator, PasswordGenerator, begins_formula};

/// How many more times the vendor is asked for values when some it made begin with
/// a formula character, before the job stops.
pub const VENDOR_VALUE_RETRIES: usize = 5;

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
            PasswordSource::VendorValues => vendor_values(connector, kind, count)
                .await?
                .into_iter()
                .map(NewPassword::Known)
                .collect(),
        })
    }
}

/// `count` values made by the vendor. A value that begins with `=`, `+`, `-` or
/// `@` is not used, since a spreadsheet opening the results would take it for a
/// formula: the vendor is asked for another, up to [`VENDOR_VALUE_RETRIES`] more
/// times, then the job stops.
async fn vendor_values(
    connector: &dyn Connector,
    kind: CredentialKind,
    count: usize,
) -> Result<Vec<Secret>, ConnectorError> {
    let mut values = Vec::with_capacity(count);
    for _ in 0..=VENDOR_VALUE_RETRIES {
        let wanted = count - values.len();
        let made = connector.generate(kind, wanted).await?;
        if made.len() != wanted {
            return Err(ConnectorError::fatal(format!(
                "asked the vendor for {wanted} new values and got {}",
                made.len()
            )));
        }
        values.extend(made.into_iter().filter(|v| !begins_formula(v.expose())));
        if values.len() == count {
            return Ok(values);
        }
        tracing::debug!(
            "{} values the vendor made begin with a formula character; asking for others",
            count - values.len()
        );
    }
    Err(ConnectorError::fatal(format!(
        "the vendor kept making values that begin with =, +, - or @ (asked {} times), which a spreadsheet opening the results would take for a formula; rekey does not use them. Let rekey generate the passwords (drop --vendor-generate), or change the vendor's generator",
        VENDOR_VALUE_RETRIES + 1
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use rekey_api::{CheckReport, ResetRequest, UserOutcome};

    use super::*;

    /// Hands out scripted values, one batch per call.
    struct Vendor {
        batches: Mutex<Vec<Vec<&'static str>>>,
        asked: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl Connector for Vendor {
        async fn check(&self) -> Result<CheckReport, ConnectorError> {
            Ok(CheckReport::default())
        }
        async fn generate(
            &self,
            _kind: CredentialKind,
            count: usize,
        ) -> Result<Vec<Secret>, ConnectorError> {
            self.asked.lock().unwrap().push(count);
            let mut batches = self.batches.lock().unwrap();
            let batch = if batches.is_empty() {
                vec!["=again"; count]
            } else {
                batches.remove(0)
            };
            Ok(batch.into_iter().map(Secret::from).collect())
        }
        async fn reset(&self, _: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
            unreachable!("never reset here")
        }
    }

    fn vendor(batches: Vec<Vec<&'static str>>) -> Vendor {
        Vendor {
            batches: Mutex::new(batches),
            asked: Mutex::new(Vec::new()),
        }
    }

    #[tokio::test]
    async fn formula_values_from_the_vendor_are_replaced() {
        let vendor = vendor(vec![
            vec!["ok-1", "=bad", "ok-2", "@bad"],
            vec!["+bad", "ok-3"],
            vec!["ok-4"],
        ]);
        let values = PasswordSource::VendorValues
            .assign(&vendor, CredentialKind::Password, 4)
            .await
            .unwrap();
        let values: Vec<&str> = values.iter().map(|v| v.known().unwrap().expose()).collect();
        assert_eq!(values, ["ok-1", "ok-2", "ok-3", "ok-4"]);
        assert_eq!(*vendor.asked.lock().unwrap(), [4, 2, 1]);
    }

    #[tokio::test]
    async fn a_vendor_that_keeps_making_them_stops_the_job() {
        let vendor = vendor(vec![vec!["ok", "-bad"]]);
        let err = PasswordSource::VendorValues
            .assign(&vendor, CredentialKind::Password, 2)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("kept making values"), "{err}");
        assert_eq!(vendor.asked.lock().unwrap().len(), VENDOR_VALUE_RETRIES + 1);
    }
}
