//! The single writer: one thread owns the [`EventStore`]; requests queue to it and are made
//! durable together (group commit: one fsync for everything queued since the last one).

use finpulse_core::registry::CustomTypeDef;
use finpulse_core::{Event, TypeId};
use finpulse_log::{AppendStatus, CompactionReport, EventStore, PreparedEvents, StoreStats};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most append requests one group commit takes.
pub const GROUP_COMMIT_REQUESTS_MAX: usize = 256;
/// The most events one group commit takes.
pub const GROUP_COMMIT_EVENTS_MAX: usize = 200_000;

enum Request {
    /// Events to store, prepared, and the events themselves for the live state to apply.
    Append(PreparedEvents, Arc<Vec<Event>>, oneshot::Sender<Result<Vec<AppendStatus>, String>>),
    Register(CustomTypeDef, oneshot::Sender<Result<TypeId, String>>),
    Compact(oneshot::Sender<Result<CompactionReport, String>>),
    Stats(oneshot::Sender<StoreStats>),
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::SyncSender<Request>,
    queue_depth: usize,
}

/// The writer is gone or its queue is full.
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

impl Writer {
    /// Starts the writer thread. `queue_depth` bounds the requests waiting; `compact_every`
    /// compacts a non-empty tail that long after the last compaction, even below the size limit.
    pub fn start(
        mut store: EventStore,
        queue_depth: usize,
        compact_every: Duration,
        live: Arc<crate::risk::Live>,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::sync_channel::<Request>(queue_depth);
        let handle = std::thread::Builder::new()
            .name("finpulse-writer".into())
            .spawn(move || {
                let mut last_compaction = Instant::now();
                loop {
                    let first = match rx.recv_timeout(Duration::from_millis(500)) {
                        Ok(r) => r,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if last_compaction.elapsed() >= compact_every && store.stats().tail_events > 0 {
                                if let Err(e) = store.compact() {
                                    tracing::error!(error = %e, "scheduled compaction failed");
                                }
                                last_compaction = Instant::now();
                            }
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    let mut appends = Vec::new();
                    let mut events = 0;
                    let mut next = Some(first);
                    while let Some(req) = next.take() {
                        match req {
                            Request::Append(batch, plain, reply) => {
                                events += batch.len();
                                appends.push((batch, (plain, reply)));
                            }
                            Request::Register(def, reply) => {
                                let _ = reply.send(store.register_type(def).map_err(|e| e.to_string()));
                            }
                            Request::Compact(reply) => {
                                last_compaction = Instant::now();
                                let _ = reply.send(store.compact().map_err(|e| e.to_string()));
                            }
                            Request::Stats(reply) => {
                                let _ = reply.send(store.stats());
                            }
                        }
                        if appends.len() < GROUP_COMMIT_REQUESTS_MAX && events < GROUP_COMMIT_EVENTS_MAX {
                            next = rx.try_recv().ok();
                        }
                    }
                    if appends.is_empty() {
                        continue;
                    }
                    let (groups, replies): (Vec<PreparedEvents>, Vec<_>) = appends.into_iter().unzip();
                    let started = Instant::now();
                    let stored = store.append_prepared(&groups);
                    // Every request in the group waited this long for the log (write, fdatasync
                    // and the tail), whether on the disk or for a core.
                    metrics::histogram!("finpulse_log_commit_seconds").record(started.elapsed().as_secs_f64());
                    metrics::histogram!("finpulse_log_commit_requests").record(groups.len() as f64);
                    match stored {
                        Ok(statuses) => {
                            for (status, (plain, reply)) in statuses.into_iter().zip(replies) {
                                // Live state follows the log: every stored event is applied here,
                                // in log order, and nowhere else.
                                live.apply(&plain, &status);
                                let _ = reply.send(Ok(status));
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            for (_, reply) in replies {
                                let _ = reply.send(Err(msg.clone()));
                            }
                        }
                    }
                }
                tracing::info!("writer stopped");
            })
            .expect("spawning the writer thread");
        (Self { tx, queue_depth }, handle)
    }

    fn send(&self, req: Request) -> Result<(), WriterError> {
        self.tx.try_send(req).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => WriterError::QueueFull(self.queue_depth),
            mpsc::TrySendError::Disconnected(_) => WriterError::Stopped,
        })
    }

    /// Appends `events` (prepared as `prepared`); resolves once they are durable and the new
    /// ones have been applied to the live state.
    pub async fn append(&self, prepared: PreparedEvents, events: Arc<Vec<Event>>) -> Result<Vec<AppendStatus>, WriterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Append(prepared, events, tx))?;
        rx.await.map_err(|_| WriterError::Stopped)?.map_err(WriterError::Store)
    }

    /// Registers a custom event type.
    pub async fn register(&self, def: CustomTypeDef) -> Result<TypeId, WriterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Register(def, tx))?;
        rx.await.map_err(|_| WriterError::Stopped)?.map_err(WriterError::Store)
    }

    /// Compacts the tail now.
    pub async fn compact(&self) -> Result<CompactionReport, WriterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Compact(tx))?;
        rx.await.map_err(|_| WriterError::Stopped)?.map_err(WriterError::Store)
    }

    /// Store counters.
    pub async fn stats(&self) -> Result<StoreStats, WriterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Stats(tx))?;
        rx.await.map_err(|_| WriterError::Stopped)
    }
}
