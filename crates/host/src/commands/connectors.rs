//! `rekey connectors` and `rekey connectors show NAME`: the connectors on the
//! plugin path, libraries and programs, and those the config's targets name by
//! `connector_file` or `connector_command`.

use anyhow::anyhow;
use rekey_api::Metadata;

use super::{load_options, optional_config, table};
use crate::cli::{Cli, ConnectorsCommand};
use crate::config::{Config, TargetConfig};
use crate::exit::{CommandResult, Exit, Failure};
use crate::plugins::{ConnectorSource, PluginPath, load_connector};
use crate::trust::Untrusted;

pub fn run(cli: &Cli, show: Option<&ConnectorsCommand>) -> CommandResult {
    let config = optional_config(cli)?;
    let plugins = PluginPath::new(config.as_ref().map_or(&[][..], |c| &c.plugin_path));
    match show {
        None => list(&plugins, config.as_ref()),
        Some(ConnectorsCommand::Show { name }) => show_one(&plugins, config.as_ref(), name),
    }
}

/// The targets that name their connector's file or command, in name order.
fn named_by_targets(config: Option<&Config>) -> impl Iterator<Item = &TargetConfig> {
    config
        .into_iter()
        .flat_map(|c| c.targets.values())
        .filter(|t| t.connector_file.is_some() || t.connector_command.is_some())
}

/// Where a connector was found, for the operator.
fn found_by(target: Option<&TargetConfig>) -> String {
    match target {
        None => "plugin path".to_owned(),
        Some(t) if t.connector_file.is_some() => format!("target {} (connector_file)", t.name),
        Some(t) => format!("target {} (connector_command)", t.name),
    }
}

fn list(plugins: &PluginPath, config: Option<&Config>) -> CommandResult {
    let mut rows = vec![
        [
            "NAME",
            "VERSION",
            "TYPE",
            "ABI",
            "KINDS",
            "CAPABILITIES",
            "FOUND",
            "FILE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut broken = 0;
    let mut clashes = Vec::new();
    let mut add = |source: anyhow::Result<ConnectorSource>,
                   name: &str,
                   file: &str,
                   target: Option<&TargetConfig>| match source {
        Ok(source) => rows.push(row(&source, target)),
        // Not loaded: shown as skipped, with the reason.
        Err(error) if error.downcast_ref::<Untrusted>().is_some() => {
            broken += 1;
            let reason = error
                .downcast_ref::<Untrusted>()
                .map(|u| u.reason.to_string())
                .unwrap_or_default();
            let mut skipped = vec!["-".to_owned(); 8];
            skipped[0] = name.to_owned();
            skipped[5] = format!("skipped: not trusted: {reason}");
            skipped[6] = found_by(target);
            skipped[7] = file.to_owned();
            rows.push(skipped);
        }
        Err(error) => {
            broken += 1;
            eprintln!("warning: {error:#}");
        }
    };
    for (name, location) in plugins.discover() {
        match location {
            Ok(location) => add(
                ConnectorSource::open(&location, load_options(), None),
                &name,
                &location.file().display().to_string(),
                None,
            ),
            Err(clash) => clashes.push(clash),
        }
    }
    for target in named_by_targets(config) {
        let file = target
            .connector_file
            .as_ref()
            .map(|f| f.display().to_string())
            .or_else(|| {
                target.connector_command.as_ref().map(|c| {
                    std::iter::once(&c.program)
                        .chain(&c.args)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
            })
            .unwrap_or_default();
        add(
            load_connector(plugins, &target.connector, Some(target), load_options())
                .map_err(|e| e.context(format!("target `{}`", target.name))),
            &target.connector,
            &file,
            Some(target),
        );
    }
    print!("{}", table(&rows));
    if rows.len() == 1 && clashes.is_empty() {
        eprintln!(
            "no connectors found: install connector libraries or programs next to rekey, or name their directory in REKEY_PLUGIN_PATH or [rekey] plugin_path"
        );
    }
    if !clashes.is_empty() {
        let messages: Vec<String> = clashes.iter().map(|e| format!("{e:#}")).collect();
        return Err(Failure::usage(anyhow!(messages.join("\n"))));
    }
    Ok(if broken > 0 {
        Exit::Partial
    } else {
        Exit::Success
    })
}

fn row(source: &ConnectorSource, target: Option<&TargetConfig>) -> Vec<String> {
    let meta = source.metadata();
    vec![
        meta.name.clone(),
        meta.version.clone(),
        source.kind().to_owned(),
        source.boundary_version().to_string(),
        join(meta.kinds.iter().map(|k| k.as_str())),
        join(meta.capabilities.iter().map(|c| c.as_str())),
        found_by(target),
        source.describe(),
    ]
}

fn show_one(plugins: &PluginPath, config: Option<&Config>, name: &str) -> CommandResult {
    if !rekey_api::is_valid_name(name) {
        return Err(Failure::usage(anyhow!(
            "`{name}` is not a connector name (lower-case letters, digits and -)"
        )));
    }
    // On the plugin path, else named by a target.
    let target = match plugins.find(name).map_err(Failure::usage)? {
        Some(_) => None,
        None => Some(
            named_by_targets(config)
                .find(|t| t.connector == name)
                .ok_or_else(|| Failure::usage(plugins.not_found(name)))?,
        ),
    };
    let source = load_connector(plugins, name, target, load_options()).map_err(Failure::usage)?;
    let meta: &Metadata = source.metadata();
    println!("{} {}: {}", meta.name, meta.version, meta.description);
    println!("file:         {}", source.describe());
    println!("type:         {}", kind_text(&source));
    println!("found:        {}", found_by(target));
    println!(
        "kinds:        {}",
        join(meta.kinds.iter().map(|k| k.as_str()))
    );
    println!(
        "capabilities: {}",
        join(meta.capabilities.iter().map(|c| c.as_str()))
    );
    println!();
    let mut rows = vec![
        ["SETTING", "TYPE", "REQUIRED", "SECRET", "DEFAULT", "DOC"]
            .map(String::from)
            .to_vec(),
    ];
    for spec in &meta.settings {
        let mut doc = spec.doc.clone();
        if !spec.choices.is_empty() {
            doc.push_str(&format!(" (one of: {})", spec.choices.join(", ")));
        }
        if let Some(range) = spec.range_text() {
            doc.push_str(&format!(" ({range})"));
        }
        rows.push(vec![
            spec.name.clone(),
            spec.type_text(),
            yes_no(spec.required),
            yes_no(spec.secret),
            spec.default
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
            doc,
        ]);
    }
    print!("{}", table(&rows));
    Ok(Exit::Success)
}

/// `library (plugin ABI 1)`, `program (program protocol 1)`.
fn kind_text(source: &ConnectorSource) -> String {
    let boundary = match source {
        ConnectorSource::Library(_) => "plugin ABI",
        ConnectorSource::Program(_) => "program protocol",
    };
    format!(
        "{} ({boundary} {})",
        source.kind(),
        source.boundary_version()
    )
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}
