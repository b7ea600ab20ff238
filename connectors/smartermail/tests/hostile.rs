//! Whatever the vendor answers (any status, random bytes, random JSON, JSON in the
//! vendor's own shape with every field of the wrong type), the connector returns
//! an error or an outcome: never a panic.

use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use rekey_api::{Connector, CreateContext, Plugin, SettingValue, Settings};
use rekey_sim::hostile::{HostileVendor, replies};
use rekey_smartermail::SmarterMail as Tested;

/// One vendor for every case, and the runtime it runs on.
fn vendor() -> &'static (tokio::runtime::Runtime, HostileVendor) {
    static VENDOR: OnceLock<(tokio::runtime::Runtime, HostileVendor)> = OnceLock::new();
    VENDOR.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let vendor = runtime.block_on(HostileVendor::start()).unwrap();
        (runtime, vendor)
    })
}

fn connector(vendor: &HostileVendor) -> Tested {
    let values = vec![
        ("url".to_owned(), SettingValue::Plain(vendor.url().into())),
        (
            "username".to_owned(),
            SettingValue::Plain("admin@example.com".into()),
        ),
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_reply_gives_an_error_or_an_outcome_never_a_panic(reply in replies()) {
        let (runtime, vendor) = vendor();
        vendor.answer_with(reply);
        runtime.block_on(async {
            let connector = connector(vendor);
            let errors = rekey_conformance::exercise(
                &connector as &dyn Connector,
                &Tested::metadata(),
                "user1@example.com",
                &"New-Passw0rd-123".into(),
                Duration::from_secs(10),
            )
            .await;
            for error in errors {
                prop_assert!(!error.message.contains("Hostile-Test-Secret-1"), "{error}");
                prop_assert!(!error.message.contains("New-Passw0rd-123"), "{error}");
            }
            Ok(())
        })?;
    }
}
