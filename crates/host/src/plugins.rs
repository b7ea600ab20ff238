//! Finding connectors, and the one place where a connector file is accepted before
//! it is loaded or run.
//!
//! Connector `NAME` is either a library, the file `rekey_NAME` (with `-` written
//! `_`) with the platform's library prefix and suffix (`librekey_oracle_cloud.so`
//! on Linux), or a program, the executable `rekey-connector-NAME` (with the
//! platform's executable suffix). Both are looked for in `$REKEY_PLUGIN_PATH`, then
//! the directory of the `rekey` executable, then the config's `plugin_path`; a
//! library and a program of the same name anywhere on the path is an error. A
//! target may instead name its connector's library (`connector_file`) or program
//! (`connector_command`).
//!
//! Whatever way a connector is found, [`ConnectorSource::open`] hands its file to
//! [`accept`] before loading or running it, and only then to the library loader
//! ([`ffi`](crate::ffi)) or the program transport ([`program`](crate::program)).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rekey_api::{Connector, ConnectorError, CreateContext, Metadata, Settings};

use crate::config::TargetConfig;
use crate::deadline::WithDeadline;
use crate::ffi::{LoadOptions, PluginLibrary};
use crate::program::{Program, ProgramSpec};
use crate::trust;

/// The platform's prefix and suffix of shared libraries.
const PREFIX: &str = std::env::consts::DLL_PREFIX;
const SUFFIX: &str = std::env::consts::DLL_SUFFIX;

/// The start of a connector program's file name.
pub const PROGRAM_PREFIX: &str = "rekey-connector-";

/// Where a connector is, before it is loaded or started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A library file.
    Library(PathBuf),
    /// A program, its arguments, and the directory it runs in (rekey's own when
    /// `None`).
    Program {
        /// The program file.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// The directory it runs in.
        dir: Option<PathBuf>,
    },
}

impl Location {
    /// The file that is loaded or run.
    pub fn file(&self) -> &Path {
        match self {
            Location::Library(path) => path,
            Location::Program { program, .. } => program,
        }
    }
}

/// The directories searched for connectors, in order.
#[derive(Debug, Clone)]
pub struct PluginPath {
    dirs: Vec<PathBuf>,
}

impl PluginPath {
    /// `$REKEY_PLUGIN_PATH`, the executable's directory, then `configured`.
    pub fn new(configured: &[PathBuf]) -> Self {
        let mut dirs: Vec<PathBuf> = std::env::var_os("REKEY_PLUGIN_PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
        {
            dirs.push(dir);
        }
        dirs.extend(configured.iter().cloned());
        PluginPath { dirs }
    }

    /// The file name connector `name`'s library has on this platform.
    pub fn file_name(name: &str) -> String {
        format!("{PREFIX}rekey_{}{SUFFIX}", name.replace('-', "_"))
    }

    /// The file name connector `name`'s program has on this platform.
    pub fn program_file_name(name: &str) -> String {
        format!("{PROGRAM_PREFIX}{name}{}", std::env::consts::EXE_SUFFIX)
    }

    /// Connector `name` on the path: the first library and the first program of
    /// that name, `None` when there is neither, and an error naming both when there
    /// are both.
    pub fn find(&self, name: &str) -> anyhow::Result<Option<Location>> {
        let first = |file: String| {
            self.dirs
                .iter()
                .map(|d| d.join(&file))
                .find(|p| p.is_file())
        };
        let library = first(Self::file_name(name));
        let program = first(Self::program_file_name(name));
        located(name, library, program)
    }

    /// The error for a connector that is nowhere on the path.
    pub fn not_found(&self, name: &str) -> anyhow::Error {
        let searched: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        anyhow!(
            "connector `{name}` not found: no {} or {} in {}; install the connector there, add its directory to REKEY_PLUGIN_PATH or [rekey] plugin_path, or name it with connector_file or connector_command",
            Self::file_name(name),
            Self::program_file_name(name),
            searched.join(", ")
        )
    }

    /// Every connector on the path by name: the first library and the first
    /// program of each name, or the error of a name that has both.
    pub fn discover(&self) -> Vec<(String, anyhow::Result<Location>)> {
        let mut found: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            names.sort();
            for file in names {
                let path = dir.join(&file);
                if let Some(name) = library_name(&file) {
                    found.entry(name).or_default().0.get_or_insert(path);
                } else if let Some(name) = program_name(&file)
                    && path.is_file()
                {
                    found.entry(name).or_default().1.get_or_insert(path);
                }
            }
        }
        found
            .into_iter()
            .filter_map(|(name, (library, program))| {
                let location = located(&name, library, program).transpose()?;
                Some((name, location))
            })
            .collect()
    }
}

