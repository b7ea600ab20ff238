//! The host side of the ABI: loading a connector library and calling it.
//!
//! [`PluginLibrary::load`] opens a library once (libraries are never unloaded),
//! checks its ABI and metadata, and [`PluginLibrary::create`] makes a
//! [`PluginConnector`], which implements [`Connector`] so the rest of the host never
//! sees FFI.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tracing::Level;
use tracing::level_filters::LevelFilter;
use zeroize::Zeroizing;

use super::{
    ABI_VERSION, ENTRY_SYMBOL, EntryFn, HostApi, OwnedBuf, PluginVTable, level_from_u8, level_to_u8,
};
use crate::connector::Connector;
use crate::error::{ConnectorError, ErrorKind};
use crate::metadata::CredentialKind;
use crate::model::{
    Batching, CheckReport, CreateContext, ResetRequest, UserOutcome, UserPage, WireItem,
};
use crate::protocol::{
    self, CreateReply, GenerateReply, PluginInfo, Request, ResetReply, STATUS_CANCELLED,
    STATUS_ERR, STATUS_OK, STATUS_PANIC,
};
use crate::secret::Secret;
use crate::settings::Settings;

/// How the host sets up the libraries it loads.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Worker threads of each library's tokio runtime.
    pub worker_threads: u32,
    /// The most verbose level of library events the host wants.
    pub max_log_level: LevelFilter,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            worker_threads: 2,
            max_log_level: LevelFilter::current(),
        }
    }
}

/// Why a library could not be used. Every message names the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// No file at the path.
    #[error("connector library {} does not exist", path.display())]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// The dynamic loader refused the file.
    #[error("cannot load connector library {}: {reason}", path.display())]
    Open {
        /// The library.
        path: PathBuf,
        /// The loader's explanation.
        reason: String,
    },
    /// The file is a library but not a rekey connector.
    #[error(
        "{} is not a rekey connector library: it exports no `rekey_connector_entry_v{ABI_VERSION}` symbol (connectors are built with rekey_api::export_connector!)",
        path.display()
    )]
    NoEntry {
        /// The library.
        path: PathBuf,
    },
    /// The library speaks another version of the plugin ABI.
    #[error(
        "connector library {} speaks plugin ABI version {found}, but this rekey speaks version {ABI_VERSION}: rebuild the connector against a rekey-api of this rekey's ABI, or use a rekey that speaks version {found}",
        path.display()
    )]
    AbiMismatch {
        /// The library.
        path: PathBuf,
        /// The version it speaks.
        found: u32,
    },
    /// The library's entry function refused to start or panicked.
    #[error("connector library {} failed to start (its entry function returned nothing; see the log above)", path.display())]
    Refused {
        /// The library.
        path: PathBuf,
    },
    /// The library's self-description is missing or unusable.
    #[error("connector library {} gave unusable metadata: {reason}", path.display())]
    BadMetadata {
        /// The library.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The library was built so that its panics abort the whole process.
    #[error(
        "connector library {} was built with panic = \"abort\", so any panic in it would kill rekey: rebuild it with panic = \"unwind\"",
        path.display()
    )]
    PanicAbort {
        /// The library.
        path: PathBuf,
    },
}

/// A loaded, checked connector library. Cheap to clone.
#[derive(Clone)]
pub struct PluginLibrary {
    inner: Arc<LoadedLibrary>,
}

struct LoadedLibrary {
    path: PathBuf,
    vtable: &'static PluginVTable,
    info: PluginInfo,
}

impl std::fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("path", &self.inner.path)
            .field("name", &self.inner.info.metadata.name)
            .finish()
    }
}

/// Libraries already loaded, by canonical path: each is loaded once per process.
static LOADED: Mutex<Vec<(PathBuf, Result<PluginLibrary, LoadError>)>> = Mutex::new(Vec::new());

