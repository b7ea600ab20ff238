use std::io::Write;

use super::*;

fn load(text: &str) -> anyhow::Result<Config> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    Config::load(file.path())
}

#[test]
fn reads_targets_and_host_keys() {
    let config = load(
        r#"
        [rekey]
        plugin_path = ["plugins"]
        [targets.mail]
        connector = "smartermail"
        concurrency = 4
        rate = 2.5
        exclude = ["admin@example.com"]
        url = "https://mail.example.com"
        [targets.mail.policy]
        length = 20
        "#,
    )
    .unwrap();
    let mail = config.target("mail").unwrap();
    assert_eq!(mail.connector, "smartermail");
    assert_eq!(mail.concurrency, Some(Concurrency::Fixed(4)));
    assert_eq!(mail.rate, Some(2.5));
    assert_eq!(mail.policy.length, 20);
    assert_eq!(mail.policy.min_symbol, 1);
    assert!(mail.settings.contains_key("url"));
    assert!(!mail.settings.contains_key("policy"));
    assert!(config.plugin_path[0].ends_with("plugins"));
}

#[test]
fn errors_name_the_problem() {
    let err = load("[targets.mail]\nurl = 'x'\n").unwrap_err();
    assert!(
        format!("{err:#}").contains("`connector` is missing"),
        "{err:#}"
    );
    let err = load("[rekey]\nplugins = []\n").unwrap_err();
    assert!(
        format!("{err:#}").contains("unknown field `plugins`"),
        "{err:#}"
    );
    let err = load("[targets.mail]\nconnector = 'smartermail'\n[targets.mail.policy]\nlength = 8\nmin_lower = 9\n")
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("exceed the length 8"),
        "{err:#}"
    );
    let err = load("[targets.mail]\nconnector = 'smartermail'\nconcurrency = 0\n").unwrap_err();
    assert!(format!("{err:#}").contains("`concurrency`"), "{err:#}");
    let err =
        load("[targets.mail]\nconnector = 'smartermail'\nconcurrency = 'fast'\n").unwrap_err();
    assert!(format!("{err:#}").contains("or \"auto\""), "{err:#}");
    let auto = load(
        "[targets.mail]\nconnector = 'smartermail'\nconcurrency = 'auto'\nmax_concurrency = 16\n",
    )
    .unwrap();
    let mail = auto.target("mail").unwrap();
    assert_eq!(mail.concurrency, Some(Concurrency::Auto));
    assert_eq!(mail.max_concurrency, Some(16));
    assert!(!mail.settings.contains_key("max_concurrency"));
    let err = load("[target.mail]\n").unwrap_err();
    assert!(
        format!("{err:#}").contains("unknown section `target`"),
        "{err:#}"
    );
    let err = load("[targets.mail]\nconnector = '../x'\n").unwrap_err();
    assert!(
        format!("{err:#}").contains("not a connector name"),
        "{err:#}"
    );
}

#[test]
fn connector_programs_are_named_by_command() {
    let config = load(
        "[targets.acme]\nconnector = 'acme'\nconnector_command = ['bin/acme', '--fast']\nconnector_env = ['ACME_CA']\n",
    )
    .unwrap();
    let acme = config.target("acme").unwrap();
    let command = acme.connector_command.as_ref().unwrap();
    assert_eq!(
        (command.program.as_str(), command.args.as_slice()),
        ("bin/acme", &["--fast".to_owned()][..])
    );
    assert!(command.dir.is_absolute());
    assert_eq!(acme.connector_env, ["ACME_CA"]);
    assert!(!acme.settings.contains_key("connector_env"));
    for (bad, why) in [
        ("connector_command = []", "name the program first"),
        ("connector_command = 'bin/acme'", "list of strings"),
        (
            "connector_command = ['a']\nconnector_file = 'b.so'",
            "give one of them",
        ),
        (
            "connector_env = ['A=B']",
            "not an environment variable name",
        ),
    ] {
        let err = load(&format!("[targets.t]\nconnector = 't'\n{bad}\n")).unwrap_err();
        assert!(format!("{err:#}").contains(why), "{bad}: {err:#}");
    }
}

