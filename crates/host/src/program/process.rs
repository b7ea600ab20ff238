//! [`Process`]: one running connector program, its pipes, and the calls waiting
//! for its replies.
//!
//! Three threads of its own serve each program, so that neither a full pipe nor a
//! silent program can block rekey's async workers: one writes the queued lines to
//! its standard input, one reads its standard output and hands each reply to the
//! call waiting for it, one turns its standard error into log lines. When the
//! program dies, closes its output or writes something that is not a reply, every
//! call waiting for it fails at once as [`Cancelled`](ErrorKind::Cancelled),
//! naming the program and what it did, and so does every later call.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use rekey_abi::program::{Control, MAX_LINE, ReplyHeader, encode_line};
use rekey_abi::protocol::Status;
use rekey_api::{ConnectorError, ErrorKind};
use serde::Serialize;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::ProgramSpec;
use super::lines::LineReader;

/// How long a program has to exit after the shutdown message before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long a program that closed its output has to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The longest line of a program's standard error that is logged whole.
const MAX_LOG_LINE: usize = 4096;

/// The environment every program gets from rekey's own, besides the target's
/// `connector_env`.
const BASE_ENV: [&str; 3] = ["PATH", "HOME", "LANG"];

/// How a call ended, as the reader thread hands it over: the reply's status and
/// line, or why the program can no longer answer.
pub(super) type Answer = Result<(Status, Zeroizing<Vec<u8>>), ConnectorError>;

/// Who waits for a call's answer: an async call, or a blocking one (`describe`
/// and `create`, which the host makes from synchronous code).
enum Waiter {
    Async(oneshot::Sender<Answer>),
    Blocking(mpsc::SyncSender<Answer>),
}

impl Waiter {
    fn answer(self, answer: Answer) {
        // The caller may have stopped waiting; the answer is then dropped.
        match self {
            Waiter::Async(sender) => drop(sender.send(answer)),
            Waiter::Blocking(sender) => drop(sender.send(answer)),
        }
    }
}

#[derive(Default)]
struct Calls {
    waiting: HashMap<u64, Waiter>,
    /// Why the program can no longer answer, once it cannot.
    dead: Option<String>,
}

/// What the process handle shares with its threads.
struct Shared {
    /// `connector program PATH (target `t`, pid N)`, for messages.
    name: String,
    child: Mutex<Child>,
    calls: Mutex<Calls>,
}

