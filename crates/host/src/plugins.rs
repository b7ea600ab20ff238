//! Finding connector libraries: the plugin path and the file naming rule.
//!
//! Connector `NAME` is the file `rekey_NAME` (with `-` written `_`) with the
//! platform's library prefix and suffix (`librekey_oracle_cloud.so` on Linux),
//! looked for in `$REKEY_PLUGIN_PATH`, then the directory of the `rekey`
//! executable, then the config's `plugin_path`.

use std::path::{Path, PathBuf};

use crate::ffi::{LoadError, LoadOptions, PluginLibrary};
use anyhow::bail;

/// The platform's prefix and suffix of shared libraries.
const PREFIX: &str = std::env::consts::DLL_PREFIX;
const SUFFIX: &str = std::env::consts::DLL_SUFFIX;

/// The directories searched for connector libraries, in order.
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

    /// The file name connector `name` has on this platform.
    pub fn file_name(name: &str) -> String {
        format!("{PREFIX}rekey_{}{SUFFIX}", name.replace('-', "_"))
    }

    /// The library of connector `name`: the first match on the path.
    pub fn find(&self, name: &str) -> anyhow::Result<PathBuf> {
        let file = Self::file_name(name);
        if let Some(path) = self
            .dirs
            .iter()
            .map(|d| d.join(&file))
            .find(|p| p.is_file())
        {
            return Ok(path);
        }
        let searched: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        bail!(
            "connector `{name}` not found: no {file} in {}; install the connector there, add its directory to REKEY_PLUGIN_PATH or [rekey] plugin_path, or name the file with connector_file",
            searched.join(", ")
        )
    }

    /// Every connector library on the path, first match per file name, loaded.
    pub fn discover(
        &self,
        options: LoadOptions,
    ) -> Vec<(PathBuf, Result<PluginLibrary, LoadError>)> {
        let mut seen: Vec<String> = Vec::new();
        let mut found = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&format!("{PREFIX}rekey_")) && n.ends_with(SUFFIX))
                .collect();
            names.sort();
            for name in names {
                if seen.contains(&name) {
                    continue;
                }
                let path = dir.join(&name);
                found.push((path.clone(), PluginLibrary::load(&path, options)));
                seen.push(name);
            }
        }
        found
    }
}

/// Loads the library for a connector name (or an explicit file) and checks that it
/// declares that name.
pub fn load_connector(
    path_list: &PluginPath,
    name: &str,
    file: Option<&Path>,
    options: LoadOptions,
) -> anyhow::Result<PluginLibrary> {
    let path = match file {
        Some(file) => file.to_owned(),
        None => path_list.find(name)?,
    };
    let library = PluginLibrary::load(&path, options)?;
    let declared = &library.info().metadata.name;
    if declared != name {
        bail!(
            "connector library {} declares itself as `{declared}`, not `{name}`: rename the file, or fix the target's connector",
            path.display()
        );
    }
    Ok(library)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn missing_connectors_name_the_places_searched() {
        let path = PluginPath {
            dirs: vec![
                PathBuf::from("/nonexistent/a"),
                PathBuf::from("/nonexistent/b"),
            ],
        };
        let err = path.find("smartermail").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/a, /nonexistent/b"), "{err}");
        assert!(err.contains(&PluginPath::file_name("smartermail")), "{err}");
    }
}