/// Where a library's log events are attributed: leaked once per library.
struct LogContext {
    library: String,
}

impl PluginLibrary {
    /// Loads the connector library at `path` (once per process; later calls return
    /// the same library), checks its ABI version and metadata, and starts it.
    pub fn load(path: &Path, options: LoadOptions) -> Result<PluginLibrary, LoadError> {
        if !path.is_file() {
            return Err(LoadError::Missing {
                path: path.to_owned(),
            });
        }
        let canonical = path.canonicalize().map_err(|e| LoadError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, result)) = loaded.iter().find(|(p, _)| *p == canonical) {
            return result.clone();
        }
        let result = open(&canonical, options);
        loaded.push((canonical, result.clone()));
        result
    }

    /// The file the library was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What the library says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// Creates a connector for one target from its checked settings.
    pub fn create(
        &self,
        settings: &Settings,
        context: CreateContext,
    ) -> Result<PluginConnector, ConnectorError> {
        let request = protocol::encode(&ExposedCreate {
            settings: ExposedSettings(settings),
            context: &context,
        })?;
        let vtable = self.inner.vtable;
        let mut out = OwnedBuf::EMPTY;
        // SAFETY: the vtable is valid for the life of the process (the library is never
        // unloaded); the request is borrowed for the call and `out` is ours to fill.
        let instance = unsafe { (vtable.create)(request.as_ptr(), request.len(), &mut out) };
        drop(request);
        let reply = take_buf(vtable, out);
        if instance.is_null() {
            return Err(
                protocol::decode::<ConnectorError>(&reply, "create error").unwrap_or_else(|_| {
                    ConnectorError::fatal("the connector could not be created and gave no reason")
                }),
            );
        }
        let handle = InstanceHandle { vtable, instance };
        let reply: CreateReply = protocol::decode(&reply, "create reply")?;
        Ok(PluginConnector {
            library: self.clone(),
            handle: Arc::new(handle),
            batching: Batching {
                max_users: reply.batching.max_users.max(1),
                ..reply.batching
            },
        })
    }
}

/// Serializes a create request with the secrets in plaintext, straight from the
/// [`Settings`], without an intermediate copy.
#[derive(Serialize)]
struct ExposedCreate<'a> {
    settings: ExposedSettings<'a>,
    context: &'a CreateContext,
}

struct ExposedSettings<'a>(&'a Settings);

impl Serialize for ExposedSettings<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_exposing_secrets(serializer)
    }
}