/// A running connector program. Dropping it shuts the program down: the shutdown
/// message, then a few seconds to exit, then a kill.
pub(super) struct Process {
    shared: Arc<Shared>,
    lines: Option<mpsc::Sender<Zeroizing<Vec<u8>>>>,
    next_id: AtomicU64,
    /// Closed when the program's standard error has been read to its end.
    stderr_done: Mutex<mpsc::Receiver<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Process {
    /// Starts the program with a minimal environment and its pipes served.
    pub(super) fn spawn(spec: &ProgramSpec) -> Result<Process, String> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in BASE_ENV
            .iter()
            .copied()
            .chain(spec.env.iter().map(String::as_str))
        {
            match std::env::var_os(name) {
                Some(value) => {
                    command.env(name, value);
                }
                None if spec.env.iter().any(|n| n == name) => tracing::warn!(
                    "connector_env names {name}, which is not set: {} starts without it",
                    spec.describe()
                ),
                None => {}
            }
        }
        if let Some(dir) = &spec.dir {
            command.current_dir(dir);
        }
        // Its own process group: a Ctrl-C at the terminal reaches rekey alone, which
        // then lets the calls in flight finish before it shuts the program down.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|error| spawn_error(&error))?;
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
            stop(&mut child);
            return Err("started without its pipes".into());
        };
        let name = match &spec.target {
            Some(target) => format!(
                "{} (target `{target}`, pid {})",
                spec.describe(),
                child.id()
            ),
            None => format!("{} (pid {})", spec.describe(), child.id()),
        };
        let shared = Arc::new(Shared {
            name,
            child: Mutex::new(child),
            calls: Mutex::new(Calls::default()),
        });
        let (lines, queued) = mpsc::channel();
        let (stderr_done_tx, stderr_done) = mpsc::channel();
        let label = spec.target.clone().unwrap_or_default();
        let program = spec.program.display().to_string();
        let threads = [
            std::thread::Builder::new()
                .name("program-in".into())
                .spawn(move || write_lines(stdin, &queued)),
            {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("program-out".into())
                    .spawn(move || read_replies(&shared, stdout))
            },
            std::thread::Builder::new()
                .name("program-err".into())
                .spawn(move || {
                    log_stderr(stderr, &label, &program);
                    drop(stderr_done_tx);
                }),
        ];
        if let Some(error) = threads.into_iter().find_map(Result::err) {
            stop(&mut lock(&shared.child));
            return Err(format!("could not be served: {error}"));
        }
        Ok(Process {
            shared,
            lines: Some(lines),
            next_id: AtomicU64::new(1),
            stderr_done: Mutex::new(stderr_done),
        })
    }

    /// `connector program PATH (target `t`, pid N)`.
    pub(super) fn name(&self) -> &str {
        &self.shared.name
    }

    /// Sends `message` as a new call; its answer comes through the receiver.
    pub(super) fn call<M: Serialize + ?Sized>(
        &self,
        message: &M,
    ) -> Result<(u64, oneshot::Receiver<Answer>), ConnectorError> {
        let (sender, receiver) = oneshot::channel();
        let id = self.send(message, Waiter::Async(sender))?;
        Ok((id, receiver))
    }

    /// Sends `message` and waits for its answer, for at most `wait`; a program
    /// that does not answer in time is stopped.
    pub(super) fn call_blocking<M: Serialize + ?Sized>(
        &self,
        message: &M,
        what: &str,
        wait: Duration,
    ) -> Answer {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.send(message, Waiter::Blocking(sender))?;
        match receiver.recv_timeout(wait) {
            Ok(answer) => answer,
            Err(_) => {
                self.fail(
                    format!(
                        "gave no answer to `{what}` within {} s and was stopped",
                        wait.as_secs()
                    ),
                    true,
                );
                receiver
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_else(|_| Err(self.gone("stopped")))
            }
        }
    }

    fn send<M: Serialize + ?Sized>(
        &self,
        message: &M,
        waiter: Waiter,
    ) -> Result<u64, ConnectorError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = encode_line(id, message)?;
        let mut calls = lock(&self.shared.calls);
        if let Some(reason) = &calls.dead {
            return Err(ConnectorError::new(
                ErrorKind::Cancelled,
                format!("{reason}; the call was not sent"),
            ));
        }
        calls.waiting.insert(id, waiter);
        drop(calls);
        // If the writer is gone, the program is going too: the reader then fails
        // this call with the reason.
        if let Some(lines) = &self.lines {
            let _ = lines.send(line);
        }
        Ok(id)
    }

    /// Asks the program to cancel call `id`. Its answer, if any, still goes to
    /// whoever waits for it.
    pub(super) fn cancel(&self, id: u64) {
        if let (Some(lines), Ok(line)) = (&self.lines, encode_line(id, &Control::Cancel)) {
            let _ = lines.send(line);
        }
    }

    /// Stops waiting for call `id`, and asks the program to cancel it.
    pub(super) fn abandon(&self, id: u64) {
        if lock(&self.shared.calls).waiting.remove(&id).is_some() {
            self.cancel(id);
        }
    }

    /// Declares the program unable to answer: every waiting call fails with
    /// `what` (the program is killed if `kill`).
    pub(super) fn fail(&self, what: String, kill: bool) {
        self.shared.fail(what, kill);
    }

    /// Why the program can no longer answer, once it cannot.
    pub(super) fn dead(&self) -> Option<String> {
        lock(&self.shared.calls).dead.clone()
    }

    /// The error of a call to a program that is gone for `why`.
    fn gone(&self, why: &str) -> ConnectorError {
        ConnectorError::new(ErrorKind::Cancelled, format!("{} {why}", self.name()))
    }
}

impl Shared {
    /// Records why the program can no longer answer (the first reason wins) and
    /// fails every call waiting for it.
    fn fail(&self, what: String, kill: bool) {
        let waiting = {
            let mut calls = lock(&self.calls);
            if calls.dead.is_some() {
                return;
            }
            calls.dead = Some(format!("{} {what}", self.name));
            std::mem::take(&mut calls.waiting)
        };
        if kill {
            stop(&mut lock(&self.child));
        }
        let reason = format!(
            "{} {what} while the call was in flight: its outcome is unknown",
            self.name
        );
        for waiter in waiting.into_values() {
            waiter.answer(Err(ConnectorError::new(
                ErrorKind::Cancelled,
                reason.clone(),
            )));
        }
    }

