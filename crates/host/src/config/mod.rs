//! The config file: where it is, what it holds, and what is wrong with it.
//!
//! ```toml
//! [rekey]
//! plugin_path = ["/opt/rekey/connectors"]
//! state_dir = "/var/lib/rekey"
//!
//! [targets.mail]
//! connector = "smartermail"
//! concurrency = 8                        # or "auto"
//! max_concurrency = 64                   # the ceiling for "auto"
//! rate = 20
//! exclude = ["admin@example.com"]
//! url = "https://mail.example.com"       # the rest is the connector's own
//! password = { env = "SM_ADMIN_PASSWORD" }
//!
//! [targets.mail.passcode_policy]        # generator policy for passcodes
//! length = 8
//!
//! [targets.mail.policy]                 # generator policy for passwords and sip
//! length = 16
//! ```

mod secret_ref;
mod settings;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use rekey_policy::{PasscodePolicy, PasswordPolicy};
use serde::Deserialize;

use crate::engine::Concurrency;
use crate::results::Recipients;
use crate::trust;

pub use secret_ref::{SECRET_FILE_LIMIT, read_secret_file};
pub use settings::{ConnectorSettings, connector_settings, connector_values};

/// The largest config file rekey reads: far more than any real config needs.
pub const CONFIG_FILE_LIMIT: u64 = 1024 * 1024;

/// Keys of a target table that belong to the host, not the connector.
const HOST_KEYS: &[&str] = &[
    "connector",
    "connector_file",
    "connector_command",
    "connector_env",
    "connector_sha256",
    "concurrency",
    "max_concurrency",
    "rate",
    "exclude",
    "policy",
    "passcode_policy",
    "retry_budget",
];

/// A loaded, checked config file.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// Whether only its owner can read it (literal secrets are allowed then).
    pub private: bool,
    /// `[rekey] plugin_path`, resolved against the config's directory.
    pub plugin_path: Vec<PathBuf>,
    /// `[rekey] state_dir`, resolved against the config's directory.
    pub state_dir: Option<PathBuf>,
    /// The targets, by name.
    pub targets: BTreeMap<String, TargetConfig>,
    /// `[rekey] recipients`: the default age recipients of results files.
    pub recipients: Recipients,
}

/// One `[targets.NAME]` table.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// The table's name.
    pub name: String,
    /// The connector's name.
    pub connector: String,
    /// A library file to load instead of searching the plugin path.
    pub connector_file: Option<PathBuf>,
    /// A program to run instead of searching the plugin path.
    pub connector_command: Option<ConnectorCommand>,
    /// The SHA-256 digest (lower-case hex) the connector's file must have.
    pub connector_sha256: Option<String>,
    /// Variables of rekey's environment passed on to a connector program.
    pub connector_env: Vec<String>,
    /// Parallel requests: a number, or `auto`.
    pub concurrency: Option<Concurrency>,
    /// The most parallel requests `auto` goes to.
    pub max_concurrency: Option<u32>,
    /// Requests a second.
    pub rate: Option<f64>,
    /// Users never to touch.
    pub exclude: Vec<String>,
    /// Generator policy for passwords and SIP passwords.
    pub policy: PasswordPolicy,
    /// Generator policy for passcodes.
    pub passcode_policy: PasscodePolicy,
    /// How long a batch may keep retrying passing failures (seconds).
    pub retry_budget: Option<u64>,
    /// Everything else: the connector's settings, checked against its schema when
    /// the target is opened (a literal secret among them never shows in `Debug`).
    pub settings: ConnectorSettings,
}

/// A target's `connector_command`: a connector program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorCommand {
    /// The program as written: a path (relative to the config's directory) or a
    /// name looked for in `$PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The config's directory, where the program runs (so that relative paths in
    /// its arguments mean what they mean in the config).
    pub dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RekeySection {
    #[serde(default)]
    plugin_path: Vec<PathBuf>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    recipients: Vec<String>,
}

impl Config {
    /// The config file to use: `--config`, else `$REKEY_CONFIG`, else `./rekey.toml`.
    pub fn locate(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
        if let Some(path) = flag {
            return Ok(path.to_owned());
        }
        if let Some(path) = std::env::var_os("REKEY_CONFIG").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let local = PathBuf::from("rekey.toml");
        if local.is_file() {
            return Ok(local);
        }
        bail!(
            "no config file: give --config FILE, set REKEY_CONFIG, or create ./rekey.toml (see config/ for examples)"
        )
    }