fn open(path: &Path, options: LoadOptions) -> Result<PluginLibrary, LoadError> {
    let path_buf = path.to_owned();
    // SAFETY: loading a library runs its initialisers. rekey loads only files the
    // operator placed on the plugin path or named in the config, which are trusted
    // as code, like the rekey binary itself (documented in the README).
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Open {
        path: path_buf.clone(),
        reason: e.to_string(),
    })?;
    // SAFETY: the symbol, if present, has the `EntryFn` type: that is what the
    // versioned name promises, and export_connector! defines it so.
    let entry = match unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) } {
        Ok(entry) => *entry,
        Err(_) => {
            return Err(match other_abi(&library) {
                Some(found) => LoadError::AbiMismatch {
                    path: path_buf,
                    found,
                },
                None => LoadError::NoEntry { path: path_buf },
            });
        }
    };
    let log_ctx: &'static LogContext = Box::leak(Box::new(LogContext {
        library: library_label(path),
    }));
    let host = HostApi {
        abi_version: ABI_VERSION,
        struct_size: size_of::<HostApi>(),
        log_ctx: std::ptr::from_ref(log_ctx).cast_mut().cast(),
        log: host_log,
        max_log_level: options.max_log_level.into_level().map_or(0, level_to_u8),
        worker_threads: options.worker_threads.max(1),
    };
    // SAFETY: `entry` is the library's entry symbol; `host` is valid for the call and its
    // `log_ctx` is leaked, so it stays valid for the life of the process.
    let vtable = unsafe { entry(&host) };
    if vtable.is_null() {
        return Err(LoadError::Refused { path: path_buf });
    }
    // SAFETY: a non-null vtable pointer points into the library's statics. Its first two
    // fields exist in every ABI version, so they are read before trusting the rest.
    let (abi, size) = unsafe {
        (
            std::ptr::addr_of!((*vtable).abi_version).read(),
            std::ptr::addr_of!((*vtable).struct_size).read(),
        )
    };
    if abi != ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            path: path_buf,
            found: abi,
        });
    }
    if size < size_of::<PluginVTable>() {
        return Err(LoadError::BadMetadata {
            path: path_buf,
            reason: format!("its function table is {size} bytes, smaller than ABI {ABI_VERSION}'s"),
        });
    }
    // The library is never unloaded (plugin-abi.md §3.4), so its statics live for the
    // rest of the process.
    std::mem::forget(library);
    // SAFETY: checked non-null, of our ABI version and at least our size; it lives in
    // the library, which is never unloaded.
    let vtable: &'static PluginVTable = unsafe { &*vtable };
    // SAFETY: `metadata` takes no arguments and returns a buffer we give back to the
    // same library's `free_buf`.
    let bytes = take_buf(vtable, unsafe { (vtable.metadata)() });
    if bytes.is_empty() {
        return Err(LoadError::BadMetadata {
            path: path_buf,
            reason: "it returned none (it panicked or failed; see the log above)".into(),
        });
    }
    let info: PluginInfo =
        protocol::decode(&bytes, "metadata").map_err(|e| LoadError::BadMetadata {
            path: path_buf.clone(),
            reason: e.message,
        })?;
    if info.abi_version != ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            path: path_buf,
            found: info.abi_version,
        });
    }
    if !info.panic_unwind {
        return Err(LoadError::PanicAbort { path: path_buf });
    }
    info.metadata
        .validate()
        .map_err(|reason| LoadError::BadMetadata {
            path: path_buf.clone(),
            reason,
        })?;
    Ok(PluginLibrary {
        inner: Arc::new(LoadedLibrary {
            path: path_buf,
            vtable,
            info,
        }),
    })
}

/// Looks for the entry symbol of another ABI version, to tell the operator which
/// one the library speaks.
fn other_abi(library: &libloading::Library) -> Option<u32> {
    (0..=16).filter(|v| *v != ABI_VERSION).find(|v| {
        let name = format!("rekey_connector_entry_v{v}\0");
        // SAFETY: the symbol is only looked up, never called or dereferenced.
        unsafe { library.get::<*const c_void>(name.as_bytes()) }.is_ok()
    })
}

/// `librekey_oracle_cloud.so` → `oracle-cloud`, for log lines before the metadata
/// is known.
fn library_label(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    let stem = stem.strip_prefix("lib").unwrap_or(stem);
    stem.strip_prefix("rekey_")
        .unwrap_or(stem)
        .replace('_', "-")
}

/// Copies a library-owned buffer and gives it back to the library.
fn take_buf(vtable: &PluginVTable, buf: OwnedBuf) -> Zeroizing<Vec<u8>> {
    if buf.ptr.is_null() {
        return Zeroizing::new(Vec::new());
    }
    // SAFETY: the library returned this buffer with `len` initialised bytes, and it
    // stays valid until we pass it to `free_buf`, just below.
    let bytes = Zeroizing::new(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec());
    // SAFETY: the buffer came from this library and is released exactly once.
    unsafe { (vtable.free_buf)(buf) };
    bytes
}

