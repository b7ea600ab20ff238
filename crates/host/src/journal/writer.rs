//! The journal's writer thread: one SQLite connection, group commits.
//!
//! Every operation is a closure queued to one thread that owns the connection. The
//! thread takes everything queued, runs it in one transaction, commits (one fsync
//! for all of it), and only then tells each caller its result. So many workers'
//! intents share one commit, the journal does not cap throughput, and no caller
//! hears "durable" before the commit that made it so.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

/// What an operation produced, handed back to its caller after the commit.
type Value = Box<dyn Any + Send>;

/// An operation inside a group transaction, and what to do with its result once
/// that transaction has committed (or failed).
struct Write {
    run: Box<Run>,
    done: Box<dyn FnOnce(Result<Value, String>) + Send>,
    /// Whether the caller waits for this write to be on disk (synced), not just
    /// committed.
    durable: bool,
}

/// The body of a [`Write`].
type Run = dyn FnOnce(&Transaction<'_>) -> Result<Value, String> + Send;

/// An operation outside any transaction (VACUUM, checkpoints).
type Maintenance = Box<dyn FnOnce(&mut Connection) -> Result<(), String> + Send>;

enum Op {
    Write(Write),
    Maintenance(Maintenance, oneshot::Sender<Result<(), String>>),
}

/// The most operations folded into one transaction.
const MAX_GROUP: usize = 8192;

/// A handle on the writer thread.
pub(crate) struct Writer {
    sender: Mutex<Option<mpsc::Sender<Op>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The first failure of a fire-and-forget write, reported by the next flush.
    failure: Arc<Mutex<Option<String>>>,
    /// Commits made with `synchronous = FULL` in effect, read back inside the
    /// transaction: what tells that a durable write really was synced.
    synced_commits: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts the thread with `connection`.
    pub(crate) fn start(mut connection: Connection) -> Writer {
        let (sender, receiver) = mpsc::channel::<Op>();
        let synced_commits = Arc::new(AtomicUsize::new(0));
        let synced = Arc::clone(&synced_commits);
        let thread = std::thread::Builder::new()
            .name("rekey-journal".into())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    let mut ops = vec![first];
                    while ops.len() < MAX_GROUP {
                        match receiver.try_recv() {
                            Ok(op) => ops.push(op),
                            Err(_) => break,
                        }
                    }
                    run_group(&mut connection, ops, &synced);
                }
            })
            .expect("cannot start the journal thread");
        Writer {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            failure: Arc::new(Mutex::new(None)),
            synced_commits,
        }
    }

    /// How many commits so far were made with `synchronous = FULL` in effect.
    pub(crate) fn synced_commits(&self) -> usize {
        self.synced_commits.load(Ordering::SeqCst)
    }

    fn send(&self, op: Op) -> anyhow::Result<()> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        sender
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the journal is closed"))?
            .send(op)
            .map_err(|_| anyhow::anyhow!("the journal's writer stopped"))
    }

    /// Runs `work` in the next group transaction and returns its value once that
    /// transaction has committed and is synced to disk.
    pub(crate) async fn call<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.submit(work, true).await
    }

    /// Runs a query in the next group transaction, after everything queued before
    /// it, without asking for a sync to disk.
    pub(crate) async fn read<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.submit(work, false).await
    }

    async fn submit<T, F>(&self, work: F, durable: bool) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, String>>();
        self.send(Op::Write(Write {
            run: Box::new(move |tx| {
                work(tx)
                    .map(|v| Box::new(v) as Value)
                    .map_err(|e| e.to_string())
            }),
            durable,
            done: Box::new(move |result| {
                let result = result.map(|value| {
                    *value
                        .downcast::<T>()
                        .expect("an operation's value has the type its caller asked for")
                });
                let _ = reply.send(result);
            }),
        }))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the journal's writer stopped"))?
            .map_err(|e| anyhow::anyhow!("journal: {e}"))
    }

    /// Queues `work` without waiting; a failure is reported by the next
    /// [`flush`](Self::flush). Its commit is not synced to disk by itself: it
    /// survives a crash of rekey at once, and a power loss once the next durable
    /// write (or flush) syncs the log.
    pub(crate) fn enqueue<F>(&self, work: F)
    where
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<()> + Send + 'static,
    {
        let failure = Arc::clone(&self.failure);
        let queued = self.send(Op::Write(Write {
            run: Box::new(move |tx| {
                work(tx)
                    .map(|()| Box::new(()) as Value)
                    .map_err(|e| e.to_string())
            }),
            durable: false,
            done: Box::new(move |result| {
                if let Err(error) = result {
                    failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(error);
                }
            }),
        }));
        if let Err(error) = queued {
            self.failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(error.to_string());
        }
    }

    /// Waits until everything queued so far is committed; fails if any of it failed.
    pub(crate) async fn flush(&self) -> anyhow::Result<()> {
        self.call(|_| Ok(())).await?;
        match self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            Some(error) => Err(anyhow::anyhow!("journal: {error}")),
            None => Ok(()),
        }
    }

    /// Runs `work` outside any transaction, after everything queued before it.
    pub(crate) async fn maintenance<F>(&self, work: F) -> anyhow::Result<()>
    where
        F: FnOnce(&mut Connection) -> Result<(), String> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Maintenance(Box::new(work), reply))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the journal's writer stopped"))?
            .map_err(|e| anyhow::anyhow!("journal: {e}"))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after it has committed what is queued.
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

