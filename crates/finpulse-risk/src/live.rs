//! The live risk state a server decides on: the users' state, the case book and the engine in
//! force, kept up to date as a [`CommitConsumer`] of the write path.
//!
//! The writer thread applies every stored event here in log order, after its fsync, so the
//! state is a function of the log. A decision reads the state before its transaction; the
//! transaction and its `risk_decision` event are then stored durably (and applied) before the
//! answer, so decisions in flight in the same group commit do not see each other (a window of
//! one fsync). Decisions share the state with each other (a read lock); applying takes it for
//! at most [`LIVE_APPLY_CHUNK`] events at a time.

use crate::cases::{Case, CaseAction, CaseBook, CaseError};
use crate::engine::{Decision, Engine, EngineError, Policy};
use crate::ruleset::{Ruleset, RulesetStore};
use finpulse_core::{Event, Registry, Value};
use finpulse_log::AppendStatus;
use finpulse_state::{LiveState, Vocabulary};
use finpulse_write::CommitConsumer;
use parking_lot::{Mutex, RwLock};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// How often the engine looks for a ruleset or model published by another process.
pub const ENGINE_RELOAD_CHECK: Duration = Duration::from_secs(1);
/// Events applied to the live state per hold of its lock.
pub const LIVE_APPLY_CHUNK: usize = 1024;
/// How long a decision waits parked on its own thread for the state before it moves its
/// worker's other tasks away and waits the rest of its budget.
pub const LIVE_STATE_SHORT_WAIT: Duration = Duration::from_micros(200);
/// How much lower than the server's other threads the background checkpoint runs (`nice`).
pub const CHECKPOINT_NICENESS: i32 = 10;

/// The live state, the case book, the engine and where they come from.
pub struct Live {
    state: RwLock<LiveState>,
    /// Alerts and cases (not in the state checkpoint: rebuilt from the log's decisions and
    /// case updates, which a filtered replay reads without decoding other events).
    cases: Mutex<CaseBook>,
    /// Case changes are checked and written one at a time, so two resolutions cannot race.
    case_writes: tokio::sync::Mutex<()>,
    vocab: Vocabulary,
    engine: RwLock<Arc<Engine>>,
    /// The ruleset index's and the model registry's modification times last loaded.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    data_dir: PathBuf,
    policy: Policy,
    /// Where the checkpoint on disk stands (the next log record it has not applied).
    checkpoint_seq: AtomicU64,
    /// Checkpoints are written one at a time (the background one and the one at stop).
    checkpoint_writes: Mutex<()>,
}

/// Opening the live state failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The state could not be rebuilt from the checkpoint and the log.
    #[error("rebuilding the live state: {0}")]
    State(String),
    /// The case book could not be rebuilt from the log.
    #[error("rebuilding the case book: {0}")]
    Cases(String),
    /// The active ruleset or model could not be loaded.
    #[error("loading the active ruleset or model: {0}")]
    Engine(String),
    /// The checkpoint could not be written.
    #[error("writing the live-state checkpoint: {0}")]
    Checkpoint(String),
}

fn model_stamp(data_dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(data_dir.join(finpulse_models::registry::REGISTRY_DIR).join("index.json")).and_then(|m| m.modified()).ok()
}

fn load_engine(data_dir: &Path, policy: Policy) -> Result<Engine, LiveError> {
    let ruleset =
        RulesetStore::in_data_dir(data_dir).active().map_err(|e| LiveError::Engine(e.to_string()))?.unwrap_or_else(Ruleset::empty);
    let model = crate::fraud::registered_model(data_dir, None).map_err(|e| LiveError::Engine(e.to_string()))?.map(Arc::new);
    Ok(Engine { ruleset: Arc::new(ruleset), model, policy })
}