    /// Reads and checks the config at `path`, which must be trusted (see
    /// [`trust`]): whoever can change it decides what rekey runs.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = trust::read_trusted(path, "config file", CONFIG_FILE_LIMIT)?;
        let private = is_private(path)?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| syntax_error(path, &text, &e))?;
        // Paths in the config are relative to its directory, made absolute so that
        // every message names a file unambiguously.
        let dir = std::path::absolute(
            path.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .with_context(|| format!("cannot resolve the directory of {}", path.display()))?;
        let mut rekey = RekeySection::default();
        let mut targets = BTreeMap::new();
        for (key, value) in table {
            match key.as_str() {
                "rekey" => {
                    rekey = value.try_into().map_err(|e: toml::de::Error| {
                        anyhow!("{}: [rekey]: {}", path.display(), e.message())
                    })?;
                }
                "targets" => {
                    let toml::Value::Table(tables) = value else {
                        bail!(
                            "{}: `targets` must be tables: [targets.NAME]",
                            path.display()
                        );
                    };
                    for (name, value) in tables {
                        let target = TargetConfig::parse(&name, value, &dir)
                            .with_context(|| format!("{}: target `{name}`", path.display()))?;
                        targets.insert(name, target);
                    }
                }
                other => bail!(
                    "{}: unknown section `{other}`: the config has [rekey] and [targets.NAME] tables",
                    path.display()
                ),
            }
        }
        let recipients = Recipients::parse(
            &rekey.recipients,
            &format!("{}: [rekey] recipients", path.display()),
        )?;
        Ok(Config {
            path: path.to_owned(),
            private,
            plugin_path: rekey.plugin_path.into_iter().map(|p| dir.join(p)).collect(),
            state_dir: rekey.state_dir.map(|p| dir.join(p)),
            targets,
            recipients,
        })
    }

    /// The target named `name`.
    pub fn target(&self, name: &str) -> anyhow::Result<&TargetConfig> {
        self.targets.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.targets.keys().map(String::as_str).collect();
            if known.is_empty() {
                anyhow!(
                    "no target `{name}`: {} defines no targets",
                    self.path.display()
                )
            } else {
                anyhow!(
                    "no target `{name}` in {}: its targets are {}",
                    self.path.display(),
                    known.join(", ")
                )
            }
        })
    }

    /// The directory relative paths in the config are resolved against.
    pub fn dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_owned).unwrap_or_default()
    }
}

