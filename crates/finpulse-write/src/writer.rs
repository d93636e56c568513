//! The single writer: one thread owns the [`EventStore`]; batches queue to it and are made
//! durable together (group commit: one fsync for everything queued since the last one), then
//! applied by every [`CommitConsumer`] in log order.

use finpulse_core::registry::CustomTypeDef;
use finpulse_core::{Event, TypeId, ValidationLimits};
use finpulse_ingest::{Chunk, Decoded, Position, Rejection};
use finpulse_log::{AppendStatus, CompactionReport, EventStore, PreparedEvents, Preparer, StoreError, StoreStats, ViewHandle};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most append requests one group commit takes.
pub const GROUP_COMMIT_REQUESTS_MAX: usize = 256;
/// The most events one group commit takes.
pub const GROUP_COMMIT_EVENTS_MAX: usize = 200_000;
/// How long the writer waits for work before it looks whether a scheduled compaction is due.
pub const WRITER_IDLE_CHECK: Duration = Duration::from_millis(500);

/// Something that follows the log: it is handed every batch the writer committed, after the
/// fsync, in log order, on the writer thread, and nowhere else.
///
/// `statuses[i]` says whether `events[i]` was stored ([`AppendStatus::Accepted`]) or was a
/// duplicate of an event stored before (not stored again): a consumer applies the accepted ones
/// only. Keep `apply` short (it delays the next commit) and never let it fail half-way: a panic
/// stops the process (see the crate's documentation).
pub trait CommitConsumer: Send + Sync {
    /// Applies one committed batch.
    fn apply(&self, events: &[Event], statuses: &[AppendStatus]);
}

/// Events prepared for the log, with the events themselves for the consumers (a writer
/// without consumers needs only the prepared parts: see [`Batch::in_parts`]).
pub struct Batch {
    parts: Vec<PreparedEvents>,
    events: Option<Arc<Vec<Event>>>,
}

impl Batch {
    /// Prepares `events` on this thread as one group; a small group (a decision and its
    /// record) is left for the writer to build into its commit's tail batch
    /// ([`Preparer::prepare_shared`]).
    /// Fails only when the directory's keys cannot be made or used
    /// ([`finpulse_log::StoreError::Seal`]).
    pub fn shared(preparer: &Preparer, events: Arc<Vec<Event>>) -> Result<Self, StoreError> {
        let parts = vec![preparer.prepare_shared(events.clone())?];
        Ok(Self { parts, events: Some(events) })
    }

    /// Prepares `events` as `parts` groups in input order, one thread each (large imports).
    /// The events themselves are kept only when `keep_events`: a writer with consumers
    /// ([`Writer::has_consumers`]) needs them; without, a bulk import holds only the encoded
    /// frames and tail rows while its batches wait for the log. Handing a batch without its
    /// events to a writer with consumers is a programming error (the writer stops).
    pub fn in_parts(preparer: &Preparer, events: Vec<Event>, parts: usize, keep_events: bool) -> Result<Self, StoreError> {
        let prepared = preparer.prepare_in_parts(&events, parts)?;
        Ok(Self { parts: prepared, events: keep_events.then(|| Arc::new(events)) })
    }

    /// Stores the events after the first only if the first is new: records about the first,
    /// such as a decision on a transaction, never outlive it. Only for a batch of one group
    /// ([`Batch::shared`]).
    pub fn following_the_first(mut self) -> Self {
        assert_eq!(self.parts.len(), 1, "following_the_first is for a batch prepared as one group");
        self.parts = self.parts.into_iter().map(PreparedEvents::following_the_first).collect();
        self
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.parts.iter().map(PreparedEvents::len).sum()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(PreparedEvents::is_empty)
    }

    /// The events, in input order (`None` when [`Batch::in_parts`] did not keep them).
    pub fn events(&self) -> Option<&Arc<Vec<Event>>> {
        self.events.as_ref()
    }
}

