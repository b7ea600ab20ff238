//! The kit against in-process connectors: a good one passes every check, and each
//! purpose-built fault fails exactly the check it breaks.

use std::time::Duration;

use async_trait::async_trait;
use rekey_api::{
    Capability, CheckReport, Connector, ConnectorError, CreateContext, Metadata, Plugin,
    ResetRequest, SettingSpec, SettingValue, Settings, UserEntry, UserOutcome, UserPage,
};
use rekey_conformance::{InProcess, Kit, Verdict};

/// A directory of six users in three pages, with one fault on demand.
struct Directory {
    fault: String,
}

impl Plugin for Directory {
    fn metadata() -> Metadata {
        Metadata::new("directory", "1.0.0", "A directory with faults on demand")
            .capability(Capability::ListUsers)
            .setting(SettingSpec::url("url", "The directory's root").required())
            .setting(SettingSpec::secret("token", "The API token").required())
            .setting(SettingSpec::integer("page_size", "Users a page").default_value(2))
            .setting(SettingSpec::string("fault", "Which fault to have").default_value("none"))
    }

    fn create(settings: Settings, _context: CreateContext) -> Result<Self, ConnectorError> {
        Ok(Directory {
            fault: settings.get_str("fault").unwrap_or("none").to_owned(),
        })
    }
}

#[async_trait]
impl Connector for Directory {
    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(CheckReport {
            account: Some("admin".into()),
            detail: String::new(),
        })
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        let page: usize = cursor.map_or(0, |c| c.parse().unwrap());
        let mut users: Vec<UserEntry> = (0..2)
            .map(|i| UserEntry::new(format!("u{}@example.com", 2 * page + i)))
            .collect();
        if self.fault == "duplicate-ids" && page == 2 {
            users[1] = UserEntry::new("u0@example.com");
        }
        Ok(UserPage {
            users,
            next: (page < 2).then(|| (page + 1).to_string()),
        })
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        match self.fault.as_str() {
            "panic" => panic!("deliberate"),
            "hang" => std::future::pending().await,
            _ => {}
        }
        let mut outcomes: Vec<UserOutcome> = request
            .items
            .into_iter()
            .map(|item| {
                if item.user.starts_with('u') || self.fault == "silent-success" {
                    UserOutcome::applied(item.user)
                } else {
                    UserOutcome::failed(item.user, ConnectorError::user_not_found("no such user"))
                }
            })
            .collect();
        if self.fault == "extra-outcome" {
            outcomes.push(UserOutcome::applied("u0@example.com"));
        }
        Ok(outcomes)
    }
}

fn kit(fault: &str) -> Kit {
    Kit::new(
        vec![
            (
                "url".into(),
                SettingValue::Plain("https://directory.example.com".into()),
            ),
            ("token".into(), SettingValue::Secret("t0ken-value".into())),
            ("fault".into(), SettingValue::Plain(fault.into())),
        ],
        "A-new-Passw0rd".into(),
    )
    .deadline(Duration::from_millis(500))
}

async fn failed(fault: &str) -> Vec<&'static str> {
    let dir = std::env::temp_dir();
    let report = kit(fault).run(&InProcess::<Directory>::new(dir)).await;
    println!("{fault}:\n{report}");
    report.failed()
}

#[tokio::test]
async fn a_connector_that_keeps_the_contract_passes_every_check() {
    let report = kit("none")
        .run(&InProcess::<Directory>::new(std::env::temp_dir()))
        .await;
    report.assert_passed();
    assert!(
        report.checks.iter().all(|c| c.verdict == Verdict::Pass),
        "{report}"
    );
    let listing = report.check("listing").unwrap();
    assert_eq!(
        listing.to_string(),
        "PASS listing: 6 users in 3 pages, ids unique and the same in two listings"
    );
    let unknown = report.check("unknown-user").unwrap();
    assert!(unknown.detail.contains("user not found"), "{unknown}");
}

#[tokio::test]
async fn each_fault_fails_exactly_the_check_it_breaks() {
    assert_eq!(failed("duplicate-ids").await, ["listing"]);
    assert_eq!(failed("extra-outcome").await, ["reset-replies"]);
    assert_eq!(failed("silent-success").await, ["unknown-user"]);
    assert_eq!(failed("panic").await, ["unknown-user"]);
    assert_eq!(failed("hang").await, ["unknown-user"]);
}

#[tokio::test]
async fn a_schema_that_lets_a_needed_setting_go_missing_fails() {
    // The settings given lack the required token: the kit says so, and creates
    // nothing.
    let kit = Kit::new(
        vec![(
            "url".into(),
            SettingValue::Plain("https://d.example.com".into()),
        )],
        "A-new-Passw0rd".into(),
    );
    let report = kit
        .run(&InProcess::<Directory>::new(std::env::temp_dir()))
        .await;
    assert_eq!(report.failed(), ["settings", "create"], "{report}");
    assert_eq!(report.check("listing").unwrap().verdict, Verdict::Skip);
}

#[tokio::test]
async fn a_test_user_is_reset_and_checked() {
    let connector = Directory {
        fault: "none".into(),
    };
    let result = rekey_conformance::reset_test_user(
        &connector,
        rekey_api::CredentialKind::Password,
        "u3@example.com",
        "A-new-Passw0rd".into(),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(result.verdict, Verdict::Pass, "{result}");
}