impl TargetConfig {
    fn parse(name: &str, value: toml::Value, dir: &Path) -> anyhow::Result<TargetConfig> {
        let toml::Value::Table(mut table) = value else {
            bail!("must be a table");
        };
        let connector = match table.remove("connector") {
            Some(toml::Value::String(connector)) => connector,
            Some(_) => bail!("`connector` must be a string, the connector's name"),
            None => bail!(
                "`connector` is missing: name the connector, e.g. connector = \"smartermail\""
            ),
        };
        if !rekey_api::is_valid_name(&connector) {
            bail!(
                "`connector = \"{connector}\"` is not a connector name (lower-case letters, digits and -)"
            );
        }
        let connector_file = match table.remove("connector_file") {
            Some(toml::Value::String(file)) => Some(dir.join(file)),
            Some(_) => bail!("`connector_file` must be a string, the library's path"),
            None => None,
        };
        let connector_sha256 = match table.remove("connector_sha256") {
            Some(toml::Value::String(hex))
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Some(hex.to_ascii_lowercase())
            }
            Some(_) => bail!(
                "`connector_sha256` must be the 64 hex digits of the connector file's SHA-256 digest (sha256sum FILE)"
            ),
            None => None,
        };
        let connector_command = match table.remove("connector_command") {
            Some(value) => Some(connector_command(value, dir)?),
            None => None,
        };
        if connector_file.is_some() && connector_command.is_some() {
            bail!(
                "`connector_file` names a library and `connector_command` a program: give one of them"
            );
        }
        let connector_env = match table.remove("connector_env") {
            Some(value) => connector_env(value)?,
            None => Vec::new(),
        };
        let concurrency = match table.remove("concurrency") {
            Some(toml::Value::Integer(n)) if (1..=1024).contains(&n) => {
                Some(Concurrency::Fixed(n as u32))
            }
            Some(toml::Value::String(s)) if s == "auto" => Some(Concurrency::Auto),
            Some(_) => bail!("`concurrency` must be a whole number from 1 to 1024, or \"auto\""),
            None => None,
        };
        let max_concurrency = match table.remove("max_concurrency") {
            Some(toml::Value::Integer(n)) if (1..=1024).contains(&n) => Some(n as u32),
            Some(_) => bail!("`max_concurrency` must be a whole number from 1 to 1024"),
            None => None,
        };
        let rate = match table.remove("rate") {
            Some(toml::Value::Integer(n)) if n > 0 => Some(n as f64),
            Some(toml::Value::Float(f)) if f > 0.0 && f.is_finite() => Some(f),
            Some(_) => bail!("`rate` must be a positive number (requests a second)"),
            None => None,
        };
        let exclude = match table.remove("exclude") {
            Some(value) => value
                .try_into::<Vec<String>>()
                .map_err(|_| anyhow!("`exclude` must be a list of user ids"))?,
            None => Vec::new(),
        };
        let policy: PasswordPolicy = match table.remove("policy") {
            Some(value) => value
                .try_into()
                .map_err(|e: toml::de::Error| anyhow!("[policy]: {}", e.message()))?,
            None => PasswordPolicy::default(),
        };
        policy.generator().map_err(|e| anyhow!("[policy]: {e}"))?;
        let passcode_policy: PasscodePolicy = match table.remove("passcode_policy") {
            Some(value) => value
                .try_into()
                .map_err(|e: toml::de::Error| anyhow!("[passcode_policy]: {}", e.message()))?,
            None => PasscodePolicy::default(),
        };
        passcode_policy
            .generator()
            .map_err(|e| anyhow!("[passcode_policy]: {e}"))?;
        let retry_budget = match table.remove("retry_budget") {
            Some(toml::Value::Integer(n)) if n > 0 => Some(n as u64),
            Some(_) => bail!("`retry_budget` must be a positive whole number of seconds"),
            None => None,
        };
        debug_assert!(HOST_KEYS.iter().all(|k| !table.contains_key(*k)));
        Ok(TargetConfig {
            name: name.to_owned(),
            connector,
            connector_file,
            connector_command,
            connector_sha256,
            connector_env,
            concurrency,
            max_concurrency,
            rate,
            exclude,
            policy,
            passcode_policy,
            retry_budget,
            settings: ConnectorSettings::new(table),
        })
    }
}

/// `connector_command = ["prog", "arg", ...]`.
fn connector_command(value: toml::Value, dir: &Path) -> anyhow::Result<ConnectorCommand> {
    let mut words: Vec<String> = value.try_into().map_err(|_| {
        anyhow!("`connector_command` must be a list of strings: the program, then its arguments")
    })?;
    if words.first().is_none_or(|p| p.is_empty()) {
        bail!(
            "`connector_command` must name the program first, e.g. [\"/opt/rekey/acme-connector\"]"
        );
    }
    let program = words.remove(0);
    Ok(ConnectorCommand {
        program,
        args: words,
        dir: dir.to_owned(),
    })
}

/// `connector_env = ["VAR", ...]`: names of environment variables.
fn connector_env(value: toml::Value) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = value
        .try_into()
        .map_err(|_| anyhow!("`connector_env` must be a list of environment variable names"))?;
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.contains(['=', '\0']))
    {
        bail!("`connector_env`: `{bad}` is not an environment variable name");
    }
    Ok(names)
}

/// Whether only the owner can read the file.
#[cfg(unix)]
fn is_private(path: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?
        .permissions()
        .mode();
    Ok(mode & 0o044 == 0)
}

/// Whether only the owner can read the file (not knowable here: assume not).
#[cfg(not(unix))]
fn is_private(_path: &Path) -> anyhow::Result<bool> {
    Ok(false)
}

/// A TOML syntax error with its line and column, but without the line's text,
/// which might hold a secret.
fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> anyhow::Error {
    let position = error.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(" at line {line}, column {column}")
    });
    anyhow!(
        "{} is not valid TOML{}: {}",
        path.display(),
        position.unwrap_or_default(),
        error.message()
    )
}

#[cfg(test)]
mod tests;
