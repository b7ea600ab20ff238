//! The JSON messages of the plugin ABI, apart from the FFI glue that carries them.
//!
//! Every message is versioned by the ABI version; new fields are added with serde
//! defaults so that an older peer still reads a newer message.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{ConnectorError, ErrorKind};
use crate::metadata::{CredentialKind, Metadata};
use crate::model::{Batching, CreateContext, WireItem, WireOutcome};
use crate::secret::{self, Secret};

/// Completion status: the payload is the reply.
pub(crate) const STATUS_OK: i32 = 0;
/// Completion status: the payload is a [`ConnectorError`].
pub(crate) const STATUS_ERR: i32 = 1;
/// Completion status: the payload is the panic message (UTF-8 text).
pub(crate) const STATUS_PANIC: i32 = 2;
/// Completion status: the call was cancelled; no payload.
pub(crate) const STATUS_CANCELLED: i32 = 3;

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
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    Check,
    ListUsers {
        #[serde(default)]
        cursor: Option<String>,
    },
    Generate {
        kind: CredentialKind,
        count: usize,
    },
    Reset {
        kind: CredentialKind,
        items: Vec<WireItem>,
    },
}

/// The `create` message.
#[derive(Serialize, Deserialize)]
pub(crate) struct CreateRequest {
    pub settings: Map<String, Value>,
    pub context: CreateContext,
}

/// The reply to `create`.
#[derive(Serialize, Deserialize)]
pub(crate) struct CreateReply {
    pub batching: Batching,
}

/// The reply to `generate`.
#[derive(Serialize, Deserialize)]
pub(crate) struct GenerateReply {
    #[serde(with = "secret::expose::vec")]
    pub values: Vec<Secret>,
}

/// The reply to `reset`.
#[derive(Serialize, Deserialize)]
pub(crate) struct ResetReply {
    pub outcomes: Vec<WireOutcome>,
}

/// Serializes a message into a buffer that is wiped when dropped (messages carry
/// passwords).
pub(crate) fn encode<T: Serialize>(message: &T) -> Result<Zeroizing<Vec<u8>>, ConnectorError> {
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

/// Parses a message, naming `what` in the error.
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &str,
) -> Result<T, ConnectorError> {
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
