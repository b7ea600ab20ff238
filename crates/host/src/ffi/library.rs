//! [`PluginLibrary`]: loading a connector library once, checking it, and creating
//! connectors from it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rekey_abi::ffi::{
    ABI_VERSION, ENTRY_SYMBOL, EntryFn, HostApi, OwnedBuf, PluginVTable, entry_symbol, level_to_u8,
};
use rekey_abi::protocol::{self, CreateReply, CreateRequestRef, PluginInfo};
use rekey_api::{ConnectorError, CreateContext, Settings};
use tracing::level_filters::LevelFilter;
use zeroize::Zeroizing;

use super::connector::{InstanceHandle, PluginConnector, PluginInstance};
use super::log::{LogContext, host_log};

/// This rekey's version, for messages about ABI versions.
const REKEY_VERSION: &str = env!("CARGO_PKG_VERSION");

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
        "connector library {} speaks plugin ABI {found}, and this rekey {REKEY_VERSION} speaks plugin ABI {ABI_VERSION}: rebuild the connector against rekey-api {}, or use a rekey that speaks plugin ABI {found}",
        path.display(),
        api_series()
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
    /// The library's function table or self-description is unusable.
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

/// The rekey-api releases that speak this rekey's ABI: rekey-api is released with
/// rekey, so those of this rekey's `major.minor`.
fn api_series() -> String {
    let mut parts = REKEY_VERSION.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => REKEY_VERSION.to_owned(),
    }
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

/// Libraries already loaded, by canonical path: each is loaded (and its entry
/// function run) once per process, and a refusal is remembered too.
static LOADED: Mutex<Vec<(PathBuf, Result<PluginLibrary, LoadError>)>> = Mutex::new(Vec::new());

impl PluginLibrary {
    /// Loads the connector library at `path` (once per process; later calls return
    /// the same library or the same refusal), starts it, and checks its ABI
    /// version, function table and metadata.
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
        let request = protocol::encode(&CreateRequestRef {
            settings,
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
        let handle = InstanceHandle::new(vtable, instance);
        let reply: CreateReply = protocol::decode(&reply, "create reply")?;
        Ok(PluginInstance::connector(
            self.clone(),
            handle,
            reply.batching,
        ))
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
            // Nothing of the library has run beyond its initialisers: dropping it
            // here unloads it.
            return Err(match other_abi(&library) {
                Some(found) => LoadError::AbiMismatch {
                    path: path_buf,
                    found,
                },
                None => LoadError::NoEntry { path: path_buf },
            });
        }
    };
    // From here on the library's own code runs (its entry starts a runtime whose
    // threads execute the library's code), so it must never be unloaded, whatever
    // becomes of it below (plugin-abi.md §3.4): it is leaked before entry is called,
    // and every way out of this function keeps it.
    std::mem::forget(library);
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
    // SAFETY: `entry` is the library's entry symbol, valid for the life of the process
    // (the library is leaked above); `host` is valid for the call and its `log_ctx` is
    // leaked, so it stays valid for the life of the process.
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
        // SAFETY: the symbol is only looked up, never called or dereferenced.
        unsafe { library.get::<*const std::ffi::c_void>(entry_symbol(*v).as_slice()) }.is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn abi_mismatches_say_which_rekey_speaks_which() {
        let err = LoadError::AbiMismatch {
            path: "/p/librekey_x.so".into(),
            found: 2,
        }
        .to_string();
        assert_eq!(
            err,
            format!(
                "connector library /p/librekey_x.so speaks plugin ABI 2, and this rekey {REKEY_VERSION} speaks plugin ABI 1: rebuild the connector against rekey-api {}, or use a rekey that speaks plugin ABI 2",
                api_series()
            )
        );
        assert!(!api_series().is_empty() && api_series().matches('.').count() == 1);
    }
}