/// `librekey_oracle_cloud.so` → `oracle-cloud`.
fn library_name(file: &str) -> Option<String> {
    let stem = file.strip_prefix(PREFIX)?.strip_prefix("rekey_")?;
    Some(stem.strip_suffix(SUFFIX)?.replace('_', "-"))
}

/// `rekey-connector-acme-py` → `acme-py`, for valid connector names only (not a
/// backup copy such as `rekey-connector-acme~`).
fn program_name(file: &str) -> Option<String> {
    let name = file.strip_prefix(PROGRAM_PREFIX)?;
    let name = name
        .strip_suffix(std::env::consts::EXE_SUFFIX)
        .filter(|_| !std::env::consts::EXE_SUFFIX.is_empty())
        .unwrap_or(name);
    rekey_api::is_valid_name(name).then(|| name.to_owned())
}

fn located(
    name: &str,
    library: Option<PathBuf>,
    program: Option<PathBuf>,
) -> anyhow::Result<Option<Location>> {
    match (library, program) {
        (Some(library), Some(program)) => bail!(
            "connector `{name}` is both a library, {}, and a program, {}, on the plugin path: remove one of them",
            library.display(),
            program.display()
        ),
        (Some(library), None) => Ok(Some(Location::Library(library))),
        (None, Some(program)) => Ok(Some(Location::Program {
            program,
            args: Vec::new(),
            dir: None,
        })),
        (None, None) => Ok(None),
    }
}

/// Where a target's connector is: the library its `connector_file` names, the
/// program its `connector_command` names, or connector `connector` on the path.
pub fn target_location(plugins: &PluginPath, target: &TargetConfig) -> anyhow::Result<Location> {
    if let Some(file) = &target.connector_file {
        return Ok(Location::Library(file.clone()));
    }
    if let Some(command) = &target.connector_command {
        return Ok(Location::Program {
            program: resolve_program(&command.program, &command.dir)?,
            args: command.args.clone(),
            dir: Some(command.dir.clone()),
        });
    }
    plugins
        .find(&target.connector)?
        .ok_or_else(|| plugins.not_found(&target.connector))
}

/// The file of a `connector_command`'s program: a path is taken relative to the
/// config's directory, a bare name is looked for in `$PATH`.
fn resolve_program(program: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    if Path::new(program).components().count() > 1 || Path::new(program).is_absolute() {
        // `./acme.py` as `/etc/rekey/acme.py`: messages name the file plainly.
        return Ok(dir.join(program).components().collect());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "connector_command: program `{program}` not found in PATH; give its path instead"
            )
        })
}

/// Accepts a connector before it is loaded or run, and says what to load or run.
/// Every connector file, library or program, found on the plugin path or named by
/// a target, passes here and only here ([`ConnectorSource::open`] calls it):
///
/// - the file must exist and be a regular file;
/// - it must be trusted ([`trust::check_file`]): nobody but root and the user
///   running rekey can change it or a directory above it; so must every argument
///   of a program that names a file (an interpreter's script);
/// - when the target pins it (`connector_sha256`), its SHA-256 digest must match.
///
/// The location returned names the resolved file, the one that was checked and
/// hashed. A refusal on trust is a [`trust::Untrusted`] inside the error.
pub fn accept(location: &Location, pin: Option<&str>) -> anyhow::Result<Location> {
    let (file, what) = match location {
        Location::Library(path) => (path, "connector library"),
        Location::Program { program, .. } => (program, "connector program"),
    };
    let metadata = std::fs::metadata(file).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => anyhow!("connector file {} does not exist", file.display()),
        _ => anyhow!("cannot read connector file {}: {error}", file.display()),
    })?;
    if !metadata.is_file() {
        bail!("connector file {} is not a regular file", file.display());
    }
    let trusted = trust::check_file(file, what)?;
    if let Some(pin) = pin {
        let digest = sha256(trusted.path())
            .with_context(|| format!("cannot read connector file {}", file.display()))?;
        if digest != pin {
            bail!(
                "{what} {} has SHA-256 {digest}, not the {pin} its target pins with connector_sha256: it was changed or replaced; restore the file, or pin the new one if you trust it",
                file.display()
            );
        }
    }
    Ok(match location {
        Location::Library(_) => Location::Library(trusted.path().to_owned()),
        Location::Program { args, dir, .. } => {
            for arg in args {
                let named = dir.as_deref().unwrap_or(Path::new(".")).join(arg);
                if named.is_file() {
                    trust::check_file(&named, "connector program's file")?;
                }
            }
            Location::Program {
                program: trusted.path().to_owned(),
                args: args.clone(),
                dir: dir.clone(),
            }
        }
    })
}

