//! One process at a time per job: an operating-system lock on a file per job in
//! the state directory, held for the whole run and released by the kernel when
//! the process ends, however it ends (`kill -9` included).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, anyhow};

use crate::state::StateDir;

/// A held job lock.
#[derive(Debug)]
pub struct JobLock {
    file: File,
    path: PathBuf,
}

/// Why a job's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("job {job} is running ({holder}); wait for it to end, or stop it first")]
    Running {
        /// The job.
        job: String,
        /// `pid N`, or what is known of the holder.
        holder: String,
    },
    /// The lock file could not be used.
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

impl JobLock {
    /// Takes job `job`'s lock without waiting, and writes this process's id in it.
    pub fn acquire(state: &StateDir, job: &str) -> Result<JobLock, LockError> {
        let path = state.subdir("locks")?.join(format!("{job}.lock"));
        let mut file = open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Running {
                    job: job.to_owned(),
                    holder: holder(&mut file),
                });
            }
            Err(TryLockError::Error(error)) => {
                return Err(LockError::Io(
                    anyhow!(error).context(format!("cannot lock job {job} ({})", path.display())),
                ));
            }
        }
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()));
        written.with_context(|| format!("cannot write the job lock {}", path.display()))?;
        Ok(JobLock { file, path })
    }

    /// Whether another process holds job `job`'s lock (`pid N` if so). Never waits.
    pub fn holder_of(state: &StateDir, job: &str) -> Option<String> {
        let path = state.path().join("locks").join(format!("{job}.lock"));
        let mut file = File::open(&path).ok()?;
        match file.try_lock_shared() {
            Err(TryLockError::WouldBlock) => Some(holder(&mut file)),
            _ => None,
        }
    }

    /// Releases the lock of a job that is over, removing its file. (A process that
    /// opened the file just before sees the job closed once it has the lock.)
    pub fn release_closed(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file);
    }
}

fn open(path: &std::path::Path) -> anyhow::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("cannot open the job lock {}", path.display()))
}

fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim().parse::<u32>() {
        Ok(pid) => format!("pid {pid}"),
        Err(_) => "by another rekey".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_locked_by_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        assert_eq!(JobLock::holder_of(&state, "j1"), None);
        let lock = JobLock::acquire(&state, "j1").unwrap();
        let pid = format!("pid {}", std::process::id());
        // Locks are per open file: a second open in this process conflicts, as
        // another process would.
        match JobLock::acquire(&state, "j1") {
            Err(LockError::Running { holder, .. }) => assert_eq!(holder, pid),
            other => panic!("{other:?}"),
        }
        assert_eq!(JobLock::holder_of(&state, "j1"), Some(pid));
        JobLock::acquire(&state, "j2").unwrap();
        drop(lock);
        assert_eq!(JobLock::holder_of(&state, "j1"), None);
        let again = JobLock::acquire(&state, "j1").unwrap();
        again.release_closed();
        assert!(!state.path().join("locks/j1.lock").exists());
    }
}
