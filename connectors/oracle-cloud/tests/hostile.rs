//! Whatever the vendor answers (any status, random bytes, random JSON, JSON in the
//! vendor's own shape with every field of the wrong type), the connector returns
//! an error or an outcome: never a panic.

use std::time::Duration;

use rekey_api::{Connector, CreateContext, Plugin, SettingValue, Settings};
use rekey_oracle_cloud::OracleCloud as Tested;
use rekey_sim::hostile::{HostileVendor, each_reply};

fn connector(vendor: &HostileVendor) -> Tested {
    let values = vec![
        ("url".to_owned(), SettingValue::Plain(vendor.url().into())),
        ("username".to_owned(), SettingValue::Plain("coadmin".into())),
        (
            "password".to_owned(),
            SettingValue::Secret("Hostile-Test-Secret-1".into()),
        ),
        ("timeout".to_owned(), SettingValue::Plain(2.into())),
    ];
    let settings = Settings::check(&Tested::metadata().settings, values).unwrap();
    Tested::create(
        settings,
        CreateContext {
            target: "hostile".into(),
            state_dir: std::env::temp_dir(),
            rate: None,
        },
    )
    .unwrap()
}

#[test]
fn any_reply_gives_an_error_or_an_outcome_never_a_panic() {
    each_reply(64, |runtime, vendor| {
        runtime.block_on(async {
            let connector = connector(vendor);
            rekey_conformance::exercise(
                &connector as &dyn Connector,
                &Tested::metadata(),
                "JSMITH",
                &"New-Passw0rd-123".into(),
                &["Hostile-Test-Secret-1"],
                Duration::from_secs(10),
            )
            .await;
        })
    });
}