/// The host's log callback: re-emits a library's event on the host's subscriber.
unsafe extern "C" fn host_log(
    ctx: *mut c_void,
    level: u8,
    label: *const u8,
    label_len: usize,
    target: *const u8,
    target_len: usize,
    message: *const u8,
    message_len: usize,
) {
    let _ = catch_unwind(|| {
        // SAFETY: `ctx` is the LogContext leaked for this library in `open`.
        let context = unsafe { &*ctx.cast_const().cast::<LogContext>() };
        // SAFETY: the library passes UTF-8 strings borrowed for the duration of this
        // call (ABI contract); they are copied before it returns. Invalid UTF-8 is
        // replaced rather than trusted.
        let (label, module, message) = unsafe {
            (
                String::from_utf8_lossy(raw_bytes(label, label_len)),
                String::from_utf8_lossy(raw_bytes(target, target_len)),
                String::from_utf8_lossy(raw_bytes(message, message_len)),
            )
        };
        let Some(level) = level_from_u8(level) else {
            return;
        };
        emit(level, &context.library, &label, &module, &message);
    });
}

/// A borrowed byte slice from a pointer and a length; empty for a null pointer.
///
/// # Safety
/// A non-null `ptr` must be valid for `len` bytes for the returned lifetime.
unsafe fn raw_bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's guarantee.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

fn emit(level: Level, connector: &str, label: &str, module: &str, message: &str) {
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(target: "rekey::plugin", $level, connector, target = label, module, "{message}")
        };
    }
    match level {
        Level::ERROR => event!(Level::ERROR),
        Level::WARN => event!(Level::WARN),
        Level::INFO => event!(Level::INFO),
        Level::DEBUG => event!(Level::DEBUG),
        Level::TRACE => event!(Level::TRACE),
    }
}

/// A created connector instance inside a library; destroyed when dropped.
struct InstanceHandle {
    vtable: &'static PluginVTable,
    instance: *mut c_void,
}

// SAFETY: the instance is an `Arc` of a `Connector`, which is `Send + Sync`, and the
// library's functions may be called from any thread (ABI contract).
unsafe impl Send for InstanceHandle {}
// SAFETY: as above.
unsafe impl Sync for InstanceHandle {}

impl Drop for InstanceHandle {
    fn drop(&mut self) {
        // SAFETY: the instance came from this vtable's `create` and is released once.
        unsafe { (self.vtable.destroy)(self.instance) };
    }
}

type CompletionSender = oneshot::Sender<(i32, Zeroizing<Vec<u8>>)>;

/// The host's completion callback: hands the reply to the waiting future.
unsafe extern "C" fn on_complete(ctx: *mut c_void, status: i32, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the boxed sender `PluginConnector::call` leaked for this call,
        // and the library fires the completion exactly once, so it is reclaimed once.
        let sender = unsafe { Box::from_raw(ctx.cast::<CompletionSender>()) };
        // SAFETY: the payload is borrowed for the duration of this callback.
        let payload = Zeroizing::new(unsafe { raw_bytes(ptr, len) }.to_vec());
        // The receiver is gone if the call was cancelled; nothing to do then.
        let _ = sender.send((status, payload));
    }));
}

/// Cancels a call in the library if its future is dropped before it completes.
struct CancelOnDrop<'a> {
    handle: &'a InstanceHandle,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed && self.id != 0 {
            // SAFETY: the instance is alive (we hold a reference to its handle) and the
            // library ignores ids of calls that already finished.
            unsafe { (self.handle.vtable.cancel)(self.handle.instance, self.id) };
        }
    }
}

/// A connector running inside a library, seen through the [`Connector`] trait.
pub struct PluginConnector {
    library: PluginLibrary,
    handle: Arc<InstanceHandle>,
    batching: Batching,
}

impl std::fmt::Debug for PluginConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginConnector")
            .field("library", &self.library)
            .field("batching", &self.batching)
            .finish()
    }
}

impl PluginConnector {
    /// The library this connector runs in.
    pub fn library(&self) -> &PluginLibrary {
        &self.library
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: &Request,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let payload = self.call_raw(request).await?;
        protocol::decode(&payload, what)
    }