    /// How the program ended, waiting for it for up to `grace`; one still running
    /// then is killed.
    fn ending(&self, grace: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + grace;
        loop {
            let mut child = lock(&self.child);
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < until => {}
                _ => {
                    stop(&mut child);
                    let _ = child.wait();
                    return None;
                }
            }
            drop(child);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let Some(lines) = self.lines.take() else {
            return;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(line) = encode_line(id, &Control::Shutdown) {
            let _ = lines.send(line);
        }
        // The writer ends once the queue is empty and closes the program's input.
        drop(lines);
        let already = lock(&self.shared.calls).dead.is_some();
        self.shared.fail("was shut down".into(), false);
        if self.shared.ending(SHUTDOWN_GRACE).is_none() && !already {
            tracing::warn!(
                "{} did not exit within {} s of the shutdown message; it was killed",
                self.shared.name,
                SHUTDOWN_GRACE.as_secs()
            );
        }
        // Let its last log lines through.
        let _ = lock(&self.stderr_done).recv_timeout(Duration::from_millis(500));
    }
}

/// The writer thread: queued lines to the program's input, until the queue closes
/// or the program stops reading.
fn write_lines(mut stdin: ChildStdin, queued: &mpsc::Receiver<Zeroizing<Vec<u8>>>) {
    for line in queued {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            // The program is gone or closed its input; the reader reports how.
            return;
        }
    }
}

/// The reader thread: each reply to the call waiting for it, until the program's
/// output ends or holds something that is not a reply.
fn read_replies(shared: &Shared, stdout: ChildStdout) {
    let mut lines = LineReader::new(stdout, MAX_LINE);
    loop {
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                shared.fail(
                    format!(
                        "wrote something that is not a protocol message to its standard output ({error}); it was stopped"
                    ),
                    true,
                );
                return;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let header: ReplyHeader = match serde_json::from_slice(&line) {
            Ok(header) => header,
            Err(error) => {
                shared.fail(
                    format!(
                        "wrote something that is not a protocol message to its standard output ({}); it was stopped (a connector program writes only protocol messages there, and its logs to standard error)",
                        rekey_abi::json_error_position(&error)
                    ),
                    true,
                );
                return;
            }
        };
        let waiter = lock(&shared.calls).waiting.remove(&header.id);
        match waiter {
            Some(waiter) => waiter.answer(Ok((header.status, line))),
            None => tracing::trace!(
                id = header.id,
                "a reply to a call no longer waited for (cancelled)"
            ),
        }
    }
    let what = match shared.ending(EXIT_GRACE) {
        Some(status) => describe_exit(status),
        None => "closed its standard output and was stopped".to_owned(),
    };
    shared.fail(what, false);
}

/// The stderr thread: each line a log event, labelled with the target.
fn log_stderr(stderr: ChildStderr, target: &str, program: &str) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader
            .by_ref()
            .take(MAX_LOG_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if !text.is_empty() {
            tracing::info!(target: "rekey::program", target, program, "{text}");
        }
    }
}

/// Kills the program, and on Unix whatever it started in its process group (the
/// interpreter a wrapper script runs), so that its pipes close.
fn stop(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(None) = child.try_wait() {
        // Not reaped yet, so its id is still its own and names its group.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::KILL,
        );
    }
    let _ = child.kill();
}

/// Why a program could not be started.
fn spawn_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "does not exist".into(),
        std::io::ErrorKind::PermissionDenied => {
            "cannot be run: permission denied (is it executable? chmod +x)".into()
        }
        // ENOEXEC: neither a binary of this system nor a script with a `#!` line.
        _ if error.raw_os_error() == Some(8) => {
            format!("cannot be run: {error} (a script needs a #! line naming its interpreter)")
        }
        _ => format!("cannot be started: {error}"),
    }
}

/// `exited with status 1`, `was killed by signal 9 (SIGKILL)`.
fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        let name = match signal {
            1 => " (SIGHUP)",
            2 => " (SIGINT)",
            6 => " (SIGABRT)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            13 => " (SIGPIPE)",
            15 => " (SIGTERM)",
            _ => "",
        };
        return format!("was killed by signal {signal}{name}");
    }
    format!("ended ({status})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn exits_are_described_with_their_status_or_signal() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_exit(ExitStatus::from_raw(1 << 8)),
            "exited with status 1"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "was killed by signal 9 (SIGKILL)"
        );
    }
}
