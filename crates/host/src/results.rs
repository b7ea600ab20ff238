//! The results file: one row per user (`target,user,kind,status,password,detail`),
//! as CSV or JSON lines, created private and never over an existing file, and
//! synced to disk before rekey exits.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rekey_api::{CredentialKind, Secret};
use serde::Serialize;

use crate::cli::ResultsFormat;

/// A user's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The new password is in effect.
    Reset,
    /// The reset failed (see the detail).
    Failed,
    /// The user was not reset (excluded, the connector's own account, or not
    /// attempted because the job stopped).
    Skipped,
}

impl Status {
    /// The word written in the results file.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reset => "reset",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the results.
#[derive(Debug, Clone)]
pub struct ResultRow {
    /// The user id.
    pub user: String,
    /// What happened.
    pub status: Status,
    /// The password now in effect (or possibly in effect), when rekey knows it.
    pub password: Option<Secret>,
    /// The vendor's message or the reason.
    pub detail: String,
}

#[derive(Serialize)]
struct Record<'a> {
    target: &'a str,
    user: &'a str,
    kind: &'a str,
    status: &'a str,
    password: &'a str,
    detail: &'a str,
}

enum Output {
    File(File),
    Stdout(io::Stdout),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::File(f) => f.write(buf),
            Output::Stdout(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::File(f) => f.flush(),
            Output::Stdout(s) => s.flush(),
        }
    }
}

enum Sink {
    Csv(Box<csv::Writer<Output>>),
    Jsonl(BufWriter<Output>),
}

/// Writes results rows as they come.
pub struct ResultsWriter {
    sink: Sink,
    path: Option<PathBuf>,
    target: String,
    kind: CredentialKind,
}

impl ResultsWriter {
    /// Creates `path` (mode 0600), refusing if it exists. `-` is standard output.
    pub fn create(
        path: &Path,
        format: ResultsFormat,
        target: &str,
        kind: CredentialKind,
    ) -> io::Result<Self> {
        let (output, path) = if path == Path::new("-") {
            (Output::Stdout(io::stdout()), None)
        } else {
            (Output::File(create_private(path)?), Some(path.to_owned()))
        };
        let mut writer = ResultsWriter {
            sink: match format {
                ResultsFormat::Csv => Sink::Csv(Box::new(
                    csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(output),
                )),
                ResultsFormat::Jsonl => Sink::Jsonl(BufWriter::new(output)),
            },
            path,
            target: target.to_owned(),
            kind,
        };
        if let Sink::Csv(csv) = &mut writer.sink {
            csv.write_record(["target", "user", "kind", "status", "password", "detail"])?;
        }
        Ok(writer)
    }

    /// Appends a row.
    pub fn write(&mut self, row: &ResultRow) -> io::Result<()> {
        let record = Record {
            target: &self.target,
            user: &row.user,
            kind: self.kind.as_str(),
            status: row.status.as_str(),
            password: row.password.as_ref().map_or("", Secret::expose),
            detail: &row.detail,
        };
        match &mut self.sink {
            Sink::Csv(csv) => csv.serialize(&record).map_err(io::Error::other),
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")
            }
        }
    }

    /// Flushes everything and, for a file, syncs it and its directory to disk.
    pub fn finish(self) -> io::Result<()> {
        let output = match self.sink {
            Sink::Csv(csv) => csv.into_inner().map_err(|e| e.into_error())?,
            Sink::Jsonl(out) => out.into_inner().map_err(|e| e.into_error())?,
        };
        match output {
            Output::File(file) => {
                file.sync_all()?;
                if let Some(dir) = self.path.as_deref().and_then(Path::parent) {
                    sync_dir(dir);
                }
            }
            Output::Stdout(mut stdout) => stdout.flush()?,
        }
        Ok(())
    }
}

/// Creates a new file readable by its owner only; fails if it exists.
pub fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Syncs a directory so that a file just created in it survives a crash. Best
/// effort: not every platform or file system supports it.
pub fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<ResultRow> {
        vec![
            ResultRow {
                user: "a@x".into(),
                status: Status::Reset,
                password: Some("p,\"q".into()),
                detail: String::new(),
            },
            ResultRow {
                user: "b@x".into(),
                status: Status::Failed,
                password: None,
                detail: "User does not exist.".into(),
            },
        ]
    }

    #[test]
    fn csv_rows_are_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut writer =
            ResultsWriter::create(&path, ResultsFormat::Csv, "mail", CredentialKind::Password)
                .unwrap();
        for row in rows() {
            writer.write(&row).unwrap();
        }
        writer.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "target,user,kind,status,password,detail\nmail,a@x,password,reset,\"p,\"\"q\",\nmail,b@x,password,failed,,User does not exist.\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let err =
            ResultsWriter::create(&path, ResultsFormat::Csv, "mail", CredentialKind::Password)
                .err()
                .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn jsonl_rows_have_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut writer =
            ResultsWriter::create(&path, ResultsFormat::Jsonl, "pbx", CredentialKind::Sip).unwrap();
        for row in rows() {
            writer.write(&row).unwrap();
        }
        writer.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["password"], "p,\"q");
        assert_eq!(lines[0]["kind"], "sip");
        assert_eq!(lines[1]["password"], "");
        assert_eq!(lines[1]["detail"], "User does not exist.");
        assert_eq!(lines[1]["target"], "pbx");
    }
}
