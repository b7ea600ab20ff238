//! The connector template (`templates/connector`) as a platform team uses it: copied
//! into a directory outside this workspace, its `rekey-*` dependencies pointed at
//! this checkout, built, its own tests run, and the library loaded with
//! `connector_file` into the unmodified `rekey` binary, which runs the conformance
//! kit against the template's own fake directory and resets every account with it.
//!
//! The build shares this workspace's target directory and lock file, and asks for
//! the features this workspace turns on in the registry crates they share, so that
//! those crates are reused rather than built again: a cold build of the copy
//! compiles only rekey's own crates and the template.

// Formatted as the template formats it (its own rustfmt.toml), not as this workspace.
#[rustfmt::skip]
#[path = "../templates/connector/tests/fake_directory/mod.rs"]
mod fake_directory;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fake_directory::{ADMIN, ADMIN_PASSWORD, FakeDirectory};
use rekey_tests::{Scratch, bin_dir, runtime};

/// The workspace's root directory.
fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
}

/// Copies `from` into `to`, leaving out build output.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Points every `rekey-*` dependency of the manifest at this checkout by path,
/// keeping its features, as a team does that builds against a local checkout.
fn point_at_checkout(manifest: &Path) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut doc: toml::Table = text.parse().unwrap();
    let mut pointed = 0;
    for section in ["dependencies", "dev-dependencies"] {
        let Some(deps) = doc.get_mut(section).and_then(toml::Value::as_table_mut) else {
            continue;
        };
        for (name, spec) in deps.iter_mut() {
            let Some(krate) = name.strip_prefix("rekey-") else {
                continue;
            };
            let mut table = toml::Table::new();
            let path = workspace().join("crates").join(krate);
            assert!(path.join("Cargo.toml").exists(), "no crate for {name}");
            table.insert("path".into(), path.to_str().unwrap().into());
            if let Some(features) = spec.get("features") {
                table.insert("features".into(), features.clone());
            }
            *spec = toml::Value::Table(table);
            pointed += 1;
        }
    }
    assert!(
        pointed >= 3,
        "rekey-api, rekey-http and rekey-conformance: {pointed}"
    );
    std::fs::write(manifest, toml::to_string(&doc).unwrap()).unwrap();
}

/// The features the build in `dir` turns on in each registry package it builds
/// for the target (not for build scripts and macros), by `(name, version)`.
fn target_features(dir: &Path, workspace: bool) -> HashMap<(String, String), Vec<String>> {
    let mut command = cargo(dir, &["tree", "-e", "normal,dev", "--prefix", "none"]);
    command.args(["--format", "{p}|{f}"]);
    if workspace {
        command.arg("--workspace");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            // `tokio v1.54.1|bytes,default,...`; path packages and macros say so
            // in parentheses after the version, repeats end in `(*)`.
            let line = line.trim_end_matches(" (*)");
            let (package, features) = line.split_once('|')?;
            let (name, version) = package.split_once(" v")?;
            if version.contains(' ') {
                return None;
            }
            let features = features.split(',').filter(|f| !f.is_empty());
            Some((
                (name.to_owned(), version.to_owned()),
                features.map(str::to_owned).collect(),
            ))
        })
        .collect()
}

/// Asks, as dev-dependencies of the copy, for the features this workspace's build
/// turns on in the registry crates the template shares with it (`tokio`'s
/// `test-util`, say), so that cargo reuses the workspace's builds of them rather
/// than building variants of them and of everything above them. A feature the
/// workspace stops using costs only build time here, never a failure.
fn align_features(dir: &Path) {
    let ours = target_features(workspace(), true);
    let theirs = target_features(dir, false);
    let manifest = dir.join("Cargo.toml");
    let mut doc: toml::Table = std::fs::read_to_string(&manifest).unwrap().parse().unwrap();
    let dev = doc
        .entry("dev-dependencies")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap();
    for ((name, version), features) in &theirs {
        let Some(wanted) = ours.get(&(name.clone(), version.clone())) else {
            continue;
        };
        let missing: Vec<&String> = wanted.iter().filter(|f| !features.contains(f)).collect();
        if missing.is_empty() {
            continue;
        }
        // A crate the template names already keeps its entry, with the features
        // added; any other is named at its locked version (one version a name).
        let entry = dev.entry(name.as_str()).or_insert_with(|| {
            let mut spec = toml::Table::new();
            spec.insert("version".into(), format!("={version}").into());
            toml::Value::Table(spec)
        });
        if let toml::Value::String(version) = entry {
            let mut spec = toml::Table::new();
            spec.insert("version".into(), version.clone().into());
            *entry = toml::Value::Table(spec);
        }
        let spec = entry.as_table_mut().unwrap();
        let list = spec
            .entry("features")
            .or_insert_with(|| toml::Value::Array(Vec::new()))
            .as_array_mut()
            .unwrap();
        for feature in missing {
            if !list.iter().any(|f| f.as_str() == Some(feature)) {
                list.push(feature.as_str().into());
            }
        }
    }
    std::fs::write(&manifest, toml::to_string(&doc).unwrap()).unwrap();
}

