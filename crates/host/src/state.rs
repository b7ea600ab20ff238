//! The state directory: the journal, job locks, and connectors' own state.
//!
//! rekey creates it private (0700). An existing directory is used as it is, never
//! chmodded (a `state_dir` may be a shared place such as `/var/lib`), but it is
//! refused if another user owns it or group or others may write to it: whoever
//! can write there could replace the journal that holds new passwords.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// An opened state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens the state directory at `root`, creating it (and its missing parents)
    /// private, or checking an existing one.
    pub fn open(root: &Path) -> anyhow::Result<StateDir> {
        private_dir(root, "state directory")?;
        Ok(StateDir {
            root: root.to_owned(),
        })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// A private subdirectory (`locks`, `connectors/mail`), created if missing.
    pub fn subdir(&self, relative: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(relative);
        private_dir(&dir, "state directory")?;
        Ok(dir)
    }
}

/// Creates `dir` private, or checks that an existing one is safe to keep secrets
/// in: a directory, owned by the user running rekey, not writable by group or
/// others.
fn private_dir(dir: &Path, what: &str) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(metadata) => {
            if !metadata.is_dir() {
                bail!("{what} {} exists and is not a directory", dir.display());
            }
            check_private(dir, &metadata, what)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(dir)
                .with_context(|| format!("cannot create {what} {}", dir.display()))
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {what} {}", dir.display())),
    }
}

#[cfg(unix)]
fn check_private(dir: &Path, metadata: &std::fs::Metadata, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me {
        bail!(
            "{what} {} belongs to another user (uid {}), not to the user running rekey (uid {me}): choose a state_dir of your own",
            dir.display(),
            metadata.uid()
        );
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o022 != 0 {
        bail!(
            "{what} {} can be written by group or others (mode {mode:03o}): rekey keeps new passwords there, so it refuses it; run chmod go-w {} or choose another state_dir",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path, _metadata: &std::fs::Metadata, _what: &str) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_state_directory_is_private_and_an_existing_one_is_left_alone() {
        let scratch = tempfile::tempdir().unwrap();
        let new = scratch.path().join("a/b/state");
        let state = StateDir::open(&new).unwrap();
        assert_eq!(mode(&new), 0o700);
        assert_eq!(mode(&scratch.path().join("a")), 0o700);
        let locks = state.subdir("locks").unwrap();
        assert_eq!(mode(&locks), 0o700);

        let shared = scratch.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        StateDir::open(&shared).unwrap();
        assert_eq!(
            mode(&shared),
            0o755,
            "an existing directory is never chmodded"
        );
    }

    #[test]
    fn a_directory_others_can_write_is_refused_and_untouched() {
        let scratch = tempfile::tempdir().unwrap();
        let open = scratch.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = StateDir::open(&open).unwrap_err().to_string();
        assert!(err.contains("written by group or others"), "{err}");
        assert!(err.contains(&open.display().to_string()), "{err}");
        assert_eq!(mode(&open), 0o777);
        assert!(std::fs::read_dir(&open).unwrap().next().is_none());

        let file = scratch.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(StateDir::open(&file).is_err());
    }
}
