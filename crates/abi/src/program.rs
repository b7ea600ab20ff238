//! The envelope of the program protocol: the messages of [`protocol`](crate::protocol)
//! carried as JSON lines over a connector program's standard input and output.
//!
//! A connector may be a program instead of a library (`rekey-connector-NAME` on the
//! plugin path, or a target's `connector_command`). rekey starts it once per target
//! and run and writes one JSON object per line to its standard input; the program
//! writes one JSON object per line to its standard output. Its standard error is
//! its own: rekey logs each line as it comes, labelled with the target.
//!
//! **rekey → program.** Every message has an `id` (a number, unique within the
//! run) and an `op`; the rest of the object is the message of the library ABI:
//!
//! | `op` | the rest | reply (`reply` of an `ok`) |
//! | --- | --- | --- |
//! | `describe` | `protocol` (this rekey's [`PROTOCOL_VERSION`]) | [`ProgramInfo`] |
//! | `create` | a [`CreateRequest`]: `settings`, `context` | [`CreateReply`](crate::protocol::CreateReply) |
//! | `check`, `list_users`, `generate`, `reset` | a [`Request`] | as in [`protocol`](crate::protocol) |
//! | `cancel` | nothing: `id` is the call to cancel | none of its own |
//! | `shutdown` | nothing | none: the program exits |
//!
//! **program → rekey.** One reply per call, with the call's `id` and a `status`
//! ([`Status`]): `ok` with `reply`, `error` with `error` (a [`ConnectorError`]:
//! `kind`, `message`, optional `retry_after_ms`), `cancelled` (the call was
//! cancelled before it finished), or `panic` with `message` (the handler failed
//! unexpectedly; its outcome is unknown). Replies may come in any order: calls
//! run concurrently, told apart by their ids.
//!
//! `describe` comes first, then at most one `create`, then calls; `cancel` may
//! follow a call at any time (the program then answers that call `cancelled` if
//! it can stop it, or with its result if it cannot: either is fine, rekey no
//! longer waits for it); `shutdown` comes last (a call still in flight then is
//! abandoned: the program need not answer it). The end of standard input means
//! the same as `shutdown`.
//!
//! # Version
//!
//! [`PROTOCOL_VERSION`] is 1. rekey sends its version in `describe`, and the program
//! answers with the version it speaks; rekey refuses a program of another version.
//! The protocol follows the policy of the [library ABI](crate): within one version
//! it changes only append-only (a new field with a default, which an older peer
//! ignores); anything else, including any change to the library ABI's messages
//! that bumps [`ABI_VERSION`](crate::ffi::ABI_VERSION), bumps it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{ConnectorError, ErrorKind};
use crate::metadata::Metadata;
use crate::protocol::{CreateRequest, CreateRequestRef, Request, Status, decode, encode};

/// The version of the program protocol this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The most bytes one line may hold: a line longer than this is not a message.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// What a program says about itself, in reply to `describe`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgramInfo {
    /// The protocol version the program speaks.
    pub protocol: u32,
    /// The connector's metadata.
    pub metadata: Metadata,
}

/// The messages rekey sends besides the calls ([`Request`]).
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control<'a> {
    /// Asks the program to describe itself.
    Describe {
        /// The protocol version of the sender.
        protocol: u32,
    },
    /// Creates the connector from the target's settings (secrets in plaintext).
    Create(CreateRequestRef<'a>),
    /// Cancels the call whose id the envelope carries.
    Cancel,
    /// Asks the program to exit.
    Shutdown,
}

/// One message and its id: the object written on one line.
#[derive(Serialize)]
struct Envelope<'a, M: ?Sized> {
    id: u64,
    #[serde(flatten)]
    message: &'a M,
}

/// The line carrying call `id` (`message` a [`Request`]) or control message (a
/// [`Control`]), newline included, in a buffer wiped when dropped.
pub fn encode_line<M: Serialize + ?Sized>(
    id: u64,
    message: &M,
) -> Result<Zeroizing<Vec<u8>>, ConnectorError> {
    let mut line = encode(&Envelope { id, message })?;
    line.push(b'\n');
    Ok(line)
}

/// A message as a program reads it.
#[derive(Debug)]
pub enum Incoming {
    /// `describe`, with the sender's protocol version.
    Describe {
        /// rekey's protocol version.
        protocol: u32,
    },
    /// `create`.
    Create(CreateRequest),
    /// `check`, `list_users`, `generate` or `reset`.
    Call(Request),
    /// `cancel`: the id is the call's.
    Cancel,
    /// `shutdown`.
    Shutdown,
}

#[derive(Deserialize)]
struct Header {
    id: u64,
    op: String,
}

#[derive(Deserialize)]
struct DescribeFields {
    protocol: u32,
}

