//! The tenants one server holds. Each tenant is a whole data directory of its own — log,
//! Parquet, live state, rules, models, cases, segments, goals — with its own writer: the home
//! tenant's is the server's data directory, any other's is `tenants/<name>` beneath it. Keys,
//! users, approvals and the audit log are the deployment's, one set for every tenant.
//!
//! Isolation is by construction rather than by filter: a request is given its principal's
//! tenant state by the guard and no handler can reach another's, so no query, profile, model
//! or case of one tenant can name another's. A tenant's directory is opened the first time
//! one of its principals calls (or at start, for tenants that already have keys or users).

use crate::{ApiLimits, AppState, insights, risk};
use finpulse_access::Access;
use finpulse_log::{EventStore, StoreOptions};
use finpulse_risk::engine::Policy;
use finpulse_risk::live::Live;
use finpulse_write::{Writer, WriterOptions, WriterThread};
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// What every tenant of a server shares.
#[derive(Clone)]
pub(crate) struct Shared {
    /// The deployment's data directory: the home tenant's data, and everyone's access files.
    pub root: PathBuf,
    /// How tenants' stores are opened.
    pub store_options: StoreOptions,
    /// API limits.
    pub limits: ApiLimits,
    /// Prometheus.
    pub metrics: PrometheusHandle,
    /// Keys, users, sessions, per-key limits, approvals and the audit log.
    pub access: Arc<Access>,
    /// The home tenant, and what needs a key.
    pub access_options: crate::access::AccessOptions,
    /// One permit per query allowed to run at once across all tenants
    /// (`queries_concurrent_max`: they share the machine).
    pub queries: Arc<tokio::sync::Semaphore>,
    /// What a tenant's store says of who holds it (the server's address, once bound).
    pub owner_note: Arc<Mutex<Option<String>>>,
}

/// One tenant's running parts.
struct Running {
    state: AppState,
    writer_thread: Option<WriterThread>,
    live: Arc<Live>,
    /// Reloads rules and models, refreshes segments, warms caches, checkpoints, recalls
    /// decisions.
    tasks: Vec<JoinHandle<()>>,
}

/// Why a tenant's data could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("tenant '{tenant}''s data in {dir} could not be opened: {why}")]
pub(crate) struct OpenError {
    tenant: String,
    dir: PathBuf,
    why: String,
}

/// The tenants a server holds, opened as they are needed.
pub(crate) struct Tenants {
    pub shared: Shared,
    opened: RwLock<HashMap<String, AppState>>,
    running: Mutex<Vec<Running>>,
    /// Held while a tenant is opened, so two first requests do not both open it.
    opening: tokio::sync::Mutex<()>,
}

impl Tenants {
    /// Starts the home tenant on its already opened `store`.
    pub fn start(shared: Shared, home_store: EventStore) -> Result<Self, OpenError> {
        let tenants = Self { shared, opened: RwLock::default(), running: Mutex::default(), opening: tokio::sync::Mutex::new(()) };
        let home = tenants.shared.access_options.tenant.clone();
        let live = open_live(&home, &home_store)?;
        tenants.launch(&home, home_store, live);
        Ok(tenants)
    }

    /// The home tenant's state (always open).
    pub fn home(&self) -> AppState {
        self.opened
            .read()
            .expect("the tenants map is never poisoned")
            .get(&self.shared.access_options.tenant)
            .cloned()
            .expect("the home tenant is opened at start")
    }

    /// The tenants opened so far, each with its state.
    pub fn opened(&self) -> Vec<AppState> {
        self.opened.read().expect("the tenants map is never poisoned").values().cloned().collect()
    }

    /// `tenant`'s state, opening its data directory if no one has asked for it yet.
    pub async fn get(&self, tenant: &str) -> Result<AppState, OpenError> {
        if let Some(s) = self.opened.read().expect("the tenants map is never poisoned").get(tenant) {
            return Ok(s.clone());
        }
        // Names are checked when keys and users are made; a hand-edited access file is caught
        // here, before a name becomes a folder.
        if !finpulse_access::keys::valid_tenant(tenant) {
            return Err(OpenError { tenant: tenant.to_string(), dir: PathBuf::new(), why: "not a valid tenant name".into() });
        }
        let _turn = self.opening.lock().await;
        if let Some(s) = self.opened.read().expect("the tenants map is never poisoned").get(tenant) {
            return Ok(s.clone());
        }
        let dir = finpulse_access::tenant_data_dir(&self.shared.root, &self.shared.access_options.tenant, tenant);
        let (name, options, note) = (tenant.to_string(), self.shared.store_options, self.owner_note());
        let opened = tokio::task::spawn_blocking(move || -> Result<(EventStore, Live), OpenError> {
            let fail = |why: String| OpenError { tenant: name.clone(), dir: dir.clone(), why };
            let store = EventStore::open(&dir, options).map_err(|e| fail(e.to_string()))?;
            if let Some(note) = note {
                store.set_owner_note(&note).map_err(|e| fail(e.to_string()))?;
            }
            let live = open_live(&name, &store)?;
            Ok((store, live))
        })
        .await
        .map_err(|e| OpenError { tenant: tenant.to_string(), dir: PathBuf::new(), why: e.to_string() })??;
        let (store, live) = opened;
        tracing::info!(tenant, dir = %store.dir().display(), "tenant opened");
        Ok(self.launch(tenant, store, live))
    }

