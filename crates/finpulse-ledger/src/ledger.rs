//! The ledger: transactions in a durable journal, their balances in memory.
//!
//! One process opens a ledger folder (an OS lock); inside it any number of threads post. Posts
//! are serialised on the journal: a batch is checked against the ledger as it stands, written
//! and fsync'd, and only then applied to the balances, which readers see under a read lock.

use crate::LedgerError;
use crate::account::{Account, AccountKind};
use crate::journal::{self, Journal};
use crate::transaction::{Posting, Transaction, TxKind};
use finpulse_core::money::Currency;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The journal's file name inside the ledger folder.
pub const JOURNAL_FILE: &str = "journal.fpl";
/// The first bytes of a ledger journal: its name and format (payloads are JSON transactions).
const MAGIC: &[u8; 8] = b"FPLEDG\x00\x01";
/// The longest encoded transaction. The largest a transaction may be (32 postings, each with
/// five dimensions of 64 bytes, the longest id, reference and memo) encodes in under 16 KB.
pub const RECORD_BYTES_MAX: usize = 32 * 1024;
/// The most transactions one batch posts (one write and one fsync).
pub const BATCH_TRANSACTIONS_MAX: usize = 8192;

/// What posting a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// It was written.
    New,
    /// The same transaction was already in the ledger (a retry or a replay): nothing changed.
    AlreadyPosted,
}

/// What the ledger holds in memory, rebuilt from the journal at open.
#[derive(Default)]
pub struct State {
    transactions: Vec<Transaction>,
    by_id: HashMap<String, usize>,
    /// Reversal id by the id of the transaction it reversed.
    reversed_by: HashMap<String, String>,
    /// Refund ids by the id of the recognition they refund.
    refunds_of: HashMap<String, Vec<String>>,
    balances: BTreeMap<(Account, Currency), i128>,
    /// The sum of every balance per currency: zero after every transaction.
    totals: BTreeMap<Currency, i128>,
}

impl State {
    /// Every transaction, in the order it was posted.
    pub fn transactions(&self) -> &[Transaction] {
        &self.transactions
    }

    /// A transaction by id.
    pub fn get(&self, id: &str) -> Option<&Transaction> {
        self.by_id.get(id).map(|i| &self.transactions[*i])
    }

    /// The balance of every account that has postings, per currency (debit positive).
    pub fn balances(&self) -> &BTreeMap<(Account, Currency), i128> {
        &self.balances
    }

    /// The sum of all balances per currency; zero in every currency, always.
    pub fn totals(&self) -> &BTreeMap<Currency, i128> {
        &self.totals
    }

    /// The reversal of a transaction, if it was reversed.
    pub fn reversed_by(&self, id: &str) -> Option<&str> {
        self.reversed_by.get(id).map(String::as_str)
    }

    fn apply(&mut self, tx: Transaction) {
        for p in &tx.postings {
            *self.balances.entry((p.account.clone(), p.currency)).or_insert(0) += i128::from(p.amount_minor);
            *self.totals.entry(p.currency).or_insert(0) += i128::from(p.amount_minor);
        }
        // Every transaction is checked balanced before it is applied, so the ledger as a whole
        // stays balanced; a non-zero total means memory no longer matches the journal.
        for (currency, total) in &self.totals {
            assert_eq!(*total, 0, "the ledger's {currency} balances sum to {total} after transaction {}", tx.id);
        }
        match &tx.kind {
            TxKind::Reversal { of } => {
                self.reversed_by.insert(of.clone(), tx.id.clone());
            }
            TxKind::Refund { of } => self.refunds_of.entry(of.clone()).or_default().push(tx.id.clone()),
            _ => {}
        }
        self.by_id.insert(tx.id.clone(), self.transactions.len());
        self.transactions.push(tx);
    }