/// Records validated and prepared for the writer: the valid ones as a batch, the others with
/// where and why they were refused.
pub struct Submission {
    /// The valid records, prepared.
    pub batch: Batch,
    /// The refused records, in input order.
    pub rejected: Vec<Rejection>,
}

impl Submission {
    /// Validates decoded records (an HTTP body) and prepares the valid ones as one group. An
    /// erased user's records are refused, by position.
    pub fn records(preparer: &Preparer, decoded: Vec<Decoded>, limits: &ValidationLimits) -> Result<Self, StoreError> {
        let mut validated = finpulse_ingest::validate(preparer.registry(), decoded, limits);
        refuse_erased(preparer, &mut validated);
        let events = Arc::new(std::mem::take(&mut validated.events));
        Ok(Self { batch: Batch::shared(preparer, events)?, rejected: validated.rejected })
    }

    /// Validates a chunk of a file and prepares the valid records in `parts` groups, one
    /// thread each; the events themselves are kept only when `keep_events` (a writer with
    /// consumers needs them).
    pub fn chunk(
        preparer: &Preparer,
        chunk: Chunk,
        limits: &ValidationLimits,
        parts: usize,
        keep_events: bool,
    ) -> Result<Self, StoreError> {
        let mut validated = finpulse_ingest::validate_chunk(preparer.registry(), chunk, limits);
        refuse_erased(preparer, &mut validated);
        Ok(Self { batch: Batch::in_parts(preparer, validated.events, parts, keep_events)?, rejected: validated.rejected })
    }
}

/// Moves an erased user's events to the refused records: PIPL erasure is not undone by an event
/// that arrives later (a retry, a late feed), and a fresh key would make a new, silent profile
/// of someone who asked to be forgotten. Their position and the reason go back to the sender.
fn refuse_erased(preparer: &Preparer, validated: &mut finpulse_ingest::Validated) {
    if !validated.events.iter().any(|e| e.user_id.as_deref().is_some_and(|u| preparer.is_erased(u))) {
        return;
    }
    let events = std::mem::take(&mut validated.events);
    let positions = std::mem::take(&mut validated.positions);
    for (event, position) in events.into_iter().zip(positions) {
        match event.user_id.as_deref().filter(|u| preparer.is_erased(u)) {
            Some(user) => validated.rejected.push(finpulse_ingest::Rejection {
                position,
                field: Some("user_id".into()),
                message: format!("user '{user}' was erased (PIPL Art. 47); events for an erased user are not stored"),
            }),
            None => {
                validated.events.push(event);
                validated.positions.push(position);
            }
        }
    }
    validated.rejected.sort_by_key(|r| match r.position {
        Position::Index(i) | Position::Line(i) | Position::CsvLine(i) | Position::Row(i) => i,
    });
}

/// How the writer runs.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Requests waiting for the writer; [`Writer::append`] refuses beyond.
    pub queue_depth: usize,
    /// A non-empty tail is compacted at least this often, even below the store's size limit.
    pub compact_every: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { queue_depth: 1024, compact_every: Duration::from_secs(300) }
    }
}

type Reply<T> = oneshot::Sender<Result<T, String>>;

/// A request of a group commit: how many prepared groups are its, its events, its reply.
type Pending = (usize, Option<Arc<Vec<Event>>>, Reply<Vec<AppendStatus>>);

enum Request {
    Append(Batch, Reply<Vec<AppendStatus>>),
    Register(CustomTypeDef, Reply<TypeId>),
    Compact(Reply<CompactionReport>),
    Stats(Reply<StoreStats>),
}

/// A handle to the writer thread; cheap to clone. The thread stops once every handle is gone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::SyncSender<Request>,
    queue_depth: usize,
    views: ViewHandle,
    has_consumers: bool,
}

