//! The messages of the plugin ABI, apart from any transport that carries them.
//!
//! Every message is a serde type written as JSON. The C boundary of
//! [`ffi`](crate::ffi) carries them as byte buffers and says how a call ended with a
//! [`Status`] code; another transport (a connector program speaking JSON lines over
//! stdin and stdout) can carry the very same messages, wrapping each in its own
//! envelope (a request id and the [`Status`]). Nothing here knows about pointers,
//! threads or ids.
//!
//! One exchange per operation:
//!
//! | operation | request | reply on success |
//! | --- | --- | --- |
//! | describe the library | (none) | [`PluginInfo`] |
//! | create a connector | [`CreateRequest`] (sent as [`CreateRequestRef`]) | [`CreateReply`] |
//! | check | [`Request::Check`] | [`CheckReport`](crate::CheckReport) |
//! | list users | [`Request::ListUsers`] | [`UserPage`](crate::UserPage) |
//! | generate | [`Request::Generate`] | [`GenerateReply`] |
//! | reset | [`Request::Reset`] | [`ResetReply`] |
//!
//! A failed call replies with a [`ConnectorError`] ([`Status::Error`]); a panic
//! with its message as plain UTF-8 text ([`Status::Panic`]); a cancelled call with
//! nothing ([`Status::Cancelled`]).
//!
//! Messages evolve append-only within an ABI version: a new field has a serde
//! default, so an older peer still reads a newer message and ignores what it does
//! not know. Anything else is a new ABI version (see the [crate docs](crate)).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{ConnectorError, ErrorKind};
use crate::metadata::{CredentialKind, Metadata};
use crate::model::{Applied, Batching, CreateContext, NewPassword, ResetItem, UserOutcome};
use crate::secret::{self, Secret};
use crate::settings::{Settings, SettingsError};

/// How a call ended: the status code of a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The payload is the reply.
    Ok,
    /// The payload is a [`ConnectorError`].
    Error,
    /// The payload is the panic message (UTF-8 text).
    Panic,
    /// The call was cancelled; no payload.
    Cancelled,
}

impl Status {
    /// The number the C boundary carries.
    pub const fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Error => 1,
            Status::Panic => 2,
            Status::Cancelled => 3,
        }
    }

    /// The status of a number from the C boundary, if it is one.
    pub const fn from_code(code: i32) -> Option<Status> {
        match code {
            0 => Some(Status::Ok),
            1 => Some(Status::Error),
            2 => Some(Status::Panic),
            3 => Some(Status::Cancelled),
            _ => None,
        }
    }
}

/// What a library says about itself: its ABI facts and its connector's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The ABI version the library speaks.
    pub abi_version: u32,
    /// The version of `rekey-api` it was built with.
    pub api_version: String,
    /// Whether it was built with `panic = "unwind"`, so its panics can be caught.
    pub panic_unwind: bool,
    /// The connector's metadata.
    pub metadata: Metadata,
}

/// A call to a created connector.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Authenticate and report the connector's account (`Connector::check`).
    Check,
    /// One page of the listing, from `cursor` (`None`: the first page).
    ListUsers {
        /// Where the page starts.
        #[serde(default)]
        cursor: Option<String>,
    },
    /// `count` vendor-made values of `kind`.
    Generate {
        /// The credential kind.
        kind: CredentialKind,
        /// How many values.
        count: usize,
    },
    /// Resets a batch.
    Reset {
        /// The credential kind.
        kind: CredentialKind,
        /// The users and their new values.
        items: Vec<WireItem>,
    },
}

/// The `create` message as the receiving side reads it: the target's settings
/// (secrets in plaintext, told apart by the connector's schema) and its context.
#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    /// The settings, as one JSON object.
    pub settings: Map<String, Value>,
    /// What the host tells the connector.
    pub context: CreateContext,
}

impl CreateRequest {
    /// Checks the settings against the connector's schema: the settings, and the
    /// context.
    pub fn checked(
        self,
        schema: &[crate::SettingSpec],
    ) -> Result<(Settings, CreateContext), SettingsError> {
        Ok((Settings::from_json(schema, self.settings)?, self.context))
    }
}

/// The `create` message as the host sends it: straight from the checked
/// [`Settings`], secrets in plaintext, without an intermediate copy. It reads back as
/// a [`CreateRequest`].
#[derive(Serialize)]
pub struct CreateRequestRef<'a> {
    /// The target's checked settings.
    #[serde(serialize_with = "expose_settings")]
    pub settings: &'a Settings,
    /// What the host tells the connector.
    pub context: &'a CreateContext,
}

fn expose_settings<S: serde::Serializer>(
    settings: &&Settings,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    settings.serialize_exposing_secrets(serializer)
}

/// The reply to `create`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateReply {
    /// How the connector wants its resets grouped.
    pub batching: Batching,
}

/// The reply to [`Request::Generate`].
#[derive(Serialize, Deserialize)]
pub struct GenerateReply {
    /// The values, in plaintext on the wire.
    #[serde(with = "secret::expose::vec")]
    pub values: Vec<Secret>,
}

/// The reply to [`Request::Reset`].
#[derive(Serialize, Deserialize)]
pub struct ResetReply {
    /// One outcome per user.
    pub outcomes: Vec<WireOutcome>,
}

/// A [`ResetItem`] on the wire: `password` is the known value in plaintext, or
/// absent for a vendor-generated one.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireItem {
    /// The user id.
    pub user: String,
    /// The known value; `None` for [`NewPassword::VendorGenerated`].
    #[serde(with = "secret::expose::option")]
    pub password: Option<Secret>,
}