/// Runs one operation inside the group's transaction in a savepoint of its own, so
/// that an operation that fails changes nothing, whatever the others do.
fn run_atomically(tx: &Transaction<'_>, run: Box<Run>) -> Result<Value, String> {
    let statement = |sql: &str| -> Result<(), String> {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    statement("SAVEPOINT op")?;
    let result = run(tx);
    let ended = match &result {
        Ok(_) => statement("RELEASE op"),
        Err(_) => statement("ROLLBACK TO op").and_then(|()| statement("RELEASE op")),
    };
    match ended {
        Ok(()) => result,
        Err(error) => Err(result.err().unwrap_or(error)),
    }
}

/// Runs queued operations: writes in group transactions, maintenance on its own,
/// keeping their order.
fn run_group(connection: &mut Connection, ops: Vec<Op>, synced: &AtomicUsize) {
    let mut writes: Vec<Write> = Vec::new();
    for op in ops {
        match op {
            Op::Write(write) => writes.push(write),
            Op::Maintenance(work, reply) => {
                commit_writes(connection, std::mem::take(&mut writes), synced);
                let _ = reply.send(work(connection));
            }
        }
    }
    commit_writes(connection, writes, synced);
}

fn commit_writes(connection: &mut Connection, writes: Vec<Write>, synced: &AtomicUsize) {
    if writes.is_empty() {
        return;
    }
    // A group is synced to disk only when some caller waits for that; a sync also
    // covers every commit before it in the write-ahead log.
    let durable = writes.iter().any(|w| w.durable);
    let synchronous = if durable { "FULL" } else { "NORMAL" };
    if let Err(error) = connection.pragma_update(None, "synchronous", synchronous) {
        for write in writes {
            (write.done)(Err(error.to_string()));
        }
        return;
    }
    // IMMEDIATE: the write lock is taken up front, waiting (busy timeout) for
    // another rekey that holds it, instead of failing when a read turns into a write
    // after that rekey committed.
    let tx = match connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            for write in writes {
                (write.done)(Err(error.to_string()));
            }
            return;
        }
    };
    let results: Vec<_> = writes
        .into_iter()
        .map(|w| (w.done, run_atomically(&tx, w.run)))
        .collect();
    let full_sync = tx
        .pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0))
        .is_ok_and(|level| level >= 2);
    let commit = tx.commit().map_err(|e| e.to_string());
    if full_sync && commit.is_ok() {
        synced.fetch_add(1, Ordering::SeqCst);
    }
    for (done, result) in results {
        done(match (result, &commit) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(error), _) => Err(error),
            (Ok(_), Err(error)) => Err(error.clone()),
        });
    }
}
