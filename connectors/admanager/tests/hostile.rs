//! Whatever the vendor answers (any status, random bytes, random JSON, JSON in the
//! vendor's own shape with every field of the wrong type), the connector returns
//! an error or an outcome: never a panic. Its quota ledger, kept in the state
//! directory by the vendor's clock, survives replies without a usable `Date`.

use std::path::Path;
use std::time::Duration;

use rekey_admanager::AdManager as Tested;
use rekey_api::{Connector, CreateContext, Plugin, SettingValue, Settings};
use rekey_sim::hostile::{HostileVendor, each_reply};

fn connector(vendor: &HostileVendor, state: &Path) -> Tested {
    let values = vec![
        ("url".to_owned(), SettingValue::Plain(vendor.url().into())),
        (
            "auth_token".to_owned(),
            SettingValue::Secret("Hostile-Test-Token-1".into()),
        ),
        (
            "domain".to_owned(),
            SettingValue::Plain("example.com".into()),
        ),
        (
            "daily_limit".to_owned(),
            SettingValue::Plain(1_000_000.into()),
        ),
        ("timeout".to_owned(), SettingValue::Plain(2.into())),
    ];
    let settings = Settings::check(&Tested::metadata().settings, values).unwrap();
    Tested::create(
        settings,
        CreateContext {
            target: "hostile".into(),
            state_dir: state.to_owned(),
            rate: None,
        },
    )
    .unwrap()
}

#[test]
fn any_reply_gives_an_error_or_an_outcome_never_a_panic() {
    let state = tempfile::tempdir().unwrap();
    each_reply(64, |runtime, vendor| {
        runtime.block_on(async {
            let connector = connector(vendor, state.path());
            rekey_conformance::exercise(
                &connector as &dyn Connector,
                &Tested::metadata(),
                "jsmith",
                &"New-Passw0rd-123".into(),
                &["Hostile-Test-Token-1"],
                Duration::from_secs(10),
            )
            .await;
        })
    });
}