/// A [`UserOutcome`] on the wire: `error` when it failed, else the optional
/// vendor-made value (plaintext) and detail.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireOutcome {
    /// The user id.
    pub user: String,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ConnectorError>,
    /// [`Applied::vendor_password`].
    #[serde(
        default,
        with = "secret::expose::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub vendor_password: Option<Secret>,
    /// [`Applied::detail`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<ResetItem> for WireItem {
    fn from(item: ResetItem) -> Self {
        WireItem {
            user: item.user,
            password: match item.password {
                NewPassword::Known(secret) => Some(secret),
                NewPassword::VendorGenerated => None,
            },
        }
    }
}

impl From<WireItem> for ResetItem {
    fn from(item: WireItem) -> Self {
        ResetItem {
            user: item.user,
            password: match item.password {
                Some(secret) => NewPassword::Known(secret),
                None => NewPassword::VendorGenerated,
            },
        }
    }
}

impl From<UserOutcome> for WireOutcome {
    fn from(outcome: UserOutcome) -> Self {
        match outcome.result {
            Ok(applied) => WireOutcome {
                user: outcome.user,
                error: None,
                vendor_password: applied.vendor_password,
                detail: applied.detail,
            },
            Err(error) => WireOutcome {
                user: outcome.user,
                error: Some(error),
                vendor_password: None,
                detail: None,
            },
        }
    }
}

impl From<WireOutcome> for UserOutcome {
    fn from(outcome: WireOutcome) -> Self {
        UserOutcome {
            user: outcome.user,
            result: match outcome.error {
                Some(error) => Err(error),
                None => Ok(Applied {
                    vendor_password: outcome.vendor_password,
                    detail: outcome.detail,
                }),
            },
        }
    }
}

/// Serializes a message into a buffer that is wiped when dropped (messages carry
/// passwords).
pub fn encode<T: Serialize + ?Sized>(message: &T) -> Result<Zeroizing<Vec<u8>>, ConnectorError> {
    // Sized generously up front so that growing the buffer rarely leaves a copy
    // behind in freed memory.
    let mut buf = Zeroizing::new(Vec::with_capacity(4096));
    serde_json::to_writer(&mut *buf, message).map_err(|e| {
        ConnectorError::new(
            ErrorKind::Fatal,
            format!("cannot encode message ({})", crate::json_error_position(&e)),
        )
    })?;
    Ok(buf)
}

/// Parses a message, naming `what` in the error (never quoting the bytes: they may
/// hold secrets).
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, ConnectorError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ConnectorError::new(
            ErrorKind::Fatal,
            format!(
                "malformed {what} message across the plugin boundary ({})",
                crate::json_error_position(&e)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::SettingSpec;
    use crate::settings::SettingValue;

    #[test]
    fn create_message_reads_back_on_the_other_side() {
        let schema = [
            SettingSpec::string("url", "u").required(),
            SettingSpec::secret("password", "p").required(),
        ];
        let settings = Settings::check(
            &schema,
            [
                ("url".to_owned(), SettingValue::Plain("https://h".into())),
                ("password".to_owned(), SettingValue::Secret("pw".into())),
            ],
        )
        .unwrap();
        let context = CreateContext {
            target: "mail".into(),
            state_dir: "/tmp/x".into(),
            rate: Some(2.5),
        };
        let bytes = encode(&CreateRequestRef {
            settings: &settings,
            context: &context,
        })
        .unwrap();
        let request: CreateRequest = decode(&bytes, "create").unwrap();
        let (back, context) = request.checked(&schema).unwrap();
        assert_eq!(context.target, "mail");
        assert_eq!(context.rate, Some(2.5));
        assert_eq!(back.secret("password").unwrap().expose(), "pw");
        assert_eq!(back.str("url").unwrap(), "https://h");
    }

    /// The bytes of ABI 1 as they are: a change here is an ABI change.
    #[test]
    fn wire_forms_are_stable() {
        let request = Request::Reset {
            kind: CredentialKind::Passcode,
            items: vec![
                ResetItem {
                    user: "a".into(),
                    password: NewPassword::Known("1357".into()),
                }
                .into(),
                ResetItem {
                    user: "b".into(),
                    password: NewPassword::VendorGenerated,
                }
                .into(),
            ],
        };
        assert_eq!(
            String::from_utf8(encode(&request).unwrap().to_vec()).unwrap(),
            r#"{"op":"reset","kind":"passcode","items":[{"user":"a","password":"1357"},{"user":"b","password":null}]}"#
        );
        assert_eq!(
            String::from_utf8(
                encode(&Request::ListUsers { cursor: None })
                    .unwrap()
                    .to_vec()
            )
            .unwrap(),
            r#"{"op":"list_users","cursor":null}"#
        );
        let outcome: WireOutcome = UserOutcome::failed("a", ConnectorError::rejected("no")).into();
        assert_eq!(
            String::from_utf8(encode(&outcome).unwrap().to_vec()).unwrap(),
            r#"{"user":"a","error":{"kind":"rejected","message":"no"}}"#
        );
    }

    #[test]
    fn statuses_round_trip() {
        for status in [Status::Ok, Status::Error, Status::Panic, Status::Cancelled] {
            assert_eq!(Status::from_code(status.code()), Some(status));
        }
        assert_eq!(Status::from_code(7), None);
    }

    #[test]
    fn malformed_messages_are_described_by_position() {
        let error =
            decode::<CreateReply>(b"{\"batching\": \"secret-x\"}", "create reply").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Fatal);
        assert!(!error.message.contains("secret-x"), "{}", error.message);
        assert!(error.message.contains("create reply"), "{}", error.message);
    }
}
