//! `rekey connectors` and `rekey connectors show NAME`.

use rekey_api::Metadata;

use super::{load_options, optional_config, table};
use crate::cli::{Cli, ConnectorsCommand};
use crate::exit::{CommandResult, Exit, Failure};
use crate::plugins::{PluginPath, load_connector};

pub fn run(cli: &Cli, show: Option<&ConnectorsCommand>) -> CommandResult {
    let config = optional_config(cli)?;
    let plugins = PluginPath::new(config.as_ref().map_or(&[][..], |c| &c.plugin_path));
    match show {
        None => list(&plugins),
        Some(ConnectorsCommand::Show { name }) => show_one(&plugins, name),
    }
}

fn list(plugins: &PluginPath) -> CommandResult {
    let mut rows = vec![
        ["NAME", "VERSION", "ABI", "KINDS", "CAPABILITIES", "FILE"]
            .map(String::from)
            .to_vec(),
    ];
    let mut broken = 0;
    for (path, library) in plugins.discover(load_options()) {
        match library {
            Ok(library) => {
                let info = library.info();
                let meta = &info.metadata;
                rows.push(vec![
                    meta.name.clone(),
                    meta.version.clone(),
                    info.abi_version.to_string(),
                    join(meta.kinds.iter().map(|k| k.as_str())),
                    join(meta.capabilities.iter().map(|c| c.as_str())),
                    path.display().to_string(),
                ]);
            }
            Err(error) => {
                broken += 1;
                eprintln!("warning: {error}");
            }
        }
    }
    print!("{}", table(&rows));
    if rows.len() == 1 {
        eprintln!(
            "no connectors found: install connector libraries next to rekey, or name their directory in REKEY_PLUGIN_PATH or [rekey] plugin_path"
        );
    }
    Ok(if broken > 0 {
        Exit::Partial
    } else {
        Exit::Success
    })
}

fn show_one(plugins: &PluginPath, name: &str) -> CommandResult {
    if !rekey_api::is_valid_name(name) {
        return Err(Failure::usage(anyhow::anyhow!(
            "`{name}` is not a connector name (lower-case letters, digits and -)"
        )));
    }
    let library = load_connector(plugins, name, None, load_options()).map_err(Failure::usage)?;
    let meta: &Metadata = &library.info().metadata;
    println!("{} {}: {}", meta.name, meta.version, meta.description);
    println!("file:         {}", library.path().display());
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
            spec.ty.to_string(),
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
