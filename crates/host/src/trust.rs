//! Whether rekey may trust a file it reads or runs.
//!
//! The config says which libraries rekey loads and where new passwords go; a
//! recipients file says who can read them; a connector library or program runs
//! inside rekey with the admin credentials. Whoever can change such a file can take
//! over the job, so rekey checks, as sshd checks `authorized_keys`, that nobody but
//! root and the user running rekey can change it:
//!
//! - symbolic links are resolved, and the file they lead to is the one checked (and
//!   the one to use: [`Trusted::path`]);
//! - the file, and every directory above it up to the root, must be owned by root
//!   or by the user running rekey, and not writable by group or others;
//! - except that a root-owned directory with the sticky bit (such as `/tmp`) may be
//!   writable by all: there nobody can rename or delete another's files.
//!
//! Once every directory above the resolved path is safe, only root and the user can
//! change what that path holds, so reading or loading [`Trusted::path`] afterwards
//! reads or loads the file checked.
//!
//! Secret files (`{ file = "PATH" }` settings, `--password-file`) are checked the
//! other way round, by [`check_secret_file`]: they must not be readable by group or
//! others.
//!
//! Where the platform has no Unix permissions, the checks cannot be made and every
//! file passes.

use std::fmt;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A file that passed [`check_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    path: PathBuf,
}

impl Trusted {
    /// The file's resolved path (no symbolic link in it): read or load this path,
    /// not the one given, so that what is used is what was checked.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A file rekey refuses: which one, what it is, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what} {} is not trusted: {reason}", path.display())]
pub struct Untrusted {
    /// What the file is for (`config file`, `connector library`).
    pub what: &'static str,
    /// The path as given.
    pub path: PathBuf,
    /// Why it is refused (also shown alone, as `rekey connectors` does for a
    /// skipped library).
    pub reason: Reason,
}

/// Why a file is not trusted.
#[derive(Debug)]
pub enum Reason {
    /// It cannot be looked at (missing, unreadable directory).
    Unreadable(io::Error),
    /// It is not a regular file.
    NotAFile,
    /// The file, or a directory above it, can be written by group or others.
    Writable {
        /// The file or directory.
        at: PathBuf,
        /// Whether `at` is a directory above the file.
        directory: bool,
        /// Its permission bits.
        mode: u32,
    },
    /// The file, or a directory above it, belongs to someone else.
    ForeignOwner {
        /// The file or directory.
        at: PathBuf,
        /// Whether `at` is a directory above the file.
        directory: bool,
        /// Its owner.
        uid: u32,
        /// The user running rekey.
        me: u32,
    },
    /// A secret file can be read by group or others.
    Readable {
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than rekey reads for its purpose.
    TooLarge {
        /// The most rekey reads.
        limit: u64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let thing = |directory: bool, at: &Path| {
            if directory {
                format!("the directory {} above it", at.display())
            } else {
                format!("it ({})", at.display())
            }
        };
        match self {
            Reason::Unreadable(error) => write!(f, "cannot look at it: {error}"),
            Reason::NotAFile => f.write_str("it is not a regular file"),
            Reason::Writable {
                at,
                directory,
                mode,
            } => write!(
                f,
                "{} can be written by group or others (mode {:03o}), so someone else could change what rekey reads or runs: run chmod go-w {}",
                thing(*directory, at),
                mode & 0o7777,
                at.display()
            ),
            Reason::ForeignOwner {
                at,
                directory,
                uid,
                me,
            } => write!(
                f,
                "{} belongs to uid {uid}, which is neither root nor the user running rekey (uid {me}); only files and directories of root or of that user are trusted",
                thing(*directory, at),
            ),
            Reason::Readable { mode } => write!(
                f,
                "it holds a secret and can be read by group or others (mode {:03o}): run chmod go-rw on it",
                mode & 0o7777
            ),
            Reason::TooLarge { limit } => {
                write!(
                    f,
                    "it is larger than {limit} bytes, more than such a file ever needs"
                )
            }
        }
    }
}

/// Checks that nobody but root and the user running rekey can change the file at
/// `path` (see the module's doc); `what` names it in the error (`config file`).
///
/// The config and recipients files are checked through [`read_trusted`]; a plugin
/// loader calls this for a connector library or program before loading or
/// starting it, and loads or starts [`Trusted::path`].
pub fn check_file(path: &Path, what: &'static str) -> Result<Trusted, Untrusted> {
    let refuse = |reason| Untrusted {
        what,
        path: path.to_owned(),
        reason,
    };
    let real = std::fs::canonicalize(path).map_err(|e| refuse(Reason::Unreadable(e)))?;
    let metadata = std::fs::metadata(&real).map_err(|e| refuse(Reason::Unreadable(e)))?;
    if !metadata.is_file() {
        return Err(refuse(Reason::NotAFile));
    }
    unix::check_entry(&real, &metadata, false).map_err(refuse)?;
    for dir in real.ancestors().skip(1) {
        let metadata = std::fs::metadata(dir).map_err(|e| refuse(Reason::Unreadable(e)))?;
        unix::check_entry(dir, &metadata, true).map_err(refuse)?;
    }
    Ok(Trusted { path: real })
}

/// Checks that the secret file at `path` cannot be read by group or others;
/// `what` names it in the error (`secret file`).
pub fn check_secret_file(path: &Path, what: &'static str) -> Result<(), Untrusted> {
    let refuse = |reason| Untrusted {
        what,
        path: path.to_owned(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|e| refuse(Reason::Unreadable(e)))?;
    if !metadata.is_file() {
        return Err(refuse(Reason::NotAFile));
    }
    unix::check_private(&metadata).map_err(refuse)
}

/// Reads a small text file rekey must trust (the config, a recipients file):
/// checked with [`check_file`], read from its resolved path, at most `limit`
/// bytes. The text is wiped from memory when dropped, since a config may hold a
/// literal secret.
pub fn read_trusted(
    path: &Path,
    what: &'static str,
    limit: u64,
) -> anyhow::Result<Zeroizing<String>> {
    let trusted = check_file(path, what)?;
    read_limited(trusted.path(), limit).map_err(|e| match e {
        LimitedReadError::TooLarge => Untrusted {
            what,
            path: path.to_owned(),
            reason: Reason::TooLarge { limit },
        }
        .into(),
        LimitedReadError::Io(e) => {
            anyhow::Error::new(e).context(format!("cannot read {what} {}", path.display()))
        }
    })
}

/// Why [`read_limited`] failed.
#[derive(Debug)]
pub(crate) enum LimitedReadError {
    /// The file is longer than the limit.
    TooLarge,
    /// Reading failed (including text that is not UTF-8).
    Io(io::Error),
}

/// Reads at most `limit` bytes of UTF-8 text, never more into memory; the buffer is
/// wiped when dropped.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Zeroizing<String>, LimitedReadError> {
    let file = std::fs::File::open(path).map_err(LimitedReadError::Io)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(LimitedReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(LimitedReadError::TooLarge);
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(e) => Err(LimitedReadError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text (at byte {})", e.valid_up_to()),
        ))),
    }
}

#[cfg(unix)]
mod unix {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use super::Reason;

    /// The sticky bit: in such a directory only a file's owner may rename or delete it.
    const STICKY: u32 = 0o1000;

    /// Checks one file (`directory` false) or one directory above it.
    pub(super) fn check_entry(
        at: &Path,
        metadata: &std::fs::Metadata,
        directory: bool,
    ) -> Result<(), Reason> {
        let me = rustix::process::geteuid().as_raw();
        let uid = metadata.uid();
        if uid != 0 && uid != me {
            return Err(Reason::ForeignOwner {
                at: at.to_owned(),
                directory,
                uid,
                me,
            });
        }
        let mode = metadata.mode();
        let shared_but_sticky = directory && uid == 0 && mode & STICKY != 0;
        if mode & 0o022 != 0 && !shared_but_sticky {
            return Err(Reason::Writable {
                at: at.to_owned(),
                directory,
                mode,
            });
        }
        Ok(())
    }

    /// Checks that a secret file is not readable by group or others.
    pub(super) fn check_private(metadata: &std::fs::Metadata) -> Result<(), Reason> {
        let mode = metadata.mode();
        if mode & 0o044 != 0 {
            return Err(Reason::Readable { mode });
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod unix {
    //! No Unix permissions here: nothing can be checked.

    use std::path::Path;

    use super::Reason;

    pub(super) fn check_entry(
        _at: &Path,
        _metadata: &std::fs::Metadata,
        _directory: bool,
    ) -> Result<(), Reason> {
        Ok(())
    }

    pub(super) fn check_private(_metadata: &std::fs::Metadata) -> Result<(), Reason> {
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A scratch directory (under the system's temporary directory, which is
    /// root's and sticky) holding `file` (mode 0600).
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rekey.toml");
        std::fs::write(&file, "[rekey]\n").unwrap();
        chmod(&file, 0o600);
        (dir, file)
    }

    fn refusal(path: &Path) -> String {
        check_file(path, "config file").unwrap_err().to_string()
    }

    #[test]
    fn a_private_file_under_the_temporary_directory_is_trusted() {
        // The system's temporary directory is world-writable, root's and sticky.
        let (_dir, file) = scratch();
        let trusted = check_file(&file, "config file").unwrap();
        assert_eq!(trusted.path(), std::fs::canonicalize(&file).unwrap());
        chmod(&file, 0o644);
        assert!(check_file(&file, "config file").is_ok(), "readable is fine");
    }

    #[test]
    fn a_file_others_can_write_is_refused() {
        let (_dir, file) = scratch();
        chmod(&file, 0o666);
        let err = refusal(&file);
        assert!(err.starts_with(&format!("config file {} is not trusted", file.display())));
        assert!(
            err.contains("can be written by group or others (mode 666)"),
            "{err}"
        );
        assert!(err.contains("chmod go-w"), "{err}");
        chmod(&file, 0o620);
        assert!(refusal(&file).contains("mode 620"));
    }

    #[test]
    fn a_parent_directory_the_group_can_write_is_refused() {
        let (dir, _) = scratch();
        let sub = dir.path().join("conf");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("rekey.toml");
        std::fs::write(&file, "").unwrap();
        chmod(&sub, 0o775);
        let err = refusal(&file);
        assert!(
            err.contains(&format!("the directory {} above it", sub.display())),
            "{err}"
        );
        assert!(err.contains("mode 775"), "{err}");
        chmod(&sub, 0o755);
        assert!(check_file(&file, "config file").is_ok());
    }

    #[test]
    fn a_sticky_directory_is_fine_only_when_root_owns_it() {
        let (dir, _) = scratch();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o1777);
        let file = shared.join("rekey.toml");
        std::fs::write(&file, "").unwrap();
        let me = rustix::process::geteuid();
        if me.is_root() {
            // Root's sticky directory, like /tmp.
            assert!(check_file(&file, "config file").is_ok());
        } else {
            // The user's own sticky directory is not root's.
            assert!(refusal(&file).contains("mode 1777"));
        }
        chmod(&shared, 0o777);
        assert!(refusal(&file).contains("mode 777"));
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        if !rustix::process::geteuid().is_root() {
            // Only root can give a file away: nothing to test as anyone else.
            return;
        }
        let (dir, file) = scratch();
        std::os::unix::fs::chown(&file, Some(4242), None).unwrap();
        let err = refusal(&file);
        assert!(err.contains("belongs to uid 4242"), "{err}");
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(4242), None).unwrap();
        let err = refusal(&file);
        assert!(err.contains("belongs to uid 4242"), "{err}");
        assert!(err.contains("the directory"), "{err}");
        std::os::unix::fs::chown(dir.path(), Some(0), None).unwrap();
    }

    #[test]
    fn symbolic_links_are_followed_and_their_targets_checked() {
        let (dir, file) = scratch();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let target = open.join("real.toml");
        std::fs::write(&target, "").unwrap();
        chmod(&target, 0o600);
        let link = dir.path().join("link.toml");
        symlink(&target, &link).unwrap();
        let err = refusal(&link);
        assert!(
            err.starts_with(&format!("config file {}", link.display())),
            "{err}"
        );
        assert!(err.contains(&open.display().to_string()), "{err}");

        // A link to a good file is followed to it.
        let good = dir.path().join("good.toml");
        symlink(&file, &good).unwrap();
        let trusted = check_file(&good, "config file").unwrap();
        assert_eq!(trusted.path(), std::fs::canonicalize(&file).unwrap());
    }

    #[test]
    fn missing_files_and_directories_are_named() {
        let (dir, _) = scratch();
        let err = refusal(&dir.path().join("none.toml"));
        assert!(
            err.contains("none.toml is not trusted: cannot look at it"),
            "{err}"
        );
        assert!(refusal(dir.path()).contains("not a regular file"));
    }

    #[test]
    fn secret_files_must_be_private() {
        let (_dir, file) = scratch();
        check_secret_file(&file, "secret file").unwrap();
        chmod(&file, 0o640);
        let err = check_secret_file(&file, "secret file")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("can be read by group or others (mode 640)"),
            "{err}"
        );
        chmod(&file, 0o604);
        assert!(check_secret_file(&file, "secret file").is_err());
    }

    #[test]
    fn reads_are_bounded() {
        let (_dir, file) = scratch();
        std::fs::write(&file, "x".repeat(100)).unwrap();
        assert_eq!(read_trusted(&file, "config file", 100).unwrap().len(), 100);
        let err = read_trusted(&file, "config file", 99)
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than 99 bytes"), "{err}");
        std::fs::write(&file, b"a\xffb").unwrap();
        let err = format!("{:#}", read_trusted(&file, "config file", 99).unwrap_err());
        assert!(err.contains("not UTF-8"), "{err}");
    }
}
