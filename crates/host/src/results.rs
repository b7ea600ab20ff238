//! The results file: one row per user (`target,user,kind,status,password,detail`),
//! as CSV or JSON lines, optionally encrypted to age recipients, created private
//! and never over an existing file, and synced to disk before rekey exits. It
//! takes plain rows; what a row says is decided by the job.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use rekey_api::{CredentialKind, Secret};
use serde::{Deserialize, Serialize};

mod place;
mod recipients;

pub use place::{FileIdentity, create_private, files_aside, sync_dir};
use place::{FilePlace, temporary_path};
pub use recipients::{RECIPIENTS_FILE_LIMIT, Recipients};

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

/// Where the bytes go.
enum Destination {
    File(File),
    Stdout(io::Stdout),
}

impl Write for Destination {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Destination::File(f) => f.write(buf),
            Destination::Stdout(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Destination::File(f) => f.flush(),
            Destination::Stdout(s) => s.flush(),
        }
    }
}

/// The bytes as written: plain, or encrypted as they go. Encrypted, they leave
/// in age's 64 KiB chunks, and only [`Output::finish`] makes the file whole.
enum Output {
    Plain(Destination),
    Encrypted(Box<age::stream::StreamWriter<Destination>>),
}

impl Output {
    /// Writes the last encrypted chunk, if encrypting.
    fn finish(self) -> io::Result<Destination> {
        match self {
            Output::Plain(destination) => Ok(destination),
            Output::Encrypted(writer) => writer.finish(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Plain(d) => d.write(buf),
            Output::Encrypted(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Plain(d) => d.flush(),
            Output::Encrypted(e) => e.flush(),
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
///
/// Encrypted results (to age [`Recipients`]) are written aside, to a private
/// temporary file in the same directory, and moved into place by `finish`: an age
/// file without its last chunk cannot be decrypted at all, so the results file's
/// path only ever holds a complete one. Plain results of a new job are written at
/// their path as they come; a rewrite is written aside and replaces the old file.
/// No plaintext of encrypted results ever reaches a disk.
pub struct ResultsWriter {
    sink: Sink,
    file: Option<FilePlace>,
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
    /// Creates a new job's results file at `path` (mode 0600), refusing if one
    /// exists; encrypted to `recipients` unless there are none.
    pub fn create(path: &Path, format: Format, recipients: &Recipients) -> io::Result<Self> {
        if recipients.is_empty() {
            let file = create_private(path)?;
            let place = FilePlace::new(&file, path, None, false)?;
            return Self::new(Destination::File(file), Some(place), format, recipients);
        }
        // Refused now rather than after the whole job; checked again when the
        // file is moved into place.
        if FileIdentity::of(path)?.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file exists at that path",
            ));
        }
        Self::aside(path, format, recipients, false)
    }

    /// Writes a whole results file aside, to replace the one at `path` when
    /// finished (a stopped job's file, rewritten at resume or discard).
    pub fn replace(path: &Path, format: Format, recipients: &Recipients) -> io::Result<Self> {
        Self::aside(path, format, recipients, true)
    }

    /// Writes to standard output.
    pub fn stdout(format: Format, recipients: &Recipients) -> io::Result<Self> {
        Self::new(Destination::Stdout(io::stdout()), None, format, recipients)
    }

    fn aside(
        path: &Path,
        format: Format,
        recipients: &Recipients,
        replace: bool,
    ) -> io::Result<Self> {
        let temp = temporary_path(path);
        let _ = std::fs::remove_file(&temp);
        let file = create_private(&temp)?;
        let place = FilePlace::new(&file, path, Some(temp.clone()), replace).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })?;
        // Should this fail, the place is dropped, and the file aside with it.
        Self::new(Destination::File(file), Some(place), format, recipients)
    }

