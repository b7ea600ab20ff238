//! Opening a target: its connector loaded (a library) or started (a program), its
//! settings checked against the connector's schema, its policies checked against
//! the vendor's rules, and the connector created with a deadline on every call.
//! Nothing here talks to the vendor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rekey_api::{
    Connector, ConnectorError, CreateContext, ErrorKind, Metadata, SettingValue, Settings,
};

use crate::config::{Config, TargetConfig, connector_values};
use crate::deadline::{DEFAULT_REQUEST_TIMEOUT, call_deadline};
use crate::ffi::LoadOptions;
use crate::plugins::{ConnectorSource, PluginPath, load_connector};
use crate::state::StateDir;

/// What every command that opens targets shares.
pub struct Context {
    /// The config.
    pub config: Config,
    /// Where connectors are looked for.
    pub plugins: PluginPath,
    /// How libraries are started.
    pub load: LoadOptions,
}

impl Context {
    /// The state directory, opened: `[rekey] state_dir`, else
    /// `$XDG_STATE_HOME/rekey`, else `~/.local/state/rekey`.
    pub fn state(&self) -> anyhow::Result<StateDir> {
        match &self.config.state_dir {
            Some(dir) => StateDir::open(dir),
            None => StateDir::open(&default_state_root()?),
        }
    }
}

/// The state directory when the config names none: `$XDG_STATE_HOME/rekey`, else
/// `~/.local/state/rekey`.
pub fn default_state_root() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("rekey"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            anyhow!("cannot find a state directory: set [rekey] state_dir, XDG_STATE_HOME or HOME")
        })?;
    Ok(PathBuf::from(home).join(".local/state/rekey"))
}

/// An opened target.
pub struct Target {
    /// The target's config.
    pub config: TargetConfig,
    /// What the connector says about itself.
    pub metadata: Metadata,
    /// The created connector, each call bounded by a deadline (it keeps its library
    /// loaded, or its program running).
    pub connector: Arc<dyn Connector>,
}

impl Target {
    /// Opens target `name`. Every failure is a config problem (exit 2).
    pub fn open(context: &Context, state: &StateDir, name: &str) -> anyhow::Result<Target> {
        TargetLibrary::load(context, state, name)?.open()
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The connector's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// A target's connector, loaded (a library) or started (a program), with the
/// target's settings resolved: what creates its connectors.
pub struct TargetLibrary {
    /// The target's config.
    pub config: TargetConfig,
    /// The connector library or program.
    pub source: ConnectorSource,
    /// The target's connector settings, secrets resolved, not yet checked.
    pub values: Vec<(String, SettingValue)>,
    state_dir: PathBuf,
}

impl TargetLibrary {
    /// Loads or starts target `name`'s connector and resolves its settings.
    pub fn load(context: &Context, state: &StateDir, name: &str) -> anyhow::Result<TargetLibrary> {
        let config = context.config.target(name)?.clone();
        let source = load_connector(
            &context.plugins,
            &config.connector,
            Some(&config),
            context.load,
        )
        .with_context(|| format!("target `{name}`"))?;
        let metadata = source.metadata();
        let values = connector_values(&context.config, &config, &metadata.settings)
            .with_context(|| format!("target `{name}` ({} connector)", metadata.name))?;
        Ok(TargetLibrary {
            state_dir: state.subdir(&format!("connectors/{name}"))?,
            config,
            source,
            values,
        })
    }

    /// The connector's metadata.
    pub fn metadata(&self) -> &Metadata {
        self.source.metadata()
    }

    /// Checks the settings and the target's policy against the connector, and
    /// creates the connector.
    pub fn open(self) -> anyhow::Result<Target> {
        let name = self.config.name.clone();
        let metadata = self.metadata().clone();
        let settings = Settings::check(&metadata.settings, self.values.clone())
            .with_context(|| format!("target `{name}` ({} connector)", metadata.name))?;
        self.config
            .policy
            .check_vendor_rules(&metadata.password_rules)
            .with_context(|| format!("target `{name}`: [policy]"))?;
        let connector = self.create(settings).map_err(|e| match e.kind {
            ErrorKind::Cancelled => anyhow!("target `{name}`: {}", e.message),
            _ => anyhow!(
                "target `{name}`: the {} connector refused its settings: {}",
                metadata.name,
                e.message
            ),
        })?;
        Ok(Target {
            config: self.config,
            metadata,
            connector,
        })
    }

    /// Creates a connector from checked settings, with a deadline on every call:
    /// three times the request `timeout` the settings give (default 60 s), and a
    /// margin.
    pub fn create(&self, settings: Settings) -> Result<Arc<dyn Connector>, ConnectorError> {
        let request_timeout = settings
            .get_u64("timeout")
            .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_secs);
        self.source.create(
            &settings,
            CreateContext {
                target: self.config.name.clone(),
                state_dir: self.state_dir.clone(),
                rate: self.config.rate,
            },
            call_deadline(request_timeout),
        )
    }
}

/// What a connector's failure to work with its target means, for the operator:
/// `target `mail`: authenticating: authentication refused: <the vendor's words>`,
/// with a hint at what to look at.
pub fn target_error(target: &str, what: &str, error: ConnectorError) -> anyhow::Error {
    let hint = match error.kind {
        ErrorKind::AuthRefused => " (check the target's credentials)",
        ErrorKind::Transient | ErrorKind::RateLimited => {
            " (the target could not be reached: check its url and the network)"
        }
        _ => "",
    };
    anyhow!("target `{target}`: {what}: {error}{hint}")
}
