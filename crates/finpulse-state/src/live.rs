//! [`LiveState`]: every user's profile and behaviour baseline, and every terminal's and
//! merchant's recent risk, as a deterministic function of the events applied in log order.

use crate::features::{FeatureRow, Num, Text};
use crate::view::source;
use crate::window::{DayBuckets, SeenSet, TxWindow};
use finpulse_core::sharded::ShardedMap;
use finpulse_core::{Event, FieldId, Registry, TypeId, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::num::NonZeroU64;

pub use finpulse_core::time::BUSINESS_UTC_OFFSET_SECS;
/// A payment's fraud label is matched to its terminal for this many days after the payment;
/// a later label still counts against the user.
pub const LABEL_MATCH_DAYS: i32 = 45;
/// Users with at least this many transactions are compared with their own amount history;
/// others with everyone's (the cold-start baseline).
pub const OWN_BASELINE_TX_MIN: u64 = 3;
/// The lagged terminal windows end this many days before the transaction's day: fraud labels
/// (chargebacks) take about a week to come in, so over the most recent days a terminal's known
/// fraud rate is mostly unknown, not low (the handbook's delay period).
pub const TERMINAL_LABEL_LAG_DAYS: i32 = 7;
/// How far back before the lag a terminal's run of known frauds is followed (the buckets keep
/// [`crate::window::TERMINAL_DAYS`] days, the lag included).
pub const TERMINAL_STREAK_DAYS: i32 = 30;
/// A transaction counts as unusually large above this many times the user's median amount.
pub const HIGH_AMOUNT_TO_MEDIAN: i64 = 3;

use finpulse_core::time::{MICROS_PER_DAY, MICROS_PER_SEC};
const MINUTE_US: i64 = 60 * MICROS_PER_SEC;
const HOUR_US: i64 = 60 * MINUTE_US;

/// The 64-bit key state is kept under for an id (user, terminal, merchant, device, event).
pub fn key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The business day of a time ([`finpulse_core::time::business_day_of_us`]), as state keeps it.
pub fn business_day(ts_us: i64) -> i32 {
    finpulse_core::time::business_day_of_us(ts_us) as i32
}

/// A running mean and variance (Welford).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Values seen.
    pub n: u64,
    #[serde(with = "f64_bits")]
    mean: f64,
    #[serde(with = "f64_bits")]
    m2: f64,
}

/// Floats in checkpoints are stored as their bits, so a rebuilt state equals the saved one.
mod f64_bits {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(x.to_bits())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        u64::deserialize(d).map(f64::from_bits)
    }
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    /// (x - mean) / std; NaN with fewer than two values or no spread.
    pub fn zscore(&self, x: f64) -> f64 {
        if self.n < 2 {
            return f64::NAN;
        }
        let std = (self.m2 / (self.n - 1) as f64).sqrt();
        if std > 0.0 { (x - self.mean) / std } else { f64::NAN }
    }
}

/// A user's latest credit report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreditReport {
    /// The bureau.
    pub bureau: String,
    /// Its score.
    pub score: i64,
    /// Delinquencies in the last 24 months.
    pub delinquencies_24m: Option<i64>,
    /// Inquiries in the last 6 months.
    pub inquiries_6m: Option<i64>,
    /// When it arrived.
    pub ts_us: i64,
}

/// What finpulse knows about a user, kept live.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The user id.
    pub user_id: String,
    /// Signup time.
    pub signup_us: Option<i64>,
    /// Acquisition channel and campaign.
    pub channel: Option<String>,
    /// Campaign.
    pub campaign: Option<String>,
    /// City at signup.
    pub city: Option<String>,
    /// Operating system at signup.
    pub os: Option<String>,
    /// Real-name verification passed.
    pub identity_verified: bool,
    /// Bank cards bound.
    pub cards_bound: u32,
    /// First and last event times.
    pub first_seen_us: i64,
    /// Last event time.
    pub last_seen_us: i64,
    /// Events by type name.
    pub counters: BTreeMap<String, u64>,
    /// Deposits less withdrawals and transfers out, minor units.
    pub balance_fen: i64,
    /// Holdings by wealth product (purchases less redemptions), minor units.
    pub holdings_fen: BTreeMap<String, i64>,
    /// Approved loans and their principal not yet repaid, minor units.
    pub loans_outstanding_fen: BTreeMap<String, i64>,
    /// Loans with an overdue instalment not yet repaid, with the overdue amount.
    pub overdue_fen: BTreeMap<String, i64>,
    /// The latest credit report.
    pub credit: Option<CreditReport>,
    /// New-user tasks completed.
    pub tasks_completed: Vec<String>,
    /// Product types bought, by count: the user's preferences.
    pub product_types: BTreeMap<String, u32>,
    /// Revenue the user generated, by stream, minor units.
    pub revenue_fen: BTreeMap<String, i64>,
    /// App sessions and their total length.
    pub session_secs_total: i64,
    /// Complaints filed.
    pub complaints: u32,
    /// Time of the latest money movement or payment.
    pub last_money_us: Option<i64>,
}

