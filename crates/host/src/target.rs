//! Opening a target: its connector library loaded, its settings checked against the
//! connector's schema, its policies checked against the vendor's rules, and the
//! connector created. Nothing here talks to the vendor.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use rekey_api::{Connector, CreateContext, Metadata};

use crate::config::{Config, TargetConfig, connector_settings};
use crate::ffi::{LoadOptions, PluginLibrary};
use crate::plugins::{PluginPath, load_connector};

/// What every command that opens targets shares.
pub struct Context {
    /// The config.
    pub config: Config,
    /// Where connector libraries are looked for.
    pub plugins: PluginPath,
    /// How libraries are started.
    pub load: LoadOptions,
}

impl Context {
    /// The state directory: `[rekey] state_dir`, else `$XDG_STATE_HOME/rekey`, else
    /// `~/.local/state/rekey`.
    pub fn state_root(&self) -> anyhow::Result<PathBuf> {
        match &self.config.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => default_state_root(),
        }
    }
}

/// The state directory when the config names none: `$XDG_STATE_HOME/rekey`, else
/// `~/.local/state/rekey`.
pub fn default_state_root() -> anyhow::Result<PathBuf> {
    {
        if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir).join("rekey"));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "cannot find a state directory: set [rekey] state_dir, XDG_STATE_HOME or HOME"
                )
            })?;
        Ok(PathBuf::from(home).join(".local/state/rekey"))
    }
}

/// An opened target.
pub struct Target {
    /// The target's config.
    pub config: TargetConfig,
    /// The connector library.
    pub library: PluginLibrary,
    /// The created connector.
    pub connector: Arc<dyn Connector>,
}

impl Target {
    /// Opens target `name`. Every failure is a config problem (exit 2).
    pub fn open(context: &Context, name: &str) -> anyhow::Result<Target> {
        let config = context.config.target(name)?.clone();
        let library = load_connector(
            &context.plugins,
            &config.connector,
            config.connector_file.as_deref(),
            context.load,
        )
        .with_context(|| format!("target `{name}`"))?;
        let metadata = &library.info().metadata;
        let settings = connector_settings(&context.config, &config, &metadata.settings)
            .with_context(|| format!("target `{name}` ({} connector)", metadata.name))?;
        config
            .policy
            .check_vendor_rules(&metadata.password_rules)
            .with_context(|| format!("target `{name}`: [policy]"))?;
        let state_dir = context.state_root()?.join("connectors").join(name);
        ensure_private_dir(&state_dir)?;
        let connector = library
            .create(
                &settings,
                CreateContext {
                    target: name.to_owned(),
                    state_dir,
                    rate: config.rate,
                },
            )
            .map_err(|e| {
                anyhow!(
                    "target `{name}`: the {} connector refused its settings: {}",
                    metadata.name,
                    e.message
                )
            })?;
        Ok(Target {
            config,
            library,
            connector: Arc::new(connector),
        })
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The connector's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.library.info().metadata
    }

    /// Compares user ids the way the connector does (case-insensitively for e-mail
    /// addresses and the like).
    pub fn id_key(&self, id: &str) -> String {
        if self.metadata().case_insensitive_ids {
            id.to_lowercase()
        } else {
            id.to_owned()
        }
    }
}

/// Creates `dir` (and its parents) readable by its owner only.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make state directory {} private", dir.display()))?;
    }
    Ok(())
}