    /// Whether `tx` is new, a repeat, or refused, given the ledger plus `pending` (earlier
    /// transactions of the same batch, by id).
    fn admit(&self, tx: &Transaction, pending: &HashMap<&str, &Transaction>) -> Result<Posted, LedgerError> {
        let earlier = self.find(&tx.id, pending);
        if let Some(earlier) = earlier {
            return if earlier == tx { Ok(Posted::AlreadyPosted) } else { Err(LedgerError::Conflict { id: tx.id.clone() }) };
        }
        tx.check()?;
        match &tx.kind {
            TxKind::Reversal { of } => self.check_reversal(tx, self.find(of, pending), of, pending),
            TxKind::Refund { of } => self.check_refund(tx, self.find(of, pending), of, pending),
            _ => Ok(Posted::New),
        }
    }

    /// A transaction posted or pending in the batch.
    fn find<'a>(&'a self, id: &str, pending: &HashMap<&str, &'a Transaction>) -> Option<&'a Transaction> {
        self.get(id).or_else(|| pending.get(id).copied())
    }

    fn check_reversal(
        &self,
        tx: &Transaction,
        original: Option<&Transaction>,
        of: &str,
        pending: &HashMap<&str, &Transaction>,
    ) -> Result<Posted, LedgerError> {
        let original = original.ok_or_else(|| LedgerError::Unknown { field: "of".into(), id: of.into() })?;
        let refuse = |why: String| LedgerError::NotUndoable { id: of.into(), what: "reversed", why };
        if matches!(original.kind, TxKind::Reversal { .. }) {
            return Err(refuse("it is itself a reversal (post the movement again instead)".into()));
        }
        let pending_reversal = pending.values().any(|p| matches!(&p.kind, TxKind::Reversal { of: o } if o == of));
        if let Some(by) = self.reversed_by(of).map(String::from).or_else(|| pending_reversal.then(|| "this batch".to_string())) {
            return Err(refuse(format!("already reversed by {by}")));
        }
        if self.live_refunds(of, pending).next().is_some() {
            return Err(refuse("it has refunds; reverse them first".into()));
        }
        if !same_legs_negated(original, tx) {
            return Err(LedgerError::invalid("postings", format!("a reversal negates every posting of {of}, and only those")));
        }
        Ok(Posted::New)
    }

    fn check_refund(
        &self,
        tx: &Transaction,
        original: Option<&Transaction>,
        of: &str,
        pending: &HashMap<&str, &Transaction>,
    ) -> Result<Posted, LedgerError> {
        let original = original.ok_or_else(|| LedgerError::Unknown { field: "of".into(), id: of.into() })?;
        let refuse = |why: String| LedgerError::NotUndoable { id: of.into(), what: "refunded", why };
        if original.kind != TxKind::Recognition {
            return Err(refuse(format!("it is a {}, not a recognition of revenue", original.kind.name())));
        }
        if self.reversed_by(of).is_some() {
            return Err(refuse("it was reversed".into()));
        }
        let revenue_legs: Vec<i64> =
            tx.postings.iter().filter(|p| p.account.kind == AccountKind::Revenue).map(|p| p.amount_minor).collect();
        if revenue_legs.is_empty() || revenue_legs.iter().any(|a| *a < 0) {
            return Err(LedgerError::invalid(
                "postings",
                "a refund debits revenue (positive amounts on revenue accounts) and credits nothing to it",
            ));
        }
        let recognised = revenue_by_currency(original).into_iter().map(|(c, v)| (c, -v));
        let mut refunded = revenue_by_currency(tx);
        for r in self.live_refunds(of, pending) {
            for (c, v) in revenue_by_currency(r) {
                *refunded.entry(c).or_insert(0) += v;
            }
        }
        for (currency, recognised) in recognised {
            let total = refunded.remove(&currency).unwrap_or(0);
            if total > recognised {
                return Err(refuse(format!("refunds would total {total} {currency}, more than the {recognised} recognised")));
            }
        }
        if refunded.values().any(|v| *v != 0) {
            return Err(LedgerError::invalid("postings", "a refund moves revenue only in the currencies recognised"));
        }
        Ok(Posted::New)
    }

