//! Helpers for the workspace integration tests: build the real binaries and
//! connector libraries once, run `rekey` in a scratch directory, read its results.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;

/// The directory holding the built `rekey` binary and connector libraries
/// (`target/debug` or `target/release`), built on first use with the same profile
/// as the tests.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binaries live in target/<profile>/deps")
            .to_owned();
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // `--tests` resolves features as `cargo test` does (dev-dependencies
        // included), so this build finds what `cargo test` already built and
        // changes nothing under its feet.
        build
            .args([
                "build",
                "--workspace",
                "--lib",
                "--bins",
                "--tests",
                "--quiet",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile == "release" {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the workspace failed");
        dir
    })
}

/// The path of a built library, by crate name (`fixture_faulty`).
pub fn library(crate_name: &str) -> PathBuf {
    bin_dir().join(format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// The file name of connector `name`'s library.
pub fn connector_file_name(name: &str) -> String {
    format!(
        "{}rekey_{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// A multi-threaded runtime for simulators that run while `rekey` does.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A scratch directory to run `rekey` in, with its own state directory.
pub struct Scratch {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// What a `rekey` run printed and returned.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the output if it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A new scratch directory.
    pub fn new() -> Scratch {
        bin_dir();
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets an environment variable for every `rekey` run.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Stops setting an environment variable for `rekey` runs.
    pub fn remove_env(&mut self, key: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Writes `rekey.toml` (private: mode 0600).
    pub fn config(&self, text: &str) -> PathBuf {
        let path = self.path("rekey.toml");
        self.write_private(&path, text);
        path
    }

    /// Writes a file with mode 0600.
    pub fn write_private(&self, path: &Path, text: &str) {
        std::fs::write(path, text).expect("write file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }

    /// Copies a built library into a plugin directory of the scratch directory under
    /// another name, and returns the directory.
    pub fn plugin_copy(&self, crate_name: &str, as_file: &str) -> PathBuf {
        let dir = self.path("plugins");
        std::fs::create_dir_all(&dir).expect("plugin dir");
        std::fs::copy(library(crate_name), dir.join(as_file)).expect("copy library");
        dir
    }

    /// A `rekey` command running in the scratch directory, isolated from the
    /// caller's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin_dir().join("rekey"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("REKEY_CONFIG")
            .env_remove("REKEY_PLUGIN_PATH")
            .env_remove("RUST_LOG")
            .env("HOME", self.dir.path())
            .env("XDG_STATE_HOME", self.path("state"))
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Starts `rekey` with standard error captured; see [`Running`].
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rekey");
        let stderr = child.stderr.take().expect("piped stderr");
        let (job_tx, job_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok)
            {
                if let Some(id) = line.strip_prefix("job ") {
                    let _ = job_tx.send(id.trim().to_owned());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Running {
            child,
            job: job_rx,
            reader: Some(reader),
        }
    }

    /// Runs `rekey` and waits for it.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run rekey"))
    }

    /// Reads a CSV results file.
    pub fn results(&self, name: &str) -> Vec<ResultRecord> {
        read_results(&self.path(name))
    }
}

/// A `rekey` process in the background.
pub struct Running {
    /// The process.
    pub child: std::process::Child,
    job: std::sync::mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// The job id `rekey` announced (`job <ID>` on standard error), waiting for it.
    pub fn job_id(&self) -> String {
        self.job
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("rekey announced no job")
    }

    /// Sends a signal by name (`INT`, `TERM`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process; returns its exit code (or -1 if killed by a signal)
    /// and its standard error.
    pub fn wait(mut self) -> (i32, String) {
        let status = self.child.wait().expect("wait for rekey");
        let stderr = self
            .reader
            .take()
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        (status.code().unwrap_or(-1), stderr)
    }
}

/// One row of a results file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ResultRecord {
    /// The target.
    pub target: String,
    /// The user id.
    pub user: String,
    /// The credential kind.
    pub kind: String,
    /// `reset`, `failed` or `skipped`.
    pub status: String,
    /// The password, if known.
    pub password: String,
    /// The detail.
    pub detail: String,
}

/// Reads a CSV results file.
pub fn read_results(path: &Path) -> Vec<ResultRecord> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        ["target", "user", "kind", "status", "password", "detail"]
    );
    reader
        .deserialize()
        .map(|r| r.expect("results row"))
        .collect()
}

/// Rows with `status`.
pub fn with_status<'a>(rows: &'a [ResultRecord], status: &str) -> Vec<&'a ResultRecord> {
    rows.iter().filter(|r| r.status == status).collect()
}
