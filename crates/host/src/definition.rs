//! What a job is, stored once in the journal: `reset` builds it from the command
//! line, `resume` and `discard` load it. It holds no secret: a known value is kept
//! beside it in the journal, and only until the job is complete.

use std::path::PathBuf;

use rekey_api::CredentialKind;
use serde::{Deserialize, Serialize};

use crate::engine::{Concurrency, Selection};
use crate::results::{Format, Recipients};

/// A job's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDefinition {
    /// The targets it resets users on, in the order given.
    pub targets: Vec<JobTarget>,
    /// Which credential.
    pub kind: CredentialKind,
    /// Who (ids are resolved on each target).
    pub selection: Selection,
    /// `--exclude` ids (each target's own `exclude` list is added when it runs).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where the new passwords come from.
    pub passwords: PasswordChoice,
    /// `--concurrency` (a number, or `auto`), overriding each target's own setting.
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
    /// Where the results go.
    pub output: Output,
}

/// A target a job runs on, with the connector it used, so that a job is never
/// resumed through another connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTarget {
    /// The target's name in the config.
    pub name: String,
    /// The connector's name.
    pub connector: String,
}

/// Where a job's new passwords come from, as the operator chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChoice {
    /// rekey generates one per user from each target's policy.
    Generate,
    /// One known value for every user (kept in the journal until the job is
    /// complete).
    Known,
    /// The vendor makes them: fetched and set by rekey where the connector can ask
    /// for values, else set by the vendor in place.
    Vendor,
}

/// Where a job's results go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The results file (absolute), or `None` for standard output.
    pub path: Option<PathBuf>,
    /// Its format.
    pub format: Format,
    /// The age recipients it is encrypted to (none: plain). Absent from jobs
    /// written before rekey could encrypt.
    #[serde(default, skip_serializing_if = "Recipients::is_empty")]
    pub recipients: Recipients,
}

impl JobDefinition {
    /// The target names, joined for messages (`mail, pbx`).
    pub fn target_names(&self) -> String {
        self.targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip_as_json() {
        let definition = JobDefinition {
            targets: vec![JobTarget {
                name: "mail".into(),
                connector: "smartermail".into(),
            }],
            kind: CredentialKind::Sip,
            selection: Selection::File("/srv/users.csv".into()),
            exclude: vec!["admin".into()],
            passwords: PasswordChoice::Vendor,
            concurrency: Some(Concurrency::Fixed(4)),
            output: Output {
                path: None,
                format: Format::Jsonl,
                recipients: Recipients::parse(
                    [age::x25519::Identity::generate().to_public().to_string()],
                    "test",
                )
                .unwrap(),
            },
        };
        let json = serde_json::to_string(&definition).unwrap();
        assert!(
            json.contains(r#""selection":{"file":"/srv/users.csv"}"#),
            "{json}"
        );
        assert!(json.contains(r#""kind":"sip""#), "{json}");
        assert!(json.contains(r#""concurrency":4"#), "{json}");
        let back: JobDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, definition);
        let auto = JobDefinition {
            concurrency: Some(Concurrency::Auto),
            ..definition
        };
        let json = serde_json::to_string(&auto).unwrap();
        assert!(json.contains(r#""concurrency":"auto""#), "{json}");
        assert_eq!(serde_json::from_str::<JobDefinition>(&json).unwrap(), auto);
    }

    #[test]
    fn definitions_without_recipients_still_read() {
        let json = r#"{"targets":[{"name":"mail","connector":"smartermail"}],"kind":"password","selection":"all","passwords":"generate","output":{"path":"/r.csv","format":"csv"}}"#;
        let definition: JobDefinition = serde_json::from_str(json).unwrap();
        assert!(definition.output.recipients.is_empty());
        assert!(
            !serde_json::to_string(&definition)
                .unwrap()
                .contains("recipients")
        );
        let bad = json.replace(
            r#""format":"csv""#,
            r#""format":"csv","recipients":["nope"]"#,
        );
        let err = serde_json::from_str::<JobDefinition>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nope` is not a recipient"), "{err}");
    }
}