    fn owner_note(&self) -> Option<String> {
        self.shared.owner_note.lock().expect("the owner note is never poisoned").clone()
    }

    /// Starts a tenant's writer and background work and records its state.
    fn launch(&self, tenant: &str, store: EventStore, live: Live) -> AppState {
        let shared = &self.shared;
        let limits = shared.limits;
        let live = Arc::new(live);
        let views = store.view_handle();
        let data_dir = store.dir().to_path_buf();
        let writer_options =
            WriterOptions { queue_depth: limits.write_queue_depth, compact_every: Duration::from_secs(limits.compaction_interval_secs) };
        let (writer, writer_thread) = Writer::start(store, writer_options, vec![live.clone() as Arc<dyn finpulse_write::CommitConsumer>]);
        let segments = Arc::new(tokio::sync::Mutex::new(()));
        let refresher =
            insights::refresh_segments(views.clone(), data_dir.clone(), segments.clone(), Duration::from_secs(limits.segment_refresh_secs));
        // The first insight after a start would otherwise read every file for the caches.
        let warm_views = views.clone();
        let warming = Arc::new(AtomicBool::new(true));
        let warm_done = warming.clone();
        let warmer = tokio::spawn(async move {
            if let Err(e) = finpulse_growth::warm_caches(&warm_views.snapshot()).await {
                tracing::warn!(error = %e, "warming the insight caches failed; the first insight fills them");
            }
            warm_done.store(false, Ordering::Relaxed);
        });
        let state = AppState {
            tenant: tenant.into(),
            writer,
            views,
            limits,
            metrics: shared.metrics.clone(),
            data_dir,
            offers: Arc::default(),
            live: live.clone(),
            segments,
            queries: shared.queries.clone(),
            recent: Arc::default(),
            warming,
            access: shared.access.clone(),
            access_options: shared.access_options.clone(),
        };
        let recaller = tokio::spawn(risk::recall_recent_decisions(state.clone()));
        let watcher = live.clone().watch_publications();
        let checkpointer =
            live.clone().watch_checkpoints(Duration::from_secs(limits.checkpoint_check_secs.max(1)), limits.checkpoint_events_min);
        self.running.lock().expect("the running list is never poisoned").push(Running {
            state: state.clone(),
            writer_thread: Some(writer_thread),
            live,
            tasks: vec![refresher, warmer, recaller, watcher, checkpointer],
        });
        self.opened.write().expect("the tenants map is never poisoned").insert(tenant.to_string(), state.clone());
        state
    }

    /// Stops every tenant: background work first, then (once the router that held the last
    /// writer handles is gone) the writers, then a live-state checkpoint each.
    pub async fn stop(&self) {
        let running: Vec<Running> = std::mem::take(&mut *self.running.lock().expect("the running list is never poisoned"));
        self.opened.write().expect("the tenants map is never poisoned").clear();
        for mut r in running {
            for t in &r.tasks {
                t.abort();
            }
            let tenant = r.state.tenant.clone();
            drop(r.state);
            if let Some(t) = r.writer_thread.take() {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            // Every stored event has been applied: the checkpoint saves a restart's replay.
            if let Err(e) = r.live.checkpoint() {
                tracing::error!(tenant = %tenant, error = %e, "saving the live-state checkpoint failed; the next start replays the whole log");
            }
        }
    }
}

fn open_live(tenant: &str, store: &EventStore) -> Result<Live, OpenError> {
    let started = std::time::Instant::now();
    let live = Live::open(store.dir(), Policy::default()).map_err(|e| OpenError {
        tenant: tenant.to_string(),
        dir: store.dir().to_path_buf(),
        why: e.to_string(),
    })?;
    tracing::info!(tenant, secs = started.elapsed().as_secs_f64(), "live state, cases and engine loaded");
    Ok(live)
}