impl CommitConsumer for Live {
    /// Applies committed events (log order), skipping duplicates. The lock is taken per
    /// [`LIVE_APPLY_CHUNK`] events, so a large ingest batch does not hold decisions up, and the
    /// case book is brought up to date after the state's lock is let go: decisions never wait
    /// for it (its lists grow by copying, at times a pause of milliseconds).
    fn apply(&self, events: &[Event], statuses: &[AppendStatus]) {
        for (events, statuses) in events.chunks(LIVE_APPLY_CHUNK).zip(statuses.chunks(LIVE_APPLY_CHUNK)) {
            let stored = || events.iter().zip(statuses).filter(|(_, s)| **s == AppendStatus::Accepted).map(|(e, _)| e);
            {
                let mut state = self.state.write();
                stored().for_each(|e| state.apply(&self.vocab, e));
            }
            let mut cases = self.cases.lock();
            stored().for_each(|e| cases.apply(e));
        }
    }
}

impl Live {
    /// Rebuilds the state of a data directory (checkpoint plus log) and the case book, and
    /// loads the active ruleset and fraud model.
    pub fn open(data_dir: &Path, policy: Policy) -> Result<Self, LiveError> {
        let rebuilt = finpulse_state::rebuild_through(data_dir, finpulse_state::LIVE_STATE_PARTITIONS, u64::MAX)
            .map_err(|e| LiveError::State(e.to_string()))?;
        let (state, vocab) = (rebuilt.state, rebuilt.vocab);
        let cases = CaseBook::rebuild(data_dir).map_err(|e| LiveError::Cases(e.to_string()))?;
        let engine = load_engine(data_dir, policy)?;
        let stamps = (RulesetStore::in_data_dir(data_dir).stamp(), model_stamp(data_dir));
        Ok(Self {
            state: RwLock::new(state),
            cases: Mutex::new(cases),
            case_writes: tokio::sync::Mutex::new(()),
            vocab,
            engine: RwLock::new(Arc::new(engine)),
            stamps: Mutex::new(stamps),
            data_dir: data_dir.to_path_buf(),
            policy,
            checkpoint_seq: rebuilt.checkpoint_seq.into(),
            checkpoint_writes: Mutex::new(()),
        })
    }

    /// Decides transaction `tx` on the state as it is (before `tx`), within the engine's time
    /// budget counted from `started`. While events are being applied, a decision waits for the
    /// state parked, never spinning: up to [`LIVE_STATE_SHORT_WAIT`] on its own thread, then
    /// with its async worker's other tasks handed to another thread, until the budget runs
    /// out; then it answers the policy's fallback.
    pub fn decide(&self, tx: &Event, started: Instant) -> Result<Decision, EngineError> {
        let engine = self.engine();
        let deadline = started + Duration::from_micros(engine.policy.budget_us);
        let state = self
            .state
            .try_read()
            .or_else(|| self.state.try_read_until((Instant::now() + LIVE_STATE_SHORT_WAIT).min(deadline)))
            .or_else(|| wait_blocking(|| self.state.try_read_until(deadline)));
        match state {
            Some(state) => engine.decide(&state, &self.vocab, tx, started),
            None => Ok(engine.fallback(tx, format!("live state busy past the {} µs budget", engine.policy.budget_us), started)),
        }
    }