    /// The refunds of `of` that are not reversed, posted or pending.
    fn live_refunds<'a>(&'a self, of: &'a str, pending: &'a HashMap<&str, &'a Transaction>) -> impl Iterator<Item = &'a Transaction> + 'a {
        let posted = self.refunds_of.get(of).into_iter().flatten().filter_map(|id| self.get(id));
        let batch = pending.values().copied().filter(move |p| matches!(&p.kind, TxKind::Refund { of: o } if o == of));
        posted.chain(batch).filter(move |r| self.reversed_by(&r.id).is_none() && !pending_reverses(pending, &r.id))
    }
}

fn pending_reverses(pending: &HashMap<&str, &Transaction>, id: &str) -> bool {
    pending.values().any(|p| matches!(&p.kind, TxKind::Reversal { of } if of == id))
}

/// The sum of a transaction's postings to revenue accounts per currency (credits negative).
fn revenue_by_currency(tx: &Transaction) -> BTreeMap<Currency, i64> {
    let mut out = BTreeMap::new();
    for p in tx.postings.iter().filter(|p| p.account.kind == AccountKind::Revenue) {
        *out.entry(p.currency).or_insert(0) += p.amount_minor;
    }
    out
}

fn same_legs_negated(original: &Transaction, reversal: &Transaction) -> bool {
    let key = |p: &Posting, sign: i64| (p.account.clone(), p.currency, p.amount_minor * sign);
    let mut a: Vec<_> = original.postings.iter().map(|p| key(p, -1)).collect();
    let mut b: Vec<_> = reversal.postings.iter().map(|p| key(p, 1)).collect();
    a.sort();
    b.sort();
    a == b
}

/// The revenue ledger of one data directory. `Send + Sync`: share it behind an `Arc`.
pub struct Ledger {
    dir: PathBuf,
    journal: Mutex<Journal>,
    state: RwLock<State>,
    _lock: File,
}

impl Ledger {
    /// Opens the ledger in `dir` (creating it), reading the journal back: every transaction is
    /// checked again as it is read, so a journal that holds an unbalanced one is refused.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LedgerError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(LedgerError::io(&dir))?;
        let lock = journal::lock_dir(&dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut state = State::default();
        let journal = Journal::open(&path, MAGIC, RECORD_BYTES_MAX, |offset, payload| {
            let corrupt = |why: String| LedgerError::Corrupt { path: path.clone(), offset, why };
            let tx: Transaction = serde_json::from_slice(payload).map_err(|e| corrupt(format!("not a transaction: {e}")))?;
            match state.admit(&tx, &HashMap::new()) {
                Ok(Posted::New) => {
                    state.apply(tx);
                    Ok(())
                }
                Ok(Posted::AlreadyPosted) => Err(corrupt(format!("transaction {} twice", tx.id))),
                Err(e) => Err(corrupt(e.to_string())),
            }
        })?;
        Ok(Self { dir, journal: Mutex::new(journal), state: RwLock::new(state), _lock: lock })
    }

    /// The ledger's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Posts one transaction (see [`Ledger::post_batch`]).
    pub fn post(&self, tx: Transaction) -> Result<Posted, LedgerError> {
        Ok(self.post_batch(vec![tx])?[0])
    }

    /// Posts transactions all or none: each is checked (balanced per currency, well-formed,
    /// reversals and refunds consistent with what they refer to), then the new ones are written
    /// with one fsync, then applied. An id already posted with the same content is
    /// [`Posted::AlreadyPosted`]; with other content the batch is refused.
    pub fn post_batch(&self, batch: Vec<Transaction>) -> Result<Vec<Posted>, LedgerError> {
        if batch.len() > BATCH_TRANSACTIONS_MAX {
            return Err(LedgerError::invalid("transactions", format!("{} in one batch, over {BATCH_TRANSACTIONS_MAX}", batch.len())));
        }
        let mut journal = self.journal.lock();
        // Only the holder of the journal changes the state, so what is checked under this read
        // lock still holds when it is applied below.
        let (outcomes, frames) = {
            let state = self.state.read();
            let mut pending: HashMap<&str, &Transaction> = HashMap::new();
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut frames = Vec::new();
            for (i, tx) in batch.iter().enumerate() {
                let posted = state.admit(tx, &pending).map_err(|e| at_batch_index(e, i, batch.len()))?;
                if posted == Posted::New {
                    frame(tx, &mut frames)?;
                    pending.insert(tx.id.as_str(), tx);
                }
                outcomes.push(posted);
            }
            (outcomes, frames)
        };
        if frames.is_empty() {
            return Ok(outcomes);
        }
        journal.append(&frames)?;
        let mut state = self.state.write();
        for (tx, posted) in batch.into_iter().zip(&outcomes) {
            if *posted == Posted::New {
                state.apply(tx);
            }
        }
        Ok(outcomes)
    }