/// The writer is gone, its queue is full, or the store refused.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The queue is at its depth limit: back off and retry.
    #[error("the write queue is full ({0} requests); retry later")]
    QueueFull(usize),
    /// The writer stopped.
    #[error("the writer has stopped")]
    Stopped,
    /// The store refused.
    #[error("{0}")]
    Store(String),
}

/// The writer thread; [`WriterThread::join`] gives the store back once every [`Writer`] handle
/// is dropped.
pub struct WriterThread(std::thread::JoinHandle<EventStore>);

impl WriterThread {
    /// Waits for the writer to stop (every handle dropped) and returns its store.
    pub fn join(self) -> Result<EventStore, WriterError> {
        self.0.join().map_err(|_| WriterError::Stopped)
    }
}

/// Stops the process when the thread holding it unwinds from a panic: see the crate's
/// documentation for why a writer that panicked must not go on.
struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the writer thread panicked; stopping the process (a start rebuilds everything from the log)");
            eprintln!("finpulse: the writer thread panicked; stopping the process (a start rebuilds everything from the log)");
            std::process::abort();
        }
    }
}

impl Writer {
    /// Starts the writer thread over `store`; `consumers` are handed every committed batch.
    pub fn start(store: EventStore, opts: WriterOptions, consumers: Vec<Arc<dyn CommitConsumer>>) -> (Self, WriterThread) {
        let (tx, rx) = mpsc::sync_channel::<Request>(opts.queue_depth);
        let views = store.view_handle();
        let has_consumers = !consumers.is_empty();
        let handle = std::thread::Builder::new()
            .name("finpulse-writer".into())
            .spawn(move || {
                let _abort_on_panic = AbortOnPanic;
                let mut store = store;
                run(&mut store, &rx, opts, &consumers);
                tracing::info!("writer stopped");
                store
            })
            .expect("spawning the writer thread");
        (Self { tx, queue_depth: opts.queue_depth, views, has_consumers }, WriterThread(handle))
    }

    /// Whether committed events are handed to consumers (then every batch must keep its
    /// events).
    pub fn has_consumers(&self) -> bool {
        self.has_consumers
    }

    /// The store's current view, for readers and preparers.
    pub fn views(&self) -> &ViewHandle {
        &self.views
    }

    /// A preparer for the registry in force.
    pub fn preparer(&self) -> Preparer {
        self.views.preparer()
    }

    /// Queues a request and waits for its answer; a full queue is refused at once
    /// ([`WriterError::QueueFull`]): a request answers "retry later" rather than wait.
    async fn ask<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, WriterError> {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send(request(tx)).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => WriterError::QueueFull(self.queue_depth),
            mpsc::TrySendError::Disconnected(_) => WriterError::Stopped,
        })?;
        rx.await.map_err(|_| WriterError::Stopped)?.map_err(WriterError::Store)
    }

    /// Queues a request from a thread outside the async runtime, waiting for room in the
    /// queue (back-pressure for imports), then for its answer.
    fn ask_blocking<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, WriterError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(request(tx)).map_err(|_| WriterError::Stopped)?;
        rx.blocking_recv().map_err(|_| WriterError::Stopped)?.map_err(WriterError::Store)
    }

    /// Appends a batch; resolves once it is durable and every consumer has applied it.
    pub async fn append(&self, batch: Batch) -> Result<Vec<AppendStatus>, WriterError> {
        self.ask(|reply| Request::Append(batch, reply)).await
    }

    /// Appends a batch from a thread outside the async runtime (see [`Writer::append`]).
    pub fn append_blocking(&self, batch: Batch) -> Result<Vec<AppendStatus>, WriterError> {
        self.ask_blocking(|reply| Request::Append(batch, reply))
    }

    /// Registers a custom event type.
    pub async fn register(&self, def: CustomTypeDef) -> Result<TypeId, WriterError> {
        self.ask(|reply| Request::Register(def, reply)).await
    }

    /// Compacts the tail now.
    pub async fn compact(&self) -> Result<CompactionReport, WriterError> {
        self.ask(Request::Compact).await
    }

    /// Compacts the tail now, from a thread outside the async runtime.
    pub fn compact_blocking(&self) -> Result<CompactionReport, WriterError> {
        self.ask_blocking(Request::Compact)
    }

    /// Store counters.
    pub async fn stats(&self) -> Result<StoreStats, WriterError> {
        self.ask(Request::Stats).await
    }
}