    /// Calls `f` with a user's live view (`None` for an unknown user), under the state's read lock.
    pub fn with_user_view<R>(&self, user_id: &str, f: impl FnOnce(Option<finpulse_state::view::UserView<'_>>) -> R) -> R {
        let state = self.state.read();
        f(finpulse_state::view::user_view(&state, user_id))
    }

    /// Cases, newest first, filtered by status and assignee, at most `limit`.
    pub fn cases(&self, status: Option<crate::cases::CaseStatus>, assignee: Option<&str>, limit: usize) -> Vec<Case> {
        self.cases.lock().list(status, assignee).take(limit).cloned().collect()
    }

    /// One user's cases, newest first.
    pub fn cases_of(&self, user_id: &str) -> Vec<Case> {
        self.cases.lock().of_user(user_id).cloned().collect()
    }

    /// One case.
    pub fn case(&self, id: &str) -> Option<Case> {
        self.cases.lock().case(id).cloned()
    }

    /// Held while a case change is planned and written, so two changes cannot race.
    pub fn case_writes(&self) -> &tokio::sync::Mutex<()> {
        &self.case_writes
    }

    /// The events that make a change to a case, checked against the book as it is (hold
    /// [`Live::case_writes`] from here until they are stored).
    pub fn plan_case_change(&self, id: &str, action: &CaseAction, by: &str, now_us: i64) -> Result<Vec<Event>, CaseError> {
        self.cases.lock().plan(id, action, by, now_us)
    }

    /// The engine in force.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.read().clone()
    }

    /// Makes `ruleset` the active one at once (it was published by this process).
    pub fn activate_ruleset(&self, ruleset: Ruleset) {
        let current = self.engine();
        *self.engine.write() = Arc::new(Engine { ruleset: Arc::new(ruleset), model: current.model.clone(), policy: current.policy });
        self.stamps.lock().0 = RulesetStore::in_data_dir(&self.data_dir).stamp();
    }

    /// Reloads the engine when the ruleset index or the model registry changed.
    pub fn reload_if_published(&self) {
        let mut stamps = self.stamps.lock();
        let now = (RulesetStore::in_data_dir(&self.data_dir).stamp(), model_stamp(&self.data_dir));
        if now == *stamps {
            return;
        }
        match load_engine(&self.data_dir, self.policy) {
            Ok(e) => {
                *self.engine.write() = Arc::new(e);
                *stamps = now;
            }
            Err(e) => tracing::error!(error = %e, "reloading rules or model failed; keeping the active ones"),
        }
    }

    /// Looks for a ruleset or model published by another process every
    /// [`ENGINE_RELOAD_CHECK`], off the decision path, until the task is aborted.
    pub fn watch_publications(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ENGINE_RELOAD_CHECK).await;
                let live = self.clone();
                let _ = tokio::task::spawn_blocking(move || live.reload_if_published()).await;
            }
        })
    }

    /// Saves a checkpoint of the state as it is (at shutdown, when nothing applies events any
    /// more: it holds the state's read lock while it writes).
    pub fn checkpoint(&self) -> Result<(), LiveError> {
        let _one_writer = self.checkpoint_writes.lock();
        let state = self.state.read();
        finpulse_state::save_checkpoint(&finpulse_state::checkpoint_path(&self.data_dir), &state, state.applied)
            .map_err(|e| LiveError::Checkpoint(e.to_string()))?;
        self.checkpoint_seq.store(state.applied, Ordering::SeqCst);
        Ok(())
    }

    /// Moves the checkpoint up to what the live state has applied, once that is at least
    /// `events_min` records past it, without holding the live state: the state is rebuilt from
    /// the checkpoint and the log on the side (for a while, a second copy in memory). Returns
    /// where the new checkpoint stands, if one was written.
    pub fn advance_checkpoint(&self, events_min: u64) -> Result<Option<u64>, LiveError> {
        // Events are applied after their fsync: everything applied is durable in the log.
        let applied = self.state.read().applied;
        if applied < self.checkpoint_seq.load(Ordering::SeqCst).saturating_add(events_min.max(1)) {
            return Ok(None);
        }
        let _one_writer = self.checkpoint_writes.lock();
        // Another writer (the stop) may have moved it meanwhile.
        if applied <= self.checkpoint_seq.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let written = finpulse_state::advance_checkpoint(&self.data_dir, finpulse_state::LIVE_STATE_PARTITIONS, applied)
            .map_err(|e| LiveError::Checkpoint(e.to_string()))?;
        if let Some(seq) = written {
            self.checkpoint_seq.store(seq, Ordering::SeqCst);
        }
        Ok(written)
    }

    /// Every `every`, moves the checkpoint up once `events_min` events have been applied since
    /// it (see [`Live::advance_checkpoint`]), until the task is aborted.
    pub fn watch_checkpoints(self: Arc<Self>, every: Duration, events_min: u64) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let live = self.clone();
                let started = Instant::now();
                let work = move || {
                    // The rebuild takes a core for a while (about 20 s at 100k users): it yields
                    // to decisions and ingestion.
                    lower_this_threads_priority();
                    live.advance_checkpoint(events_min).map_err(|e| e.to_string())
                };
                // Its own thread, so the lowered priority leaves with it.
                let run = move || -> Result<Option<u64>, String> {
                    let thread = std::thread::Builder::new().name("checkpoint".into()).spawn(work).map_err(|e| e.to_string())?;
                    thread.join().map_err(|_| "the checkpoint thread panicked".to_string())?
                };
                let outcome = tokio::task::spawn_blocking(run).await.map_err(|e| e.to_string()).and_then(|r| r);
                match outcome {
                    Ok(Some(seq)) => {
                        tracing::info!(next_seq = seq, secs = started.elapsed().as_secs_f64(), "live-state checkpoint moved up")
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "moving the live-state checkpoint up failed; the last one stays"),
                }
            }
        })
    }
}