/// A user's behaviour baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Recent transactions.
    pub window: TxWindow,
    /// Amounts over the whole history.
    pub amounts: Moments,
    /// The previous transaction's time.
    pub last_tx_us: Option<i64>,
    /// Devices, terminals and merchants used.
    pub devices: SeenSet,
    /// Terminals.
    pub terminals: SeenSet,
    /// Merchants.
    pub merchants: SeenSet,
    /// Transactions labelled fraud so far, and when the latest label arrived.
    pub known_frauds: u32,
    /// When the latest label arrived.
    pub last_fraud_label_us: Option<i64>,
}

/// One user's live state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Profile.
    pub profile: Profile,
    /// Baseline.
    pub baseline: Baseline,
}

/// A recent payment a late label may refer to: 32 bytes, one per payment of the last
/// [`LABEL_MATCH_DAYS`] (`NonZeroU64` lets an absent terminal or merchant cost nothing).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct PaymentRef {
    user: u64,
    terminal: Option<NonZeroU64>,
    merchant: Option<NonZeroU64>,
    day: i32,
    labelled_fraud: bool,
}

/// A fraud verdict that arrived before the payment it names (history imported labels first, or
/// a label feed ahead of the transactions): kept until the payment arrives, for at most
/// [`LABEL_MATCH_DAYS`] after the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct PendingLabel {
    fraud: bool,
    /// When the verdict arrived.
    ts_us: i64,
    /// Whether it was already counted against the user (the user was known when it arrived).
    user_counted: bool,
}

/// The types and fields live state reads, resolved once from the registry.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    types: HashMap<TypeId, Kind>,
    type_names: HashMap<TypeId, String>,
    amount_fen: Option<FieldId>,
    currency: Option<FieldId>,
    terminal_id: Option<FieldId>,
    merchant_id: Option<FieldId>,
    device_id: Option<FieldId>,
    channel: Option<FieldId>,
    campaign: Option<FieldId>,
    city: Option<FieldId>,
    os: Option<FieldId>,
    target_event_id: Option<FieldId>,
    is_fraud: Option<FieldId>,
    product_id: Option<FieldId>,
    product_type: Option<FieldId>,
    loan_id: Option<FieldId>,
    approved: Option<FieldId>,
    principal_fen: Option<FieldId>,
    overdue_fen: Option<FieldId>,
    bureau: Option<FieldId>,
    bureau_score: Option<FieldId>,
    delinquencies_24m: Option<FieldId>,
    inquiries_6m: Option<FieldId>,
    task: Option<FieldId>,
    stream: Option<FieldId>,
    session_secs: Option<FieldId>,
    kind: Option<FieldId>,
    card_number: Option<FieldId>,
}

/// What an event type means to live state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A card payment: decided, windowed, counted at its terminal.
    Payment,
    /// A transfer out: decided and windowed.
    Transfer,
    /// A withdrawal: decided and windowed.
    Withdrawal,
    /// A late fraud verdict.
    FraudLabel,
    Signup,
    Deposit,
    IdentityVerified,
    CardBound,
    WealthPurchase,
    WealthRedemption,
    LoanDecision,
    LoanRepayment,
    LoanOverdue,
    CreditReport,
    TaskCompleted,
    Revenue,
    Session,
    Feedback,
    /// Counted and timed only.
    Other,
}

impl Kind {
    /// Whether transactions of this kind get a decision.
    pub fn is_transaction(self) -> bool {
        matches!(self, Kind::Payment | Kind::Transfer | Kind::Withdrawal)
    }
    /// The transaction type's name.
    pub fn txn_name(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::Transfer => "transfer",
            Kind::Withdrawal => "withdrawal",
            _ => "",
        }
    }
}

impl Vocabulary {
    /// Resolves the built-in types and fields live state reads; custom types are counted only.
    pub fn new(registry: &Registry) -> Self {
        let kinds = [
            ("payment", Kind::Payment),
            ("transfer", Kind::Transfer),
            ("withdrawal", Kind::Withdrawal),
            ("fraud_label", Kind::FraudLabel),
            ("user_signup", Kind::Signup),
            ("deposit", Kind::Deposit),
            ("identity_verified", Kind::IdentityVerified),
            ("card_bound", Kind::CardBound),
            ("wealth_purchase", Kind::WealthPurchase),
            ("wealth_redemption", Kind::WealthRedemption),
            ("loan_decision", Kind::LoanDecision),
            ("loan_repayment", Kind::LoanRepayment),
            ("loan_overdue", Kind::LoanOverdue),
            ("credit_report", Kind::CreditReport),
            ("task_completed", Kind::TaskCompleted),
            ("revenue", Kind::Revenue),
            ("app_session", Kind::Session),
            ("feedback", Kind::Feedback),
        ];
        let mut types = HashMap::new();
        let mut type_names = HashMap::new();
        for spec in registry.event_types() {
            let id = registry.type_id(&spec.name).expect("listed type has an id");
            let kind = kinds.iter().find(|(n, _)| *n == spec.name).map_or(Kind::Other, |k| k.1);
            types.insert(id, kind);
            type_names.insert(id, spec.name.to_string());
        }
        let f = |name: &str| registry.field_id(name);
        Self {
            types,
            type_names,
            amount_fen: f("amount_fen"),
            currency: f("currency"),
            terminal_id: f("terminal_id"),
            merchant_id: f("merchant_id"),
            device_id: f("device_id"),
            channel: f(source::CHANNEL),
            campaign: f(source::CAMPAIGN),
            city: f(source::CITY),
            os: f(source::OS),
            target_event_id: f("target_event_id"),
            is_fraud: f("is_fraud"),
            product_id: f("product_id"),
            product_type: f("product_type"),
            loan_id: f("loan_id"),
            approved: f("approved"),
            principal_fen: f("principal_fen"),
            overdue_fen: f("overdue_fen"),
            bureau: f(source::CREDIT_BUREAU),
            bureau_score: f(source::CREDIT_SCORE),
            delinquencies_24m: f(source::CREDIT_DELINQUENCIES_24M),
            inquiries_6m: f(source::CREDIT_INQUIRIES_6M),
            task: f("task"),
            stream: f("stream"),
            session_secs: f("session_secs"),
            kind: f("kind"),
            card_number: f("card_number"),
        }
    }

