//! Handing a job's results over: one function renders a user's row, whether the
//! row is written live as the user is settled or when the whole file is rewritten
//! from the journal (at resume, at discard, after a stop).

use std::borrow::Cow;
use std::io;

use anyhow::{Context as _, bail};
use rekey_api::CredentialKind;
use rekey_policy::begins_formula;

use crate::definition::Output;
use crate::engine::{UserRecord, UserState};
use crate::journal::Journal;
use crate::results::{FileIdentity, ResultRow, ResultsWriter, Status, files_aside};

/// The detail of a user whose outcome was unknown when its job was discarded.
pub const DISCARDED_UNKNOWN: &str =
    "outcome unknown: the job was discarded before it was settled; this password may be in effect";

/// The detail of a user never attempted in a discarded job.
pub const DISCARDED_UNTRIED: &str = "not attempted: the job was discarded";

/// How users still pending are shown.
#[derive(Debug, Clone, Copy)]
pub enum Pending<'a> {
    /// The job stopped, for this reason: resuming it settles them.
    Stopped(&'a str),
    /// The job is being discarded.
    Discarded,
}

/// Writes `user`'s row: the one place that decides what a row says.
pub fn write_row(
    writer: &mut ResultsWriter,
    target: &str,
    kind: CredentialKind,
    user: &UserRecord,
    pending: Pending<'_>,
) -> io::Result<()> {
    let password = user.password.as_ref();
    // A planned user has no password yet. One that has (a state code no rekey
    // writes reads as planned) may have been sent it: the reading that loses
    // nothing is an unknown outcome, with the password handed over.
    let state = match (user.state, password) {
        (UserState::Planned, Some(_)) => UserState::Sending,
        (state, _) => state,
    };
    let (status, password, detail): (_, _, Cow<'_, str>) = match (state, pending) {
        (UserState::Reset, _) => (Status::Reset, password, (&user.detail).into()),
        (UserState::Failed, _) => (Status::Failed, password, (&user.detail).into()),
        (UserState::SetAside, _) => (Status::Skipped, None, (&user.detail).into()),
        (UserState::Planned, Pending::Stopped(reason)) => (
            Status::Skipped,
            None,
            format!("not attempted: the job stopped ({reason}); resume it to finish").into(),
        ),
        (UserState::Planned, Pending::Discarded) => {
            (Status::Skipped, None, DISCARDED_UNTRIED.into())
        }
        // The request may have left: the password may be in effect, so it is
        // handed over.
        (UserState::Sending, Pending::Stopped(reason)) => (
            Status::Skipped,
            password,
            match password {
                Some(_) => format!(
                    "outcome unknown: the job stopped ({reason}); this password may now be in effect; resume the job to settle it"
                ),
                None => format!(
                    "outcome unknown: the job stopped ({reason}); the vendor may have set a new password; resume the job to settle it"
                ),
            }
            .into(),
        ),
        (UserState::Sending, Pending::Discarded) => {
            (Status::Failed, password, DISCARDED_UNKNOWN.into())
        }
    };
    if password.is_some_and(|p| begins_formula(p.expose())) {
        // Only a vendor that sets the password in place and returns it can get
        // here (rekey's own, known and vendor-made values never begin so): the
        // password is in effect and is kept exactly, whatever a spreadsheet does
        // with it.
        tracing::warn!(
            target = target,
            user = %user.user.escape_debug(),
            "the password the vendor set begins with =, +, - or @: it is written exactly, and a spreadsheet opening the results may take it for a formula; open the file as text"
        );
    }
    writer.write(&ResultRow {
        target,
        user: &user.user,
        kind,
        status,
        password,
        detail: &detail,
    })
}

/// Creates a new job's results (a new private file, or standard output),
/// encrypted if the job has recipients.
pub fn create(output: &Output) -> anyhow::Result<ResultsWriter> {
    match &output.path {
        Some(path) => ResultsWriter::create(path, output.format, &output.recipients)
            .with_context(|| format!("cannot create the results file {}", path.display())),
        None => Ok(ResultsWriter::stdout(output.format, &output.recipients)?),
    }
}

/// Refuses to go on if the job's results file was replaced by another file:
/// rekey only ever replaces the file the job created. An unfinished file the job
/// was writing aside when its process died (encrypted results are moved into
/// place only when whole) is removed: the rewrite replaces it.
pub fn check_owned(
    output: &Output,
    created: Option<FileIdentity>,
    job: &str,
) -> anyhow::Result<()> {
    let Some(path) = &output.path else {
        return Ok(());
    };
    let found = FileIdentity::of(path)
        .with_context(|| format!("cannot look at the results file {}", path.display()))?;
    match found {
        None => {
            for aside in files_aside(path) {
                if created.is_some() && FileIdentity::of(&aside).ok().flatten() == created {
                    let _ = std::fs::remove_file(&aside);
                }
            }
            Ok(())
        }
        Some(found) if Some(found) == created => Ok(()),
        Some(_) => bail!(
            "{} is not the results file job {job} wrote (it was replaced, or written by something else), and rekey never replaces another file: move it away, then run the command again",
            path.display()
        ),
    }
}

/// Writes the whole results file from the journal: for a file, aside (a private
/// temporary file next to it), synced, then moved over it; or standard output.
/// Returns the identity of the file written.
pub async fn rewrite(
    journal: &Journal,
    job: &str,
    kind: CredentialKind,
    output: &Output,
    pending: Pending<'_>,
) -> anyhow::Result<Option<FileIdentity>> {
    let mut writer = match &output.path {
        Some(path) => ResultsWriter::replace(path, output.format, &output.recipients)
            .with_context(|| format!("cannot write the results beside {}", path.display()))?,
        None => ResultsWriter::stdout(output.format, &output.recipients)?,
    };
    let identity = writer.identity();
    // Should this fail, the writer is dropped unfinished, and what it wrote aside
    // with it.
    write_users(journal, job, kind, &mut writer, |_| true, pending).await?;
    writer.finish().with_context(|| match &output.path {
        Some(path) => format!("cannot move the results into {}", path.display()),
        None => "cannot write the results to standard output".to_owned(),
    })?;
    Ok(identity)
}

/// Writes the rows of the users matching `which`, in plan order (a new job's
/// set-aside users at its start; its pending users when it stops).
pub async fn write_users(
    journal: &Journal,
    job: &str,
    kind: CredentialKind,
    writer: &mut ResultsWriter,
    which: fn(UserState) -> bool,
    pending: Pending<'_>,
) -> anyhow::Result<()> {
    journal
        .for_each_user(job, |target, user| {
            if which(user.state) {
                write_row(writer, target, kind, &user, pending)?;
            }
            Ok(())
        })
        .await
}
