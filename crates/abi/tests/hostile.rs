//! Every message of the plugin ABI, decoded from hostile input on either side of
//! the boundary (arbitrary bytes, arbitrary JSON, JSON of the right shape with
//! wrong values): an error, never a panic, and never a secret in the error.

use proptest::prelude::*;
use rekey_abi::protocol::{
    self, CreateReply, CreateRequest, GenerateReply, PluginInfo, Request, ResetReply,
};
use rekey_abi::{CheckReport, ConnectorError, Metadata, SettingSpec, UserPage};
use serde_json::{Map, Value};

/// Any JSON value, with keys the messages use.
fn json() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "op",
        "kind",
        "items",
        "user",
        "password",
        "cursor",
        "count",
        "settings",
        "context",
        "target",
        "state_dir",
        "rate",
        "batching",
        "max_users",
        "shared_password",
        "values",
        "outcomes",
        "error",
        "message",
        "retry_after_ms",
        "vendor_password",
        "detail",
        "abi_version",
        "api_version",
        "panic_unwind",
        "metadata",
        "name",
        "version",
        "description",
        "kinds",
        "capabilities",
        "users",
        "next",
        "id",
        "account",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just("reset".to_owned()),
            Just("password".to_owned()),
            Just("list_users".to_owned()),
            ".{0,24}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| ((*k).to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Decodes `bytes` as every message type; none may panic.
fn decode_all(bytes: &[u8]) {
    let _ = protocol::decode::<Request>(bytes, "call");
    let _ = protocol::decode::<ResetReply>(bytes, "reset reply");
    let _ = protocol::decode::<GenerateReply>(bytes, "generate reply");
    let _ = protocol::decode::<CreateReply>(bytes, "create reply");
    let _ = protocol::decode::<ConnectorError>(bytes, "error");
    let _ = protocol::decode::<CheckReport>(bytes, "check reply");
    let _ = protocol::decode::<UserPage>(bytes, "list_users reply");
    if let Ok(info) = protocol::decode::<PluginInfo>(bytes, "metadata") {
        let _ = info.metadata.validate();
    }
    if let Ok(create) = protocol::decode::<CreateRequest>(bytes, "create") {
        let schema = [
            SettingSpec::url("url", "u").required(),
            SettingSpec::secret("password", "p"),
            SettingSpec::integer("timeout", "t"),
        ];
        let _ = create.checked(&schema);
    }
    if let Ok(metadata) = protocol::decode::<Metadata>(bytes, "metadata") {
        let _ = metadata.validate();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json()) {
        decode_all(value.to_string().as_bytes());
    }

    #[test]
    fn errors_never_quote_what_they_could_not_read(secret in "[A-Za-z0-9]{12,20}") {
        // A reset call whose item is malformed right after its password.
        let text = format!(r#"{{"op":"reset","kind":"password","items":[{{"user":"a","password":"{secret}","user":7}}]}}"#);
        if let Err(error) = protocol::decode::<Request>(text.as_bytes(), "call") {
            prop_assert!(!error.message.contains(&secret), "{}", error.message);
        }
        let text = format!(r#"{{"values":["{secret}", 5]}}"#);
        let Err(error) = protocol::decode::<GenerateReply>(text.as_bytes(), "generate reply") else {
            panic!("a number is not a value");
        };
        prop_assert!(!error.message.contains(&secret), "{}", error.message);
    }
}