/// The writer thread's loop, until every handle is dropped.
fn run(store: &mut EventStore, rx: &mpsc::Receiver<Request>, opts: WriterOptions, consumers: &[Arc<dyn CommitConsumer>]) {
    let mut last_compaction = Instant::now();
    loop {
        let first = match rx.recv_timeout(WRITER_IDLE_CHECK) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if last_compaction.elapsed() >= opts.compact_every && store.stats().tail_events > 0 {
                    if let Err(e) = store.compact() {
                        tracing::error!(error = %e, "scheduled compaction failed");
                    }
                    last_compaction = Instant::now();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut appends: Vec<(Batch, Reply<Vec<AppendStatus>>)> = Vec::new();
        let mut events = 0;
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Append(batch, reply) => {
                    events += batch.len();
                    appends.push((batch, reply));
                }
                Request::Register(def, reply) => {
                    let _ = reply.send(store.register_type(def).map_err(|e| e.to_string()));
                }
                Request::Compact(reply) => {
                    last_compaction = Instant::now();
                    let _ = reply.send(store.compact().map_err(|e| e.to_string()));
                }
                Request::Stats(reply) => {
                    let _ = reply.send(Ok(store.stats()));
                }
            }
            if appends.len() < GROUP_COMMIT_REQUESTS_MAX && events < GROUP_COMMIT_EVENTS_MAX {
                next = rx.try_recv().ok();
            }
        }
        if !appends.is_empty() {
            commit(store, appends, consumers);
        }
    }
}

/// One group commit: every queued batch in one append and fsync, then the consumers, then the
/// answers.
fn commit(store: &mut EventStore, appends: Vec<(Batch, Reply<Vec<AppendStatus>>)>, consumers: &[Arc<dyn CommitConsumer>]) {
    let mut groups = Vec::new();
    // Per request: how many of `groups` are its parts, its events (for the consumers), its reply.
    let mut pending: Vec<Pending> = Vec::with_capacity(appends.len());
    for (batch, reply) in appends {
        // A batch the log cannot take is refused alone, not with everyone in its commit.
        if let Err(e) = batch.parts.iter().try_for_each(PreparedEvents::check_record_sizes) {
            let _ = reply.send(Err(e.to_string()));
            continue;
        }
        assert!(consumers.is_empty() || batch.events.is_some(), "a batch prepared without its events reached a writer with consumers");
        pending.push((batch.parts.len(), batch.events, reply));
        groups.extend(batch.parts);
    }
    if pending.is_empty() {
        return;
    }
    let started = Instant::now();
    let stored = store.append_prepared(&groups);
    // Every request in the group waited this long for the log (write, fdatasync and the
    // tail), whether on the disk or for a core.
    metrics::histogram!("finpulse_log_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("finpulse_log_commit_requests").record(pending.len() as f64);
    match stored {
        Ok(statuses) => {
            let mut statuses = statuses.into_iter();
            for (parts, events, reply) in pending {
                let status: Vec<AppendStatus> = statuses.by_ref().take(parts).flatten().collect();
                if let Some(events) = events {
                    debug_assert_eq!(status.len(), events.len(), "one status per event of a batch");
                    for consumer in consumers {
                        consumer.apply(&events, &status);
                    }
                }
                let _ = reply.send(Ok(status));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for (_, _, reply) in pending {
                let _ = reply.send(Err(msg.clone()));
            }
        }
    }
}