    fn new(
        destination: Destination,
        file: Option<FilePlace>,
        format: Format,
        recipients: &Recipients,
    ) -> io::Result<Self> {
        let output = match recipients.encryptor()? {
            None => Output::Plain(destination),
            Some(encryptor) => Output::Encrypted(Box::new(encryptor.wrap_output(destination)?)),
        };
        let mut writer = ResultsWriter {
            sink: match format {
                Format::Csv => Sink::Csv(Box::new(
                    csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(output),
                )),
                Format::Jsonl => Sink::Jsonl(BufWriter::new(output)),
            },
            file,
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

    /// The identity of the file being written, which the results file has once
    /// [`finish`](Self::finish) moved it into place (`None` for standard output).
    pub fn identity(&self) -> Option<FileIdentity> {
        self.file.as_ref().map(|f| f.identity)
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

    /// Appends a row. In CSV, a cell other than the password that a spreadsheet
    /// would read as a formula gets a leading `'`; the password is always written
    /// exactly.
    pub fn write(&mut self, row: &ResultRow<'_>) -> io::Result<()> {
        self.refuse_if_broken()?;
        if let Some(left) = &mut self.fault_after {
            if *left == 0 {
                return self.check(Err(io::Error::other("injected fault: the disk is full")));
            }
            *left -= 1;
        }
        let password = row.password.map_or("", Secret::expose);
        let mut written = match &mut self.sink {
            Sink::Csv(csv) => csv
                .serialize(&Record {
                    target: &spreadsheet_safe(row.target),
                    user: &spreadsheet_safe(row.user),
                    kind: row.kind.as_str(),
                    status: row.status.as_str(),
                    password,
                    detail: &spreadsheet_safe(row.detail),
                })
                .map_err(io::Error::other),
            Sink::Jsonl(out) => {
                let record = Record {
                    target: row.target,
                    user: row.user,
                    kind: row.kind.as_str(),
                    status: row.status.as_str(),
                    password,
                    detail: row.detail,
                };
                serde_json::to_writer(&mut *out, &record)
                    .map_err(io::Error::other)
                    .and_then(|()| out.write_all(b"\n"))
            }
        };
        // Standard output is usually a pipe: each row goes through at once, so that
        // a reader that went away is noticed before the next user is sent.
        if written.is_ok() && self.file.is_none() {
            written = self.sink.flush();
        }
        self.check(written)
    }

    /// Flushes everything (the last encrypted chunk included) and, for a file,
    /// syncs it, moves it into place if it was written aside, and syncs its
    /// directory. If this fails, or the writer is dropped unfinished, a file
    /// written aside is removed, and the results file's path keeps what it held.
    pub fn finish(self) -> io::Result<()> {
        let ResultsWriter {
            sink, file, broken, ..
        } = self;
        let destination = match broken {
            Some(kind) => Err(io::Error::new(
                kind,
                "an earlier write to the results failed",
            )),
            None => sink.finish(),
        }?;
        match file {
            Some(mut place) => destination.sync().and_then(|()| place.move_into_place()),
            None => Ok(()),
        }
    }
}

impl Sink {
    /// Flushes every buffer and ends the encryption, if any.
    fn finish(mut self) -> io::Result<Destination> {
        self.flush()?;
        let output = match self {
            Sink::Csv(csv) => csv.into_inner().map_err(|e| e.into_error())?,
            Sink::Jsonl(out) => out.into_inner().map_err(|e| e.into_error())?,
        };
        let mut destination = output.finish()?;
        destination.flush()?;
        Ok(destination)
    }
}

impl Destination {
    /// Makes a file durable (standard output is only flushed).
    fn sync(&self) -> io::Result<()> {
        match self {
            Destination::File(file) => file.sync_all(),
            Destination::Stdout(_) => Ok(()),
        }
    }
}

/// `cell` as a spreadsheet shows it as text: with a leading `'` when it would
/// begin a formula (`=`, `+`, `-`, `@`) or with a tab or carriage return.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests;