impl Incoming {
    /// Reads one line from rekey: its id and message. The line is read twice, once
    /// for the header and once as the message itself, so that no copy of its
    /// secrets is made on the way.
    pub fn read(line: &[u8]) -> Result<(u64, Incoming), ConnectorError> {
        let header: Header = decode(line, "program protocol")?;
        let message = match header.op.as_str() {
            "describe" => Incoming::Describe {
                protocol: decode::<DescribeFields>(line, "describe")?.protocol,
            },
            "create" => Incoming::Create(decode(line, "create")?),
            "check" | "list_users" | "generate" | "reset" => Incoming::Call(decode(line, "call")?),
            "cancel" => Incoming::Cancel,
            "shutdown" => Incoming::Shutdown,
            other => {
                return Err(ConnectorError::unsupported(format!(
                    "unknown op `{other}` in the program protocol"
                )));
            }
        };
        Ok((header.id, message))
    }
}

/// A program's reply to one call.
#[derive(Serialize)]
pub struct Reply<'a, T: ?Sized> {
    /// The call's id.
    pub id: u64,
    /// How the call ended.
    pub status: Status,
    /// The reply, when `status` is `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<&'a T>,
    /// The error, when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a ConnectorError>,
    /// What went wrong, when `status` is `panic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
}

impl<'a, T: Serialize + ?Sized> Reply<'a, T> {
    /// The reply to call `id`: `result`'s value or error.
    pub fn of(id: u64, result: Result<&'a T, &'a ConnectorError>) -> Self {
        let (status, reply, error) = match result {
            Ok(reply) => (Status::Ok, Some(reply), None),
            Err(error) => (Status::Error, None, Some(error)),
        };
        Reply {
            id,
            status,
            reply,
            error,
            message: None,
        }
    }