#[test]
fn syntax_errors_do_not_quote_the_line() {
    let err =
        load("[targets.mail]\nconnector = 'smartermail'\npassword = \"hunter2\n").unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("line 3"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn unknown_targets_list_the_known_ones() {
    let config = load(
        "[targets.mail]\nconnector = 'smartermail'\n[targets.pbx]\nconnector = 'broadworks'\n",
    )
    .unwrap();
    let err = config.target("crm").unwrap_err();
    assert!(err.to_string().contains("mail, pbx"), "{err}");
}

#[test]
fn debug_never_shows_a_literal_secret() {
    let config = load(
        "[targets.mail]\nconnector = 'smartermail'\nurl = 'https://mail.example.com'\npassword = 'Literal-Secret-42'\n",
    )
    .unwrap();
    let shown = format!(
        "{config:?} {config:#?} {:?}",
        config.target("mail").unwrap()
    );
    assert!(shown.contains("password"), "{shown}");
    assert!(!shown.contains("Literal-Secret-42"), "{shown}");
}

#[test]
fn recipients_are_checked_when_the_config_is_read() {
    let key = age::x25519::Identity::generate().to_public().to_string();
    let config = load(&format!("[rekey]\nrecipients = ['{key}']\n")).unwrap();
    assert_eq!(config.recipients.len(), 1);
    let err = load("[rekey]\nrecipients = ['age1zzz']\n").unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("[rekey] recipients (recipient 1): `age1zzz`"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn an_untrusted_or_oversized_config_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "[rekey]\n").unwrap();
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o646)).unwrap();
    let err = Config::load(file.path()).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "config file {} is not trusted",
            file.path().display()
        )),
        "{err}"
    );
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(file.path(), "#".repeat(CONFIG_FILE_LIMIT as usize + 1)).unwrap();
    let err = Config::load(file.path()).unwrap_err().to_string();
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
}

/// A TOML value of any type, to put where the config expects another.
fn any_value() -> impl proptest::strategy::Strategy<Value = toml::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        prop_oneof![any::<i64>(), -2..300i64, Just(i64::MAX)].prop_map(toml::Value::Integer),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0)
        ]
        .prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        ".{0,12}".prop_map(toml::Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            proptest::collection::btree_map(
                "[a-z_]{1,8}|env|file|length|min_lower|symbols",
                inner,
                0..4
            )
            .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        let _ = Config::load(file.path());
    }

    #[test]
    fn wrong_but_well_formed_values_are_errors_not_panics(
        rekey_key in "plugin_path|state_dir|recipients|other",
        rekey_value in any_value(),
        target_key in "connector|connector_file|concurrency|rate|exclude|policy|passcode_policy|retry_budget|password",
        target_value in any_value(),
        policy in proptest::collection::btree_map(
            "length|min_lower|min_upper|min_digit|min_symbol|symbols|exclude_chars",
            any_value(),
            0..7,
        ),
    ) {
        let mut target = toml::Table::new();
        target.insert("connector".into(), toml::Value::String("smartermail".into()));
        target.insert(target_key, target_value);
        target.insert("policy".into(), toml::Value::Table(policy.into_iter().collect()));
        let mut targets = toml::Table::new();
        targets.insert("mail".into(), toml::Value::Table(target));
        let mut rekey = toml::Table::new();
        rekey.insert(rekey_key, rekey_value);
        let mut root = toml::Table::new();
        root.insert("rekey".into(), toml::Value::Table(rekey));
        root.insert("targets".into(), toml::Value::Table(targets));
        if let Ok(text) = toml::to_string(&root) {
            let _ = load(&text);
        }
    }
}
