//! The results file: one row per user (`target,user,kind,status,password,detail`),
//! as CSV or JSON lines, created private and never over an existing file, and
//! synced to disk before rekey exits. It takes plain rows; what a row says is
//! decided by the job.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rekey_api::{CredentialKind, Secret};
use serde::{Deserialize, Serialize};

/// The results file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `target,user,kind,status,password,detail`.
    Csv,
    /// One JSON object a line, with the same keys.
    Jsonl,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            other => Err(format!("`{other}` is not a results format: csv or jsonl")),
        }
    }
}

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
pub struct ResultRow<'a> {
    /// The target.
    pub target: &'a str,
    /// The user id.
    pub user: &'a str,
    /// The credential kind.
    pub kind: CredentialKind,
    /// What happened.
    pub status: Status,
    /// The password now in effect (or possibly in effect), when rekey knows it.
    pub password: Option<&'a Secret>,
    /// The vendor's message or the reason.
    pub detail: &'a str,
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

/// Writes results rows as they come. Once a write has failed, every later write
/// and [`finish`](Self::finish) fails too: a results file with a hole in it is
/// never passed off as complete.
pub struct ResultsWriter {
    sink: Sink,
    path: Option<PathBuf>,
    broken: Option<io::ErrorKind>,
    /// Rows a test lets through before writes fail (see `crate::fault`).
    fault_after: Option<usize>,
}

impl Sink {
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Csv(csv) => csv.flush(),
            Sink::Jsonl(out) => out.flush(),
        }
    }
}

impl ResultsWriter {
    /// Creates `path` (mode 0600), refusing if it exists.
    pub fn create(path: &Path, format: Format) -> io::Result<Self> {
        Self::new(Output::File(create_private(path)?), Some(path), format)
    }

    /// Writes to standard output.
    pub fn stdout(format: Format) -> io::Result<Self> {
        Self::new(Output::Stdout(io::stdout()), None, format)
    }

    fn new(output: Output, path: Option<&Path>, format: Format) -> io::Result<Self> {
        let mut writer = ResultsWriter {
            sink: match format {
                Format::Csv => Sink::Csv(Box::new(
                    csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(output),
                )),
                Format::Jsonl => Sink::Jsonl(BufWriter::new(output)),
            },
            path: path.map(Path::to_owned),
            broken: None,
            fault_after: crate::fault::results_write_limit(),
        };
        if let Sink::Csv(csv) = &mut writer.sink {
            let header =
                csv.write_record(["target", "user", "kind", "status", "password", "detail"]);
            writer.check(header.map_err(io::Error::other))?;
        }
        Ok(writer)
    }

    fn check(&mut self, result: io::Result<()>) -> io::Result<()> {
        if let Err(error) = &result {
            self.broken.get_or_insert(error.kind());
        }
        result
    }

    fn refuse_if_broken(&self) -> io::Result<()> {
        match self.broken {
            Some(kind) => Err(io::Error::new(
                kind,
                "an earlier write to the results failed",
            )),
            None => Ok(()),
        }
    }

    /// Appends a row.
    pub fn write(&mut self, row: &ResultRow<'_>) -> io::Result<()> {
        self.refuse_if_broken()?;
        if let Some(left) = &mut self.fault_after {
            if *left == 0 {
                return self.check(Err(io::Error::other("injected fault: the disk is full")));
            }
            *left -= 1;
        }
        let record = Record {
            target: row.target,
            user: row.user,
            kind: row.kind.as_str(),
            status: row.status.as_str(),
            password: row.password.map_or("", Secret::expose),
            detail: row.detail,
        };
        let mut written = match &mut self.sink {
            Sink::Csv(csv) => csv.serialize(&record).map_err(io::Error::other),
            Sink::Jsonl(out) => serde_json::to_writer(&mut *out, &record)
                .map_err(io::Error::other)
                .and_then(|()| out.write_all(b"\n")),
        };
        // Standard output is usually a pipe: each row goes through at once, so that
        // a reader that went away is noticed before the next user is sent.
        if written.is_ok() && self.path.is_none() {
            written = self.sink.flush();
        }
        self.check(written)
    }

    /// Flushes everything and, for a file, syncs it and its directory to disk.
    pub fn finish(mut self) -> io::Result<()> {
        self.refuse_if_broken()?;
        self.sink.flush()?;
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

/// What tells one file from another at the same path: its device, inode and
/// creation time (inode numbers are reused as soon as a file is deleted). A
/// results file is only ever replaced by the job that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// The device.
    pub dev: u64,
    /// The inode.
    pub ino: u64,
    /// When the file was created (nanoseconds since the epoch), where the file
    /// system records it.
    #[serde(default)]
    pub born: Option<u128>,
}

impl FileIdentity {
    /// The identity of the file at `path` (not following a final symbolic link),
    /// or `None` if there is none.
    pub fn of(path: &Path) -> io::Result<Option<FileIdentity>> {
        match std::fs::symlink_metadata(path) {
            Ok(metadata) => Ok(Some(Self::from_metadata(&metadata))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn from_metadata(metadata: &std::fs::Metadata) -> FileIdentity {
        let born = metadata
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        FileIdentity { dev, ino, born }
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

    fn write_rows(writer: &mut ResultsWriter, target: &str, kind: CredentialKind) {
        let password = Secret::from("p,\"q");
        let rows = [
            ResultRow {
                target,
                user: "a@x",
                kind,
                status: Status::Reset,
                password: Some(&password),
                detail: "",
            },
            ResultRow {
                target,
                user: "b@x",
                kind,
                status: Status::Failed,
                password: None,
                detail: "User does not exist.",
            },
        ];
        for row in &rows {
            writer.write(row).unwrap();
        }
    }

    #[test]
    fn csv_rows_are_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut writer = ResultsWriter::create(&path, Format::Csv).unwrap();
        write_rows(&mut writer, "mail", CredentialKind::Password);
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
        let err = ResultsWriter::create(&path, Format::Csv).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn jsonl_rows_have_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut writer = ResultsWriter::create(&path, Format::Jsonl).unwrap();
        write_rows(&mut writer, "pbx", CredentialKind::Sip);
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

    #[test]
    fn identities_tell_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        assert_eq!(FileIdentity::of(&path).unwrap(), None);
        ResultsWriter::create(&path, Format::Csv)
            .unwrap()
            .finish()
            .unwrap();
        let first = FileIdentity::of(&path).unwrap().unwrap();
        assert_eq!(FileIdentity::of(&path).unwrap(), Some(first));
        let other = dir.path().join("other.csv");
        std::fs::write(&other, "x").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_ne!(FileIdentity::of(&path).unwrap(), Some(first));
        // Deleted and created again (often with the same inode number).
        let second = FileIdentity::of(&path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "y").unwrap();
        assert_ne!(FileIdentity::of(&path).unwrap(), second);
    }
}