    async fn call_raw(&self, request: &Request) -> Result<Zeroizing<Vec<u8>>, ConnectorError> {
        let body = protocol::encode(request)?;
        let (sender, receiver) = oneshot::channel();
        let ctx: *mut CompletionSender = Box::into_raw(Box::new(sender));
        let handle = &*self.handle;
        // SAFETY: the instance is alive while `self` is; the body is borrowed for the
        // call; `ctx` is reclaimed by `on_complete`, which the library fires exactly once.
        let id = unsafe {
            (handle.vtable.call)(
                handle.instance,
                body.as_ptr(),
                body.len(),
                ctx.cast(),
                on_complete,
            )
        };
        drop(body);
        let mut guard = CancelOnDrop {
            handle,
            id,
            armed: true,
        };
        let reply = receiver.await;
        guard.armed = false;
        let (status, payload) = reply.map_err(|_| {
            ConnectorError::fatal("the connector dropped the call without replying")
        })?;
        match status {
            STATUS_OK => Ok(payload),
            STATUS_ERR => Err(protocol::decode::<ConnectorError>(&payload, "error")?),
            STATUS_PANIC => Err(ConnectorError::new(
                ErrorKind::Panicked,
                format!(
                    "the connector panicked: {}",
                    String::from_utf8_lossy(&payload)
                ),
            )),
            STATUS_CANCELLED => Err(ConnectorError::new(
                ErrorKind::Cancelled,
                "the call was cancelled",
            )),
            other => Err(ConnectorError::fatal(format!(
                "the connector replied with unknown status {other}"
            ))),
        }
    }
}

#[async_trait]
impl Connector for PluginConnector {
    fn batching(&self) -> Batching {
        self.batching
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.call(&Request::Check, "check reply").await
    }

    async fn list_users(&self, cursor: Option<String>) -> Result<UserPage, ConnectorError> {
        self.call(&Request::ListUsers { cursor }, "list_users reply")
            .await
    }

    async fn generate(
        &self,
        kind: CredentialKind,
        count: usize,
    ) -> Result<Vec<Secret>, ConnectorError> {
        let reply: GenerateReply = self
            .call(&Request::Generate { kind, count }, "generate reply")
            .await?;
        Ok(reply.values)
    }

    async fn reset(&self, request: ResetRequest) -> Result<Vec<UserOutcome>, ConnectorError> {
        let request = Request::Reset {
            kind: request.kind,
            items: request.items.into_iter().map(WireItem::from).collect(),
        };
        let reply: ResetReply = self.call(&request, "reset reply").await?;
        Ok(reply.outcomes.into_iter().map(UserOutcome::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::SettingSpec;
    use crate::protocol::CreateRequest;
    use crate::settings::SettingValue;

    #[test]
    fn create_message_reads_back_on_the_plugin_side() {
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
        let bytes = protocol::encode(&ExposedCreate {
            settings: ExposedSettings(&settings),
            context: &context,
        })
        .unwrap();
        let request: CreateRequest = protocol::decode(&bytes, "create").unwrap();
        assert_eq!(request.context.target, "mail");
        assert_eq!(request.context.rate, Some(2.5));
        let back = Settings::from_json(&schema, request.settings).unwrap();
        assert_eq!(back.secret("password").unwrap().expose(), "pw");
        assert_eq!(back.str("url").unwrap(), "https://h");
    }

    #[test]
    fn labels_from_file_names() {
        assert_eq!(
            library_label(Path::new("/x/librekey_oracle_cloud.so")),
            "oracle-cloud"
        );
        assert_eq!(library_label(Path::new("rekey_admanager.dll")), "admanager");
    }

    #[test]
    fn missing_library_is_named() {
        let err = PluginLibrary::load(
            Path::new("/nonexistent/librekey_x.so"),
            LoadOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/librekey_x.so"),
            "{err}"
        );
    }
}