/// The SHA-256 digest of a file, in lower-case hex.
fn sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// A connector loaded (a library) or started (a program): what describes it and
/// creates its connectors. The rest of rekey cannot tell the two apart.
pub enum ConnectorSource {
    /// A connector library.
    Library(PluginLibrary),
    /// A connector program, running.
    Program(Box<Program>),
}

impl ConnectorSource {
    /// Accepts the file at `location`, then loads the library or starts the
    /// program (for `target`, whose `connector_env` it gets).
    pub fn open(
        location: &Location,
        options: LoadOptions,
        target: Option<&TargetConfig>,
    ) -> anyhow::Result<ConnectorSource> {
        let location = accept(location, target.and_then(|t| t.connector_sha256.as_deref()))?;
        Ok(match &location {
            Location::Library(path) => {
                ConnectorSource::Library(PluginLibrary::load(path, options)?)
            }
            Location::Program { program, args, dir } => {
                ConnectorSource::Program(Box::new(Program::start(ProgramSpec {
                    program: program.clone(),
                    args: args.clone(),
                    dir: dir.clone(),
                    env: target.map(|t| t.connector_env.clone()).unwrap_or_default(),
                    target: target.map(|t| t.name.clone()),
                })?))
            }
        })
    }

    /// The connector's metadata.
    pub fn metadata(&self) -> &Metadata {
        match self {
            ConnectorSource::Library(library) => &library.info().metadata,
            ConnectorSource::Program(program) => &program.info().metadata,
        }
    }

    /// `library` or `program`.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorSource::Library(_) => "library",
            ConnectorSource::Program(_) => "program",
        }
    }

    /// Its file, and a program's arguments, for the operator.
    pub fn describe(&self) -> String {
        match self {
            ConnectorSource::Library(library) => library.path().display().to_string(),
            ConnectorSource::Program(program) => program.spec().command_line(),
        }
    }

    /// The version of the boundary it speaks: the plugin ABI of a library, the
    /// program protocol of a program.
    pub fn boundary_version(&self) -> u32 {
        match self {
            ConnectorSource::Library(library) => library.info().abi_version,
            ConnectorSource::Program(program) => program.info().protocol,
        }
    }

    /// Creates a connector for one target from its checked settings, each call
    /// ending by `deadline`.
    pub fn create(
        &self,
        settings: &Settings,
        context: CreateContext,
        deadline: Duration,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(match self {
            ConnectorSource::Library(library) => Arc::new(WithDeadline::new(
                library.create(settings, context)?,
                deadline,
            )),
            // A program's calls keep their deadline themselves: past it, the
            // program is asked to cancel, and one that does not answer is stopped.
            ConnectorSource::Program(program) => {
                Arc::new(program.create(settings, context, deadline)?)
            }
        })
    }
}