/// Runs a call that may park the thread: on a multi-threaded async runtime, the worker's
/// other tasks move to another thread meanwhile; elsewhere it simply runs.
fn wait_blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Lowers the calling thread's scheduling priority by [`CHECKPOINT_NICENESS`] (Linux sets it
/// per thread); elsewhere, or when refused, it runs at the normal priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take and return plain integers; they touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, CHECKPOINT_NICENESS);
    }
}

/// Why a decision came out as it did, as a `risk_decision` event's `reasons` field stores it
/// (JSON). Its own type, so a change to the engine's [`crate::engine::Reason`] cannot change
/// what is stored, and old records still read.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StoredWhy {
    /// Lists, rules and model features behind the decision.
    pub reasons: Vec<StoredReason>,
    /// Shadow rules whose condition held.
    pub shadow_hits: Vec<String>,
    /// Why the fallback answered, when it did.
    pub fallback: Option<String>,
}

/// One stored reason.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredReason {
    /// An allow or block list matched.
    List {
        /// Which list.
        list: String,
    },
    /// A rule's condition held.
    Rule {
        /// The rule.
        name: String,
        /// Its score.
        score: f64,
        /// Its action: allow, review or block.
        action: String,
    },
    /// A feature pushed the model's score up.
    Model {
        /// The feature.
        feature: String,
        /// Its value (absent when missing).
        value: Option<f64>,
        /// Its contribution to the log-odds.
        contribution: f64,
    },
}

impl From<&crate::engine::Reason> for StoredReason {
    fn from(r: &crate::engine::Reason) -> Self {
        use crate::engine::Reason;
        match r {
            Reason::List { list } => Self::List { list: (*list).to_string() },
            Reason::Rule { name, score, action } => Self::Rule { name: name.clone(), score: *score, action: action.name().to_string() },
            Reason::Model { feature, value, contribution } => {
                Self::Model { feature: (*feature).to_string(), value: *value, contribution: *contribution }
            }
        }
    }
}

impl StoredWhy {
    /// What decision `d` stores.
    pub fn of(d: &Decision) -> Self {
        Self {
            reasons: d.reasons.iter().map(StoredReason::from).collect(),
            shadow_hits: d.shadow_hits.clone(),
            fallback: d.fallback.clone(),
        }
    }