/// A cargo command in the copied template, building into the workspace's target
/// directory without touching the network.
fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let target = bin_dir().parent().expect("target/<profile>");
    command
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_MANIFEST_DIR");
    if bin_dir().ends_with("release") {
        command.arg("--release");
    }
    command
}

/// The connector library a build of `dir` made, from cargo's JSON messages.
fn built_library(dir: &Path) -> PathBuf {
    let output = cargo(dir, &["test", "--no-run", "--message-format=json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let suffix = std::env::consts::DLL_SUFFIX;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == "rekey_mydirectory")
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .find(|file| file.to_string_lossy().ends_with(suffix))
        .expect("the build made a cdylib")
}

#[test]
fn a_copy_of_the_template_builds_passes_its_tests_and_conforms_in_rekey() {
    let started = Instant::now();
    bin_dir();
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("rekey-mydirectory");
    copy_tree(&workspace().join("templates/connector"), &dir);
    point_at_checkout(&dir.join("Cargo.toml"));
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    align_features(&dir);

    // Its own tests: the conformance kit in-process against its fake directory.
    let output = cargo(&dir, &["test"]).output().unwrap();
    assert!(
        output.status.success(),
        "the template's own tests failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let library = built_library(&dir);
    eprintln!("template built and tested in {:.0?}", started.elapsed());

    // The library in a private directory of its own, loaded by file.
    let rt = runtime();
    let directory = rt.block_on(FakeDirectory::start(120, Duration::from_secs(3600)));
    let mut scratch = Scratch::new();
    let plugins = scratch.path("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let file = plugins.join(library.file_name().unwrap());
    std::fs::copy(&library, &file).unwrap();
    scratch.env("DIR_PASSWORD", ADMIN_PASSWORD);
    scratch.config(&format!(
        "[targets.dir]\nconnector = \"mydirectory\"\nconnector_file = \"{}\"\nurl = \"{}\"\nusername = \"{ADMIN}\"\npassword = {{ env = \"DIR_PASSWORD\" }}\n",
        file.display(),
        directory.url()
    ));

    let run = scratch.run(&["conformance", "dir"]);
    run.expect_code(0);
    for check in [
        "describe",
        "settings",
        "check",
        "listing",
        "unknown-user",
        "reset-replies",
        "concurrency",
        "cancellation",
    ] {
        assert!(
            run.stdout.contains(&format!("PASS {check}: ")),
            "{check} did not pass:\n{}",
            run.stdout
        );
    }
    assert_eq!(
        directory.password("u001").as_deref(),
        Some("Initial-Passw0rd-1"),
        "the kit changed nothing"
    );

    // And it resets: every account but the one rekey logs in as.
    let run = scratch.run(&["reset", "dir", "--all", "--out", "new.csv", "--yes"]);
    run.expect_code(0);
    let rows = scratch.results("new.csv");
    assert_eq!(rows.len(), 121);
    for row in rows.iter().filter(|r| r.user != ADMIN) {
        assert_eq!(row.status, "reset", "{row:?}");
        assert_eq!(directory.password(&row.user), Some(row.password.clone()));
    }
    let admin = rows.iter().find(|r| r.user == ADMIN).unwrap();
    assert_eq!(admin.status, "skipped");
    assert_eq!(directory.password(ADMIN).as_deref(), Some(ADMIN_PASSWORD));
    eprintln!("template test took {:.0?}", started.elapsed());
}