/// Loads or starts connector `name`: the one `target` names by `connector_file`
/// or `connector_command`, else the one on the plugin path; and checks that it
/// declares that name.
pub fn load_connector(
    plugins: &PluginPath,
    name: &str,
    target: Option<&TargetConfig>,
    options: LoadOptions,
) -> anyhow::Result<ConnectorSource> {
    let location = match target {
        Some(target) => target_location(plugins, target)?,
        None => plugins.find(name)?.ok_or_else(|| plugins.not_found(name))?,
    };
    let source = ConnectorSource::open(&location, options, target)?;
    let declared = &source.metadata().name;
    if declared != name {
        bail!(
            "connector {} {} declares itself as `{declared}`, not `{name}`: rename the file, or fix the target's connector",
            source.kind(),
            source.describe()
        );
    }
    if let Some(target) = target
        && !target.connector_env.is_empty()
        && matches!(source, ConnectorSource::Library(_))
    {
        return Err(anyhow!(
            "connector_env passes variables to a connector program, and connector `{name}` is a library ({}): remove connector_env",
            source.describe()
        ))
        .context(format!("target `{}`", target.name));
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(dirs: &[&Path]) -> PluginPath {
        PluginPath {
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        }
    }

    #[test]
    fn file_names_follow_the_contract() {
        if cfg!(target_os = "linux") {
            assert_eq!(
                PluginPath::file_name("oracle-cloud"),
                "librekey_oracle_cloud.so"
            );
            assert_eq!(
                PluginPath::file_name("smartermail"),
                "librekey_smartermail.so"
            );
            assert_eq!(
                PluginPath::program_file_name("acme-py"),
                "rekey-connector-acme-py"
            );
            assert_eq!(
                library_name("librekey_oracle_cloud.so").as_deref(),
                Some("oracle-cloud")
            );
        }
        assert_eq!(
            program_name(&PluginPath::program_file_name("acme-py")).as_deref(),
            Some("acme-py")
        );
        assert_eq!(program_name("rekey-connector-acme~"), None);
        assert_eq!(program_name("rekey-connector-"), None);
    }

    #[test]
    fn missing_connectors_name_the_places_searched() {
        let path = dirs(&[Path::new("/nonexistent/a"), Path::new("/nonexistent/b")]);
        assert!(path.find("smartermail").unwrap().is_none());
        let err = path.not_found("smartermail").to_string();
        assert!(err.contains("/nonexistent/a, /nonexistent/b"), "{err}");
        assert!(err.contains(&PluginPath::file_name("smartermail")), "{err}");
        assert!(err.contains("rekey-connector-smartermail"), "{err}");
    }

    #[test]
    fn a_library_and_a_program_of_one_name_are_refused_naming_both() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let library = a.path().join(PluginPath::file_name("acme"));
        let program = b.path().join(PluginPath::program_file_name("acme"));
        std::fs::write(&library, "").unwrap();
        std::fs::write(&program, "").unwrap();
        std::fs::write(b.path().join(PluginPath::program_file_name("solo")), "").unwrap();
        let path = dirs(&[a.path(), b.path()]);
        let err = path.find("acme").unwrap_err().to_string();
        assert!(
            err.contains(&library.display().to_string())
                && err.contains(&program.display().to_string()),
            "{err}"
        );
        let found = path.discover();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "acme");
        assert!(found[0].1.is_err());
        assert_eq!(found[1].0, "solo");
        assert!(matches!(found[1].1, Ok(Location::Program { .. })));
    }

    #[test]
    fn commands_resolve_paths_against_the_config_and_names_in_path() {
        let dir = Path::new("/etc/rekey");
        assert_eq!(
            resolve_program("bin/acme.py", dir).unwrap(),
            Path::new("/etc/rekey/bin/acme.py")
        );
        assert_eq!(
            resolve_program("./acme.py", dir).unwrap(),
            Path::new("/etc/rekey/acme.py")
        );
        assert_eq!(
            resolve_program("/opt/acme", dir).unwrap(),
            Path::new("/opt/acme")
        );
        assert!(resolve_program("sh", dir).unwrap().is_absolute());
        let err = resolve_program("no-such-program-anywhere", dir).unwrap_err();
        assert!(err.to_string().contains("not found in PATH"), "{err}");
    }

    #[test]
    fn only_regular_trusted_files_are_accepted_and_pins_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let at = |path: &Path| Location::Library(path.to_owned());
        let err = accept(&at(dir.path()), None).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = accept(&at(&dir.path().join("x.so")), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.so does not exist"), "{err}");

        let library = dir.path().join("librekey_x.so");
        std::fs::write(&library, "not really a library").unwrap();
        let digest = sha256(&library).unwrap();
        assert!(accept(&at(&library), Some(&digest)).is_ok());
        let err = accept(&at(&library), Some(&"0".repeat(64)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("connector_sha256"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&library, std::fs::Permissions::from_mode(0o666)).unwrap();
            let err = accept(&at(&library), None).unwrap_err();
            assert!(err.downcast_ref::<trust::Untrusted>().is_some(), "{err}");
            assert!(
                err.to_string().contains("written by group or others"),
                "{err}"
            );
        }
    }
}