    /// The line carrying this reply, newline included.
    pub fn line(&self) -> Result<Zeroizing<Vec<u8>>, ConnectorError> {
        let mut line = encode(self)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// What rekey reads first of a program's line: which call it answers, and how
/// that call ended (other fields are ignored). The rest is read by [`reply_of`].
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ReplyHeader {
    /// The call's id.
    pub id: u64,
    /// How the call ended.
    pub status: Status,
}

#[derive(Deserialize)]
struct OkFields<T> {
    reply: T,
}

#[derive(Deserialize)]
struct ErrorFields {
    error: ConnectorError,
}

#[derive(Deserialize)]
struct PanicFields {
    #[serde(default)]
    message: String,
}

/// The result a reply line carries, given its header's `status`: the reply of an
/// `ok` read as `T` (`what` names it in errors), the error of an `error`, a
/// [`Panicked`](ErrorKind::Panicked) error for a `panic` and a
/// [`Cancelled`](ErrorKind::Cancelled) one for a `cancelled`.
pub fn reply_of<T: DeserializeOwned>(
    line: &[u8],
    status: Status,
    what: &str,
) -> Result<T, ConnectorError> {
    match status {
        Status::Ok => Ok(decode::<OkFields<T>>(line, what)?.reply),
        Status::Error => Err(decode::<ErrorFields>(line, "error reply")?.error),
        Status::Panic => Err(ConnectorError::new(
            ErrorKind::Panicked,
            format!(
                "the connector program failed unexpectedly: {}",
                decode::<PanicFields>(line, "panic reply")?.message
            ),
        )),
        Status::Cancelled => Err(ConnectorError::new(
            ErrorKind::Cancelled,
            "the connector program cancelled the call",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::CredentialKind;
    use crate::model::{CheckReport, CreateContext, NewPassword, ResetItem};
    use crate::protocol::ResetReply;
    use crate::settings::{SettingValue, Settings};
    use crate::{SettingSpec, UserOutcome};

    fn text(line: &[u8]) -> String {
        String::from_utf8(line.to_vec()).unwrap()
    }

    /// The bytes of protocol 1 as they are: a change here is a protocol change.
    #[test]
    fn wire_forms_are_stable() {
        assert_eq!(
            text(&encode_line(1, &Control::Describe { protocol: 1 }).unwrap()),
            "{\"id\":1,\"op\":\"describe\",\"protocol\":1}\n"
        );
        assert_eq!(
            text(&encode_line(3, &Request::Check).unwrap()),
            "{\"id\":3,\"op\":\"check\"}\n"
        );
        let reset = Request::Reset {
            kind: CredentialKind::Password,
            items: vec![
                ResetItem {
                    user: "u1".into(),
                    password: NewPassword::Known("Pw-1234567890".into()),
                }
                .into(),
            ],
        };
        assert_eq!(
            text(&encode_line(4, &reset).unwrap()),
            "{\"id\":4,\"op\":\"reset\",\"kind\":\"password\",\"items\":[{\"user\":\"u1\",\"password\":\"Pw-1234567890\"}]}\n"
        );
        assert_eq!(
            text(&encode_line(4, &Control::Cancel).unwrap()),
            "{\"id\":4,\"op\":\"cancel\"}\n"
        );
        assert_eq!(
            text(&encode_line(9, &Control::Shutdown).unwrap()),
            "{\"id\":9,\"op\":\"shutdown\"}\n"
        );
        let error = ConnectorError::user_not_found("no user with id u9");
        assert_eq!(
            text(&Reply::<()>::of(5, Err(&error)).line().unwrap()),
            "{\"id\":5,\"status\":\"error\",\"error\":{\"kind\":\"user_not_found\",\"message\":\"no user with id u9\"}}\n"
        );
    }

    #[test]
    fn every_message_reads_back_on_the_program_side() {
        let schema = [SettingSpec::secret("api_key", "k").required()];
        let settings = Settings::check(
            &schema,
            [("api_key".to_owned(), SettingValue::Secret("k-1".into()))],
        )
        .unwrap();
        let context = CreateContext {
            target: "acme".into(),
            state_dir: "/tmp/s".into(),
            rate: None,
        };
        let line = encode_line(
            2,
            &Control::Create(CreateRequestRef {
                settings: &settings,
                context: &context,
            }),
        )
        .unwrap();
        let (id, Incoming::Create(create)) = Incoming::read(&line).unwrap() else {
            panic!("not a create");
        };
        assert_eq!(id, 2);
        let (settings, context) = create.checked(&schema).unwrap();
        assert_eq!(settings.secret("api_key").unwrap().expose(), "k-1");
        assert_eq!(context.target, "acme");

        let line = encode_line(7, &Request::ListUsers { cursor: None }).unwrap();
        assert!(matches!(
            Incoming::read(&line).unwrap(),
            (7, Incoming::Call(Request::ListUsers { cursor: None }))
        ));
        let line = encode_line(7, &Request::Check).unwrap();
        assert!(matches!(
            Incoming::read(&line).unwrap(),
            (7, Incoming::Call(Request::Check))
        ));
        for (control, expected) in [(Control::Cancel, "cancel"), (Control::Shutdown, "shutdown")] {
            let (id, incoming) = Incoming::read(&encode_line(8, &control).unwrap()).unwrap();
            assert_eq!(id, 8);
            assert_eq!(format!("{incoming:?}").to_lowercase(), expected);
        }
        let (_, describe) =
            Incoming::read(&encode_line(1, &Control::Describe { protocol: 1 }).unwrap()).unwrap();
        assert!(matches!(describe, Incoming::Describe { protocol: 1 }));
        let error = Incoming::read(b"{\"id\":1,\"op\":\"rename\"}").unwrap_err();
        assert!(error.message.contains("`rename`"), "{error}");
    }

    #[test]
    fn replies_read_back_on_the_host_side() {
        let report = CheckReport {
            account: Some("svc".into()),
            detail: String::new(),
        };
        let line = Reply::of(3, Ok(&report)).line().unwrap();
        let header: ReplyHeader = serde_json::from_slice(&line).unwrap();
        assert_eq!((header.id, header.status), (3, Status::Ok));
        let back: CheckReport = reply_of(&line, header.status, "check reply").unwrap();
        assert_eq!(back, report);

        let outcomes = ResetReply {
            outcomes: vec![UserOutcome::applied("u1").into()],
        };
        let line = Reply::of(4, Ok(&outcomes)).line().unwrap();
        let back: ResetReply = reply_of(&line, Status::Ok, "reset reply").unwrap();
        assert_eq!(back.outcomes[0].user, "u1");

        let error = ConnectorError::transient("503");
        let line = Reply::<()>::of(5, Err(&error)).line().unwrap();
        let header: ReplyHeader = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            reply_of::<CheckReport>(&line, header.status, "check reply").unwrap_err(),
            error
        );
        let line = br#"{"id":6,"status":"panic","message":"KeyError: 'items'"}"#;
        let error = reply_of::<CheckReport>(line, Status::Panic, "check reply").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Panicked);
        assert!(error.message.contains("KeyError"), "{error}");
        let line = br#"{"id":7,"status":"cancelled"}"#;
        let error = reply_of::<CheckReport>(line, Status::Cancelled, "check reply").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Cancelled);
    }

    #[test]
    fn malformed_replies_are_described_without_their_content() {
        let line = br#"{"id":3,"status":"ok","reply":{"values":"hunter2-secret"}}"#;
        let error = reply_of::<crate::protocol::GenerateReply>(line, Status::Ok, "generate reply")
            .err()
            .unwrap();
        assert!(!error.message.contains("hunter2"), "{}", error.message);
        assert!(
            error.message.contains("generate reply"),
            "{}",
            error.message
        );
    }
}