    /// Reads a stored `reasons` field.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The `risk_decision` event that records decision `d` on transaction `tx` (`None` when the
/// registry lacks the type or one of its fields).
pub fn decision_record(registry: &Registry, tx: &Event, d: &Decision) -> Option<Event> {
    let t = registry.type_id("risk_decision")?;
    let f = |n: &str| registry.field_id(n);
    let why = StoredWhy::of(d);
    let mut fields = vec![
        (f("target_event_id")?, Value::Str(tx.event_id.clone())),
        (f("decision")?, Value::Str(d.action.name().into())),
        (f("risk_score")?, Value::Float(d.score)),
        (f("ruleset_version")?, Value::Int(i64::from(d.ruleset_version))),
        (f("reasons")?, Value::Str(serde_json::to_string(&why).ok()?)),
        (f("decision_us")?, Value::Float(d.elapsed_us)),
    ];
    if let Some(v) = d.model_version {
        fields.push((f("model_version")?, Value::Int(i64::from(v))));
    }
    fields.sort_by_key(|(id, _)| *id);
    Some(Event { event_id: format!("{}#decision", tx.event_id), user_id: tx.user_id.clone(), ts_us: tx.ts_us, type_id: t, fields })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FailMode;

    fn payment(registry: &Registry, id: &str) -> Event {
        let f = |n: &str| registry.field_id(n).unwrap();
        let mut fields = vec![
            (f("amount_fen"), Value::Int(1999)),
            (f("currency"), Value::Str("CNY".into())),
            (f("terminal_id"), Value::Str("t1".into())),
        ];
        fields.sort_by_key(|(id, _)| *id);
        Event {
            event_id: id.into(),
            user_id: Some("u1".into()),
            ts_us: 1_767_225_600_000_000,
            type_id: registry.type_id("payment").unwrap(),
            fields,
        }
    }

    #[test]
    fn a_decision_that_finds_the_state_busy_past_its_budget_answers_the_fallback_in_time() {
        let dir = tempfile::tempdir().unwrap();
        drop(finpulse_log::EventStore::open(dir.path(), finpulse_log::StoreOptions::default()).unwrap());
        let live = Live::open(dir.path(), Policy { budget_us: 5_000, fail_mode: FailMode::Open }).unwrap();
        let registry = Registry::builtin();
        let (held, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            s.spawn(|| {
                let _applying = live.state.write();
                held.wait();
                release.wait();
            });
            held.wait();
            let started = Instant::now();
            let d = live.decide(&payment(&registry, "p1"), started).unwrap();
            let waited = started.elapsed();
            release.wait();
            assert!(d.fallback.as_deref().is_some_and(|f| f.contains("live state busy past the 5000 µs budget")), "{d:?}");
            assert!(waited >= Duration::from_micros(5_000) && waited < Duration::from_millis(500), "waited {waited:?}");
        });
        // Once the state is free, the same transaction is decided on it.
        let d = live.decide(&payment(&registry, "p2"), Instant::now()).unwrap();
        assert_eq!(d.fallback, None);
    }

    #[test]
    fn stored_reasons_keep_their_format() {
        use crate::engine::Reason;
        use crate::ruleset::Action;
        let reasons = [
            Reason::List { list: "block_devices" },
            Reason::Rule { name: "large".into(), score: 0.7, action: Action::Review },
            Reason::Model { feature: "txn.amount_fen", value: None, contribution: 1.5 },
        ];
        let why =
            StoredWhy { reasons: reasons.iter().map(StoredReason::from).collect(), shadow_hits: vec!["watch".into()], fallback: None };
        let text = r#"{"reasons":[{"kind":"list","list":"block_devices"},{"kind":"rule","name":"large","score":0.7,"action":"review"},{"kind":"model","feature":"txn.amount_fen","value":null,"contribution":1.5}],"shadow_hits":["watch"],"fallback":null}"#;
        assert_eq!(serde_json::to_string(&why).unwrap(), text, "what risk_decision events store");
        assert_eq!(StoredWhy::parse(text).unwrap(), why);
        assert_eq!(StoredWhy::parse(r#"{"reasons":[]}"#).unwrap(), StoredWhy::default(), "fields missing from older records read as empty");
    }
}
