//! Where a results file lives on disk: created private, written at its path or
//! aside (a private temporary file beside it) and moved into place whole, and
//! told apart from any other file at the same path.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A results file being written, and how it gets to its path.
pub(super) struct FilePlace {
    /// The results file's path.
    path: PathBuf,
    /// Where the bytes are written, when not straight at `path`: a private
    /// temporary file beside it, moved to `path` when complete.
    aside: Option<PathBuf>,
    /// Whether moving the file into place may replace the file at `path`.
    replace: bool,
    /// The identity of the file written.
    pub(super) identity: FileIdentity,
}

impl FilePlace {
    /// The place of `file`, just created for the results file at `path`.
    pub(super) fn new(
        file: &File,
        path: &Path,
        aside: Option<PathBuf>,
        replace: bool,
    ) -> io::Result<Self> {
        Ok(FilePlace {
            path: path.to_owned(),
            aside,
            replace,
            identity: FileIdentity::from_metadata(&file.metadata()?),
        })
    }

    /// Moves a file written aside to its path (replacing only when allowed), then
    /// syncs the directory so that the name survives a crash.
    pub(super) fn move_into_place(&mut self) -> io::Result<()> {
        if let Some(aside) = &self.aside {
            if self.replace {
                std::fs::rename(aside, &self.path)?;
            } else {
                move_without_replacing(aside, &self.path)?;
            }
            self.aside = None;
        }
        if let Some(dir) = self.path.parent() {
            sync_dir(dir);
        }
        Ok(())
    }
}

impl Drop for FilePlace {
    /// A file written aside and never moved into place is incomplete: removed.
    fn drop(&mut self) {
        if let Some(aside) = self.aside.take() {
            let _ = std::fs::remove_file(aside);
        }
    }
}

/// Moves `from` to `to` unless a file appeared at `to`: a hard link, which fails
/// if `to` exists, then the old name removed. Where the file system has no hard
/// links, a check then a rename.
fn move_without_replacing(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "a file appeared at {} while rekey wrote the results; they are kept nowhere else but the journal: move that file away, then run rekey resume",
                to.display()
            ),
        )),
        Err(_) if FileIdentity::of(to)?.is_none() => std::fs::rename(from, to),
        Err(error) => Err(error),
    }
}

/// `dir/.name.rekey-PID.tmp` beside `path`: where a results file is written aside.
pub(super) fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("results");
    path.with_file_name(format!(".{name}.rekey-{}.tmp", std::process::id()))
}

/// Files a results file may have been written aside to, by any process, beside
/// `path` (see `temporary_path`).
pub fn files_aside(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!(".{name}.rekey-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tmp"))
        })
        .collect()
}

/// What tells one file from another at the same path: its device and inode. A
/// results file is only ever replaced by the job that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// The device.
    pub dev: u64,
    /// The inode.
    pub ino: u64,
    /// When the file was created (nanoseconds since the epoch), where the file
    /// system records it: inode numbers are reused as soon as a file is deleted.
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

    pub(super) fn from_metadata(metadata: &std::fs::Metadata) -> FileIdentity {
        // The creation time survives a rename, as the inode does.
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