    /// Reverses transaction `of` as of `booked_us`: a new transaction `id` negating each of its
    /// postings. A transaction is reversed at most once; a reversal is never reversed.
    pub fn reverse(&self, of: &str, id: &str, booked_us: i64, memo: Option<String>) -> Result<Posted, LedgerError> {
        let reversal = {
            let state = self.state.read();
            let original = state.get(of).ok_or_else(|| LedgerError::Unknown { field: "of".into(), id: of.into() })?;
            original.reversal(id, booked_us, memo)
        };
        self.post(reversal)
    }

    /// Refunds `amount_minor` of recognition `of` as of `booked_us`: revenue debited and the
    /// account the revenue was first received in (cash or receivable) credited. Refunds of one
    /// recognition never total more than it recognised.
    pub fn refund(&self, of: &str, id: &str, booked_us: i64, amount_minor: i64, memo: Option<String>) -> Result<Posted, LedgerError> {
        if amount_minor <= 0 {
            return Err(LedgerError::invalid("amount_minor", format!("{amount_minor} is not a positive amount")));
        }
        let refund = {
            let state = self.state.read();
            let original = state.get(of).ok_or_else(|| LedgerError::Unknown { field: "of".into(), id: of.into() })?;
            refund_of(original, id, booked_us, amount_minor, memo)?
        };
        self.post(refund)
    }

    /// Reads the ledger as it stands (writers wait for the read to end: keep it short).
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// Marks the ledger unusable for writes (for tests of the failure path).
    #[doc(hidden)]
    pub fn poison_for_test(&self, why: &str) {
        self.journal.lock().poison(why.into());
    }
}

fn at_batch_index(e: LedgerError, i: usize, n: usize) -> LedgerError {
    match e {
        LedgerError::Invalid { field, message } if n > 1 => LedgerError::Invalid { field: format!("transactions[{i}].{field}"), message },
        e => e,
    }
}

fn frame(tx: &Transaction, frames: &mut Vec<u8>) -> Result<(), LedgerError> {
    let payload = serde_json::to_vec(tx).map_err(|e| LedgerError::invalid("transaction", e.to_string()))?;
    if payload.len() > RECORD_BYTES_MAX {
        return Err(LedgerError::invalid("transaction", format!("{} bytes encoded, over {RECORD_BYTES_MAX}", payload.len())));
    }
    journal::frame_into(frames, &payload, RECORD_BYTES_MAX);
    Ok(())
}

/// The refund of part of a recognition with one revenue posting.
fn refund_of(
    original: &Transaction,
    id: &str,
    booked_us: i64,
    amount_minor: i64,
    memo: Option<String>,
) -> Result<Transaction, LedgerError> {
    let revenue: Vec<&Posting> = original.postings.iter().filter(|p| p.account.kind == AccountKind::Revenue).collect();
    let received = original.postings.iter().find(|p| matches!(p.account.kind, AccountKind::Cash | AccountKind::Receivable));
    let (&[rev], Some(received)) = (revenue.as_slice(), received) else {
        return Err(LedgerError::invalid(
            "of",
            format!("{} has no single revenue posting to refund (post a refund with its postings)", original.id),
        ));
    };
    let postings = vec![
        Posting { account: rev.account.clone(), amount_minor, currency: rev.currency },
        Posting { account: received.account.clone(), amount_minor: -amount_minor, currency: rev.currency },
    ];
    Ok(Transaction {
        id: id.into(),
        booked_us,
        kind: TxKind::Refund { of: original.id.clone() },
        source_event_id: original.source_event_id.clone(),
        memo,
        postings,
    })
}