    /// An event type's name ("unknown" for an id the registry does not have).
    pub fn type_name(&self, t: TypeId) -> &str {
        self.type_names.get(&t).map_or("unknown", String::as_str)
    }

    /// What an event type means here.
    pub fn kind(&self, t: TypeId) -> Kind {
        self.types.get(&t).copied().unwrap_or(Kind::Other)
    }
}

fn text(e: &Event, f: Option<FieldId>) -> Option<&str> {
    match e.get(f?)? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn int(e: &Event, f: Option<FieldId>) -> Option<i64> {
    match e.get(f?)? {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn flag(e: &Event, f: Option<FieldId>) -> Option<bool> {
    match e.get(f?)? {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Users live in partitions by key, so a node can own a share of them. A user's state is
/// boxed: when a partition's map grows, it moves pointers, not kilobytes of state per user,
/// so the pause (under the state's lock) stays short.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Partition {
    users: HashMap<u64, Box<UserState>>,
}

/// One business day's payments a late label may refer to. Keeping a map per day means
/// forgetting a day drops one map rather than removing its keys one by one, and no map ever
/// holds more than a day: growing one never copies the whole window. The map is in shards, so
/// growing it under the state's lock moves one shard (a single map of 1M payments took 40 ms
/// to grow, a pause every decision waited out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PaymentDay {
    day: i32,
    payments: ShardedMap<u64, PaymentRef>,
}

/// Everything live, derived from the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    partitions: Vec<Partition>,
    /// By terminal and merchant key, in shards like the payments (a terminal's buckets are a
    /// few hundred bytes, so a single map of many would move megabytes to grow).
    terminals: ShardedMap<u64, DayBuckets>,
    merchants: ShardedMap<u64, DayBuckets>,
    /// The payments of the last [`LABEL_MATCH_DAYS`] days, one map per day, oldest first.
    payment_days: VecDeque<PaymentDay>,
    /// Verdicts waiting for their payment, by payment key.
    pending_labels: HashMap<u64, PendingLabel>,
    /// Every user's amounts: the cold-start baseline.
    population: Moments,
    /// Events applied.
    pub applied: u64,
    /// The latest event time applied: "now" for lifecycle stages.
    pub clock_us: i64,
}

/// [`Baseline`] as checkpoint format 3 stored it: seen-sets without times.
#[derive(Deserialize)]
struct BaselineV3 {
    window: TxWindow,
    amounts: Moments,
    last_tx_us: Option<i64>,
    devices: crate::window::SeenSetV3,
    terminals: crate::window::SeenSetV3,
    merchants: crate::window::SeenSetV3,
    known_frauds: u32,
    last_fraud_label_us: Option<i64>,
}

#[derive(Deserialize)]
struct UserStateV3 {
    profile: Profile,
    baseline: BaselineV3,
}

#[derive(Deserialize)]
struct PartitionV3 {
    users: HashMap<u64, Box<UserStateV3>>,
}

impl From<PartitionV3> for Partition {
    fn from(old: PartitionV3) -> Self {
        let users = old.users.into_iter().map(|(k, u)| {
            let UserStateV3 { profile, baseline: b } = *u;
            let baseline = Baseline {
                window: b.window,
                amounts: b.amounts,
                last_tx_us: b.last_tx_us,
                devices: b.devices.migrate(),
                terminals: b.terminals.migrate(),
                merchants: b.merchants.migrate(),
                known_frauds: b.known_frauds,
                last_fraud_label_us: b.last_fraud_label_us,
            };
            (k, Box::new(UserState { profile, baseline }))
        });
        Self { users: users.collect() }
    }
}

/// [`LiveState`] as checkpoint format 3 stored it: 32 days of terminal and merchant buckets,
/// seen-sets without times, and no verdicts waiting for their payment.
#[derive(Deserialize)]
struct LiveStateV3 {
    partitions: Vec<PartitionV3>,
    terminals: ShardedMap<u64, crate::window::DayBucketsV3>,
    merchants: ShardedMap<u64, crate::window::DayBucketsV3>,
    payment_days: VecDeque<PaymentDay>,
    population: Moments,
    applied: u64,
    clock_us: i64,
}

impl LiveState {
    /// Decodes a state checkpointed in format 3 (postcard) into today's layout: the terminal
    /// and merchant days move into the wider buckets, and no verdict waits (format 3 dropped a
    /// verdict that arrived before its payment, as the state then did).
    pub(crate) fn decode_v3(bytes: &[u8]) -> postcard::Result<Self> {
        let old: LiveStateV3 = postcard::from_bytes(bytes)?;
        let widen = |m: ShardedMap<u64, crate::window::DayBucketsV3>| {
            let mut wide = ShardedMap::with_capacity(m.len());
            for (k, v) in m.into_entries() {
                wide.insert(k, DayBuckets::from(v));
            }
            wide
        };
        Ok(Self {
            partitions: old.partitions.into_iter().map(Partition::from).collect(),
            terminals: widen(old.terminals),
            merchants: widen(old.merchants),
            payment_days: old.payment_days,
            pending_labels: HashMap::new(),
            population: old.population,
            applied: old.applied,
            clock_us: old.clock_us,
        })
    }

    /// Empty state with `partitions` user partitions (at least one).
    pub fn new(partitions: usize) -> Self {
        Self {
            partitions: vec![Partition::default(); partitions.max(1)],
            terminals: ShardedMap::new(),
            merchants: ShardedMap::new(),
            payment_days: VecDeque::new(),
            pending_labels: HashMap::new(),
            population: Moments::default(),
            applied: 0,
            clock_us: i64::MIN,
        }
    }

    fn partition_of(&self, user: u64) -> usize {
        (user % self.partitions.len() as u64) as usize
    }

    /// A user's state.
    pub fn user(&self, user_id: &str) -> Option<&UserState> {
        let k = key(user_id);
        self.partitions[self.partition_of(k)].users.get(&k).map(|u| &**u)
    }

    /// Users in state.
    pub fn user_count(&self) -> usize {
        self.partitions.iter().map(|p| p.users.len()).sum()
    }

    /// Terminals in state.
    pub fn terminal_count(&self) -> usize {
        self.terminals.len()
    }

    fn user_mut(&mut self, user_id: &str, ts_us: i64) -> &mut UserState {
        let k = key(user_id);
        let p = self.partition_of(k);
        self.partitions[p].users.entry(k).or_insert_with(|| {
            Box::new(UserState {
                profile: Profile { user_id: user_id.to_string(), first_seen_us: ts_us, last_seen_us: ts_us, ..Default::default() },
                ..Default::default()
            })
        })
    }

    /// Applies one event (log order). Events of unknown users create them.
    pub fn apply(&mut self, vocab: &Vocabulary, e: &Event) {
        self.applied += 1;
        self.clock_us = self.clock_us.max(e.ts_us);
        let kind = vocab.kind(e.type_id);
        if kind == Kind::FraudLabel {
            self.apply_label(vocab, e);
            return;
        }
        let Some(uid) = e.user_id.as_deref() else {
            return;
        };
        let type_name = vocab.type_name(e.type_id);
        let amount = int(e, vocab.amount_fen);
        if let (true, Some(a)) = (kind.is_transaction(), amount) {
            self.population.add(a as f64);
        }
        let day = business_day(e.ts_us);
        let terminal = text(e, vocab.terminal_id).map(key);
        let merchant = text(e, vocab.merchant_id).map(key);
        if kind == Kind::Payment {
            if let Some(t) = terminal {
                self.terminals.get_or_default(t).add_tx(day);
            }
            if let Some(m) = merchant {
                self.merchants.get_or_default(m).add_tx(day);
            }
            let payment = key(&e.event_id);
            let (terminal, merchant) = (terminal.and_then(NonZeroU64::new), merchant.and_then(NonZeroU64::new));
            self.remember_payment(payment, PaymentRef { user: key(uid), terminal, merchant, day, labelled_fraud: false });
        }
        let u = self.user_mut(uid, e.ts_us);
        let p = &mut u.profile;
        p.last_seen_us = p.last_seen_us.max(e.ts_us);
        p.first_seen_us = p.first_seen_us.min(e.ts_us);
        // Looked up first: an owned key is built only for a type the user has not had before.
        match p.counters.get_mut(type_name) {
            Some(n) => *n += 1,
            None => {
                p.counters.insert(type_name.to_string(), 1);
            }
        }
        match kind {
            Kind::Payment | Kind::Transfer | Kind::Withdrawal => {
                let a = amount.unwrap_or(0);
                if kind != Kind::Payment {
                    p.balance_fen -= a;
                }
                p.last_money_us = Some(p.last_money_us.map_or(e.ts_us, |t| t.max(e.ts_us)));
                let b = &mut u.baseline;
                b.window.push(e.ts_us, a);
                b.amounts.add(a as f64);
                b.last_tx_us = Some(b.last_tx_us.map_or(e.ts_us, |t| t.max(e.ts_us)));
                if let Some(d) = text(e, vocab.device_id) {
                    b.devices.insert(key(d), e.ts_us);
                }
                if let Some(t) = terminal {
                    b.terminals.insert(t, e.ts_us);
                }
                if let Some(m) = merchant {
                    b.merchants.insert(m, e.ts_us);
                }
            }
            Kind::Signup => {
                p.signup_us = Some(e.ts_us);
                p.channel = text(e, vocab.channel).map(str::to_string);
                p.campaign = text(e, vocab.campaign).map(str::to_string);
                p.city = text(e, vocab.city).map(str::to_string);
                p.os = text(e, vocab.os).map(str::to_string);
                if let Some(d) = text(e, vocab.device_id) {
                    u.baseline.devices.insert(key(d), e.ts_us);
                }
            }
            Kind::Deposit => {
                p.balance_fen += amount.unwrap_or(0);
                p.last_money_us = Some(p.last_money_us.map_or(e.ts_us, |t| t.max(e.ts_us)));
            }
            Kind::IdentityVerified => p.identity_verified = true,
            Kind::CardBound => p.cards_bound += 1,
            Kind::WealthPurchase | Kind::WealthRedemption => {
                let product = text(e, vocab.product_id).unwrap_or("unknown").to_string();
                let a = amount.unwrap_or(0);
                if kind == Kind::WealthPurchase {
                    *p.holdings_fen.entry(product).or_default() += a;
                    if let Some(t) = text(e, vocab.product_type) {
                        *p.product_types.entry(t.to_string()).or_default() += 1;
                    }
                } else {
                    let h = p.holdings_fen.entry(product.clone()).or_default();
                    *h = (*h - a).max(0);
                    if *h == 0 {
                        p.holdings_fen.remove(&product);
                    }
                }
                p.last_money_us = Some(p.last_money_us.map_or(e.ts_us, |t| t.max(e.ts_us)));
            }
            Kind::LoanDecision => {
                if let (Some(true), Some(loan)) = (flag(e, vocab.approved), text(e, vocab.loan_id)) {
                    p.loans_outstanding_fen.insert(loan.to_string(), amount.unwrap_or(0));
                }
            }
            Kind::LoanRepayment => {
                if let Some(loan) = text(e, vocab.loan_id) {
                    let principal = int(e, vocab.principal_fen).or(amount).unwrap_or(0);
                    if let Some(o) = p.loans_outstanding_fen.get_mut(loan) {
                        *o = (*o - principal).max(0);
                        if *o == 0 {
                            p.loans_outstanding_fen.remove(loan);
                        }
                    }
                    p.overdue_fen.remove(loan);
                }
            }
            Kind::LoanOverdue => {
                if let Some(loan) = text(e, vocab.loan_id) {
                    p.overdue_fen.insert(loan.to_string(), int(e, vocab.overdue_fen).unwrap_or(0));
                }
            }
            // The latest report by its time, whichever arrived last.
            Kind::CreditReport if p.credit.as_ref().is_none_or(|c| c.ts_us <= e.ts_us) => {
                p.credit = Some(CreditReport {
                    bureau: text(e, vocab.bureau).unwrap_or_default().to_string(),
                    score: int(e, vocab.bureau_score).unwrap_or(0),
                    delinquencies_24m: int(e, vocab.delinquencies_24m),
                    inquiries_6m: int(e, vocab.inquiries_6m),
                    ts_us: e.ts_us,
                })
            }
            Kind::TaskCompleted => {
                if let Some(t) = text(e, vocab.task).filter(|t| !p.tasks_completed.iter().any(|x| x == t)) {
                    p.tasks_completed.push(t.to_string());
                }
            }
            Kind::Revenue => {
                let stream = text(e, vocab.stream).unwrap_or("other").to_string();
                *p.revenue_fen.entry(stream).or_default() += amount.unwrap_or(0);
            }
            Kind::Session => p.session_secs_total += int(e, vocab.session_secs).unwrap_or(0),
            Kind::Feedback => {
                if text(e, vocab.kind) == Some("complaint") {
                    p.complaints += 1;
                }
            }
            Kind::CreditReport | Kind::FraudLabel | Kind::Other => {}
        }
        if kind == Kind::Payment && !self.pending_labels.is_empty() {
            self.settle_pending_label(key(&e.event_id), key(uid));
        }
    }

    /// Keeps a payment for late labels, in its day's map; forgets days more than
    /// [`LABEL_MATCH_DAYS`] before the newest.
    fn remember_payment(&mut self, payment: u64, r: PaymentRef) {
        let days = &mut self.payment_days;
        // Payments arrive in about time order: their day is the newest, or a new one after it.
        let at = days.iter().rposition(|d| d.day <= r.day);
        let at = match at {
            Some(i) if days[i].day == r.day => i,
            _ => {
                let i = at.map_or(0, |i| i + 1);
                // Sized like the newest day so far, so a day's map rarely grows at all.
                let expected = days.back().map_or(0, |d| d.payments.len());
                days.insert(i, PaymentDay { day: r.day, payments: ShardedMap::with_capacity(expected) });
                i
            }
        };
        days[at].payments.insert(payment, r);
        let newest = days.back().map_or(r.day, |d| d.day);
        let mut forgot = false;
        while days.front().is_some_and(|d| d.day <= newest - LABEL_MATCH_DAYS) {
            days.pop_front();
            forgot = true;
        }
        if forgot {
            // Verdicts waiting longer than the window for a payment never will be matched.
            self.pending_labels.retain(|_, p| business_day(p.ts_us) > newest - LABEL_MATCH_DAYS);
        }
    }

    /// A remembered payment, newest day first.
    fn payment_mut(&mut self, payment: u64) -> Option<&mut PaymentRef> {
        self.payment_days.iter_mut().rev().find_map(|d| d.payments.get_mut(&payment))
    }

    /// A fraud verdict. On a remembered payment it moves the payment's terminal and merchant
    /// counts (on the payment's day) and the user's; on a payment not seen yet it counts against
    /// the user named (when known) and waits for the payment ([`PendingLabel`]); on a payment
    /// older than [`LABEL_MATCH_DAYS`] and forgotten, the wait ends unmatched.
    fn apply_label(&mut self, vocab: &Vocabulary, e: &Event) {
        let (Some(target), Some(is_fraud)) = (text(e, vocab.target_event_id), flag(e, vocab.is_fraud)) else {
            return;
        };
        let target_key = key(target);
        let Some((r, was)) = self.payment_mut(target_key).map(|r| {
            let was = r.labelled_fraud;
            r.labelled_fraud = is_fraud;
            (*r, was)
        }) else {
            return self.hold_label(target_key, e, is_fraud);
        };
        if was == is_fraud {
            return; // a repeated verdict changes nothing
        }
        let delta = if is_fraud { 1 } else { -1 };
        if let Some(t) = r.terminal {
            self.terminals.get_or_default(t.get()).add_fraud(r.day, delta);
        }
        if let Some(m) = r.merchant {
            self.merchants.get_or_default(m.get()).add_fraud(r.day, delta);
        }
        let user = e.user_id.as_deref().map_or(r.user, key);
        self.count_user_fraud(user, delta, e.ts_us);
    }

    /// A verdict on a payment not remembered: counted against its user now, attributed to the
    /// payment's terminal and merchant when the payment arrives.
    fn hold_label(&mut self, payment: u64, e: &Event, fraud: bool) {
        let earlier = self.pending_labels.get(&payment).copied();
        if earlier.is_some_and(|p| p.ts_us > e.ts_us) {
            return; // a later verdict already waits
        }
        let was_counted = earlier.is_some_and(|p| p.fraud && p.user_counted);
        let user = e.user_id.as_deref().map(key);
        let user_known = user.is_some_and(|k| self.partitions[self.partition_of(k)].users.contains_key(&k));
        let counted = fraud && (user_known || was_counted);
        if let Some(k) = user {
            match (was_counted, counted) {
                (false, true) => self.count_user_fraud(k, 1, e.ts_us),
                (true, false) => self.count_user_fraud(k, -1, e.ts_us),
                _ => {}
            }
        }
        self.pending_labels.insert(payment, PendingLabel { fraud, ts_us: e.ts_us, user_counted: counted });
    }

    /// A payment that a verdict was waiting for has arrived (and is remembered).
    fn settle_pending_label(&mut self, payment: u64, user: u64) {
        let Some(p) = self.pending_labels.remove(&payment) else {
            return;
        };
        let Some(r) = self.payment_mut(payment).map(|r| {
            r.labelled_fraud = p.fraud;
            *r
        }) else {
            return; // the payment is older than the label window: nothing to attribute
        };
        if !p.fraud {
            return;
        }
        if let Some(t) = r.terminal {
            self.terminals.get_or_default(t.get()).add_fraud(r.day, 1);
        }
        if let Some(m) = r.merchant {
            self.merchants.get_or_default(m.get()).add_fraud(r.day, 1);
        }
        if !p.user_counted {
            self.count_user_fraud(user, 1, p.ts_us);
        }
    }

    fn count_user_fraud(&mut self, user: u64, delta: i32, label_ts_us: i64) {
        let p = self.partition_of(user);
        if let Some(u) = self.partitions[p].users.get_mut(&user) {
            let b = &mut u.baseline;
            b.known_frauds = b.known_frauds.saturating_add_signed(delta);
            if delta > 0 {
                b.last_fraud_label_us = Some(b.last_fraud_label_us.map_or(label_ts_us, |t| t.max(label_ts_us)));
            }
        }
    }

    /// The features of transaction `e` against the state before it. `None` when `e` is not a
    /// transaction (payment, transfer or withdrawal).
    pub fn features<'a>(&'a self, vocab: &Vocabulary, e: &'a Event) -> Option<FeatureRow<'a>> {
        let kind = vocab.kind(e.type_id);
        if !kind.is_transaction() {
            return None;
        }
        let mut row = FeatureRow::default();
        let amount = int(e, vocab.amount_fen).unwrap_or(0);
        let now = e.ts_us;
        let local_secs = now.div_euclid(MICROS_PER_SEC) + BUSINESS_UTC_OFFSET_SECS;
        let hour = local_secs.rem_euclid(86_400) / 3600;
        // 1970-01-01 was a Thursday: day 0 → weekday 3 (Monday = 0).
        let weekday = (local_secs.div_euclid(86_400) + 3).rem_euclid(7);
        let terminal_id = text(e, vocab.terminal_id);
        let merchant_id = text(e, vocab.merchant_id);
        let device_id = text(e, vocab.device_id);
        row.text[Text::TxnType as usize] = kind.txn_name();
        row.text[Text::TxnCurrency as usize] = text(e, vocab.currency).unwrap_or("");
        row.text[Text::TxnChannel as usize] = text(e, vocab.channel).unwrap_or("");
        row.text[Text::TxnTerminalId as usize] = terminal_id.unwrap_or("");
        row.text[Text::TxnMerchantId as usize] = merchant_id.unwrap_or("");
        row.text[Text::TxnDeviceId as usize] = device_id.unwrap_or("");
        row.text[Text::TxnCardNumber as usize] = text(e, vocab.card_number).unwrap_or("");
        row.text[Text::UserId as usize] = e.user_id.as_deref().unwrap_or("");
        row.set(Num::TxnAmountFen, amount as f64);
        row.set(Num::TxnHourOfDay, hour as f64);
        row.set(Num::TxnIsNight, f64::from(hour < 6));
        row.set(Num::TxnIsWeekend, f64::from(weekday >= 5));

        let user = e.user_id.as_deref().and_then(|u| self.user(u));
        let b = user.map(|u| &u.baseline);
        let seen = |set: Option<&SeenSet>, id: Option<&str>| match (set, id) {
            (_, None) => 0.0,
            (None, Some(_)) => 1.0,
            (Some(s), Some(id)) => f64::from(!s.contains(key(id))),
        };
        row.set(Num::TxnNewDevice, seen(b.map(|b| &b.devices), device_id));
        row.set(Num::TxnNewTerminal, seen(b.map(|b| &b.terminals), terminal_id));
        row.set(Num::TxnNewMerchant, seen(b.map(|b| &b.merchants), merchant_id));
        row.set(Num::UserKnown, f64::from(user.is_some()));
        row.text[Text::UserChannel as usize] = user.and_then(|u| u.profile.channel.as_deref()).unwrap_or("");
        row.text[Text::UserCity as usize] = user.and_then(|u| u.profile.city.as_deref()).unwrap_or("");
        let default = UserState::default();
        let u = user.unwrap_or(&default);
        let (p, b) = (&u.profile, &u.baseline);
        row.set(Num::UserDaysSinceSignup, p.signup_us.map_or(f64::NAN, |s| (now - s) as f64 / MICROS_PER_DAY as f64));
        let [m10, h1, d1, d7, d30] =
            b.window.spans(now, [10 * MINUTE_US, HOUR_US, MICROS_PER_DAY, 7 * MICROS_PER_DAY, 30 * MICROS_PER_DAY]);
        row.set(Num::UserTxCount10m, m10.count as f64);
        row.set(Num::UserTxCount1h, h1.count as f64);
        row.set(Num::UserTxCount1d, d1.count as f64);
        row.set(Num::UserTxCount7d, d7.count as f64);
        row.set(Num::UserTxCount30d, d30.count as f64);
        row.set(Num::UserAmountSumFen1h, h1.sum_fen as f64);
        row.set(Num::UserAmountSumFen1d, d1.sum_fen as f64);
        row.set(Num::UserAvgAmountFen1d, d1.avg_fen());
        row.set(Num::UserAvgAmountFen7d, d7.avg_fen());
        row.set(Num::UserAvgAmountFen30d, d30.avg_fen());
        row.set(Num::UserAmountToAvg30d, amount as f64 / d30.avg_fen());
        row.set(Num::UserMaxAmountFen7d, d7.max_amount_fen());
        row.set(Num::UserAmountToMax7d, amount as f64 / d7.max_amount_fen());
        row.set(
            Num::UserHighAmountCount7d,
            f64::from(b.window.count_above_median(now, 7 * MICROS_PER_DAY, 30 * MICROS_PER_DAY, HIGH_AMOUNT_TO_MEDIAN)),
        );
        let z = if b.amounts.n >= OWN_BASELINE_TX_MIN { b.amounts.zscore(amount as f64) } else { self.population.zscore(amount as f64) };
        row.set(Num::UserAmountZscore, z);
        row.set(Num::UserSecsSinceLastTx, b.last_tx_us.map_or(f64::NAN, |t| (now - t) as f64 / MICROS_PER_SEC as f64));
        row.set(Num::UserTxCountTotal, b.amounts.n as f64);
        row.set(Num::UserKnownFraudCount, b.known_frauds as f64);
        row.set(Num::UserDaysSinceKnownFraud, b.last_fraud_label_us.map_or(f64::NAN, |t| (now - t) as f64 / MICROS_PER_DAY as f64));
        row.set(Num::UserDevicesSeen, b.devices.len() as f64);
        row.set(Num::UserTerminalsSeen, b.terminals.len() as f64);
        row.set(Num::UserBalanceFen, p.balance_fen as f64);
        row.set(Num::UserOverdueLoans, p.overdue_fen.len() as f64);
        row.set(Num::UserBureauScore, p.credit.as_ref().map_or(f64::NAN, |c| c.score as f64));

        let today = business_day(now);
        let rate = |tx: u32, fraud: u32| if tx == 0 { f64::NAN } else { fraud as f64 / tx as f64 };
        let empty = DayBuckets::default();
        let t = terminal_id.and_then(|id| self.terminals.get(&key(id))).unwrap_or(&empty);
        let windows = [
            (1, Num::TerminalTxCount1d, Num::TerminalFraudCount1d, Num::TerminalFraudRate1d),
            (7, Num::TerminalTxCount7d, Num::TerminalFraudCount7d, Num::TerminalFraudRate7d),
            (30, Num::TerminalTxCount30d, Num::TerminalFraudCount30d, Num::TerminalFraudRate30d),
        ];
        for (days, count, frauds, share) in windows {
            let (tx, fraud) = t.window(today, days);
            row.set(count, tx as f64);
            row.set(frauds, fraud as f64);
            row.set(share, rate(tx, fraud));
        }
        let lagged = [
            (1, Num::TerminalLaggedTxCount1d, Num::TerminalLaggedFraudRate1d),
            (7, Num::TerminalLaggedTxCount7d, Num::TerminalLaggedFraudRate7d),
            (30, Num::TerminalLaggedTxCount30d, Num::TerminalLaggedFraudRate30d),
        ];
        for (days, count, share) in lagged {
            let (tx, fraud) = t.window(today - TERMINAL_LABEL_LAG_DAYS, days);
            row.set(count, tx as f64);
            row.set(share, rate(tx, fraud));
        }
        row.set(Num::TerminalDaysSinceFraud, t.latest_fraud_day(today).map_or(f64::NAN, |d| f64::from(today - d)));
        let streak = t.fraud_streak(today - TERMINAL_LABEL_LAG_DAYS, TERMINAL_STREAK_DAYS);
        row.set(Num::TerminalFraudStreak, streak.map_or(0.0, |s| f64::from(s.0)));
        row.set(Num::TerminalFraudStreakDays, streak.map_or(f64::NAN, |s| f64::from(today - s.1)));
        let m = merchant_id.and_then(|id| self.merchants.get(&key(id))).unwrap_or(&empty);
        let windows = [
            (1, Num::MerchantTxCount1d, Num::MerchantFraudRate1d),
            (7, Num::MerchantTxCount7d, Num::MerchantFraudRate7d),
            (30, Num::MerchantTxCount30d, Num::MerchantFraudRate30d),
        ];
        for (days, count, share) in windows {
            let (tx, fraud) = m.window(today, days);
            row.set(count, tx as f64);
            row.set(share, rate(tx, fraud));
        }
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_reference_is_32_bytes() {
        assert_eq!(std::mem::size_of::<PaymentRef>(), 32);
    }

    fn on_day(day: i32) -> PaymentRef {
        PaymentRef { user: 1, terminal: None, merchant: None, day, labelled_fraud: false }
    }

    #[test]
    fn payments_are_kept_by_day_in_order_and_forgotten_past_the_label_window() {
        let mut state = LiveState::new(1);
        for (key, day) in [(1, 10), (2, 12), (3, 11), (4, 12)] {
            state.remember_payment(key, on_day(day));
        }
        let days: Vec<i32> = state.payment_days.iter().map(|d| d.day).collect();
        assert_eq!(days, vec![10, 11, 12], "a late payment joins its own day, in order");
        assert!((1..=4).all(|k| state.payment_mut(k).is_some()));
        state.payment_mut(3).unwrap().labelled_fraud = true;
        assert!(state.payment_mut(3).unwrap().labelled_fraud);

        state.remember_payment(5, on_day(10 + LABEL_MATCH_DAYS));
        assert!(state.payment_mut(1).is_none(), "day 10 is past the window of the newest day");
        assert!([2, 3, 4, 5].iter().all(|k| state.payment_mut(*k).is_some()));
        let newest = state.payment_days.back().unwrap();
        assert!(newest.payments.capacity() >= 2, "a new day is sized like the newest before it");
    }

    #[test]
    fn a_payment_day_checkpointed_as_one_map_reads_back_into_shards_and_back_again() {
        // The encoding checkpoints had when a day's payments were a single map.
        #[derive(Serialize, Deserialize)]
        struct SingleMapDay {
            day: i32,
            payments: HashMap<u64, PaymentRef>,
        }
        let single = SingleMapDay { day: 40, payments: (0..1_000u64).map(|i| (key(&format!("p{i}")), on_day(40))).collect() };
        let mut buf = vec![0u8; 1 << 16];
        let bytes = postcard::to_slice(&single, &mut buf).unwrap().to_vec();
        let sharded: PaymentDay = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(sharded.day, 40);
        assert_eq!(sharded.payments.len(), 1_000);
        assert!(single.payments.iter().all(|(k, v)| sharded.payments.get(k) == Some(v)));
        let mut again = vec![0u8; 1 << 16];
        let back: SingleMapDay = postcard::from_bytes(postcard::to_slice(&sharded, &mut again).unwrap()).unwrap();
        assert_eq!(back.payments, single.payments);
    }
}
