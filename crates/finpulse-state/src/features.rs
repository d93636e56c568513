//! The named features a decision reads: what rules refer to and models are trained on.
//!
//! Numeric features are `f64`; a value that does not exist yet (the average amount of a user with
//! no history, a rate over an empty window) is NaN, which every rule comparison treats as false
//! and the GBDT sends down its learned missing-value side. Windows end just before the
//! transaction being decided: a feature never includes the transaction itself.

/// A numeric feature's index in [`FeatureRow::num`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Num {
    TxnAmountFen,
    TxnHourOfDay,
    TxnIsNight,
    TxnIsWeekend,
    TxnNewDevice,
    TxnNewTerminal,
    TxnNewMerchant,
    UserKnown,
    UserDaysSinceSignup,
    UserTxCount10m,
    UserTxCount1h,
    UserTxCount1d,
    UserTxCount7d,
    UserTxCount30d,
    UserAmountSumFen1h,
    UserAmountSumFen1d,
    UserAvgAmountFen1d,
    UserAvgAmountFen7d,
    UserAvgAmountFen30d,
    UserAmountToAvg30d,
    UserMaxAmountFen7d,
    UserAmountToMax7d,
    UserHighAmountCount7d,
    UserAmountZscore,
    UserSecsSinceLastTx,
    UserTxCountTotal,
    UserKnownFraudCount,
    UserDaysSinceKnownFraud,
    UserDevicesSeen,
    UserTerminalsSeen,
    UserBalanceFen,
    UserOverdueLoans,
    UserBureauScore,
    TerminalTxCount1d,
    TerminalTxCount7d,
    TerminalTxCount30d,
    TerminalFraudCount1d,
    TerminalFraudCount7d,
    TerminalFraudCount30d,
    TerminalFraudRate1d,
    TerminalFraudRate7d,
    TerminalFraudRate30d,
    TerminalLaggedTxCount1d,
    TerminalLaggedTxCount7d,
    TerminalLaggedTxCount30d,
    TerminalLaggedFraudRate1d,
    TerminalLaggedFraudRate7d,
    TerminalLaggedFraudRate30d,
    TerminalDaysSinceFraud,
    TerminalFraudStreak,
    TerminalFraudStreakDays,
    MerchantTxCount1d,
    MerchantTxCount7d,
    MerchantTxCount30d,
    MerchantFraudRate1d,
    MerchantFraudRate7d,
    MerchantFraudRate30d,
    ModelScore,
}

/// How many numeric features there are.
pub const NUM_COUNT: usize = Num::ModelScore as usize + 1;

/// A text feature's index in [`FeatureRow::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Text {
    TxnType,
    TxnCurrency,
    TxnChannel,
    TxnTerminalId,
    TxnMerchantId,
    TxnDeviceId,
    TxnCardNumber,
    UserId,
    UserChannel,
    UserCity,
}

/// How many text features there are.
pub const TEXT_COUNT: usize = Text::UserCity as usize + 1;

/// A feature's name, index and meaning.
#[derive(Clone, Copy, Debug)]
pub struct FeatureDef<I: 'static> {
    /// Its index.
    pub id: I,
    /// The name rules and models use.
    pub name: &'static str,
    /// What it means.
    pub doc: &'static str,
}

const fn n(id: Num, name: &'static str, doc: &'static str) -> FeatureDef<Num> {
    FeatureDef { id, name, doc }
}

/// Every numeric feature, in index order.
pub const NUMERIC: &[FeatureDef<Num>] = &[
    n(Num::TxnAmountFen, "txn.amount_fen", "the transaction's amount, minor units"),
    n(Num::TxnHourOfDay, "txn.hour_of_day", "hour of the day in business time (UTC+8), 0-23"),
    n(Num::TxnIsNight, "txn.is_night", "1 when the hour of day is before 6, else 0"),
    n(Num::TxnIsWeekend, "txn.is_weekend", "1 on Saturday or Sunday (business time), else 0"),
    n(Num::TxnNewDevice, "txn.new_device", "1 when the user has not used this device before (0 without a device)"),
    n(Num::TxnNewTerminal, "txn.new_terminal", "1 when the user has not paid at this terminal before (0 without a terminal)"),
    n(Num::TxnNewMerchant, "txn.new_merchant", "1 when the user has not paid this merchant before (0 without a merchant)"),
    n(Num::UserKnown, "user.known", "1 when finpulse has seen any event of the user before, 0 for a cold start"),
    n(Num::UserDaysSinceSignup, "user.days_since_signup", "days since the user signed up; NaN when no signup was seen"),
    n(Num::UserTxCount10m, "user.tx_count_10m", "the user's transactions in the 10 minutes before this one"),
    n(Num::UserTxCount1h, "user.tx_count_1h", "the user's transactions in the hour before this one"),
    n(Num::UserTxCount1d, "user.tx_count_1d", "the user's transactions in the 24 hours before this one"),
    n(Num::UserTxCount7d, "user.tx_count_7d", "the user's transactions in the 7 days before this one"),
    n(Num::UserTxCount30d, "user.tx_count_30d", "the user's transactions in the 30 days before this one"),
    n(Num::UserAmountSumFen1h, "user.amount_sum_fen_1h", "total amount of the user's transactions in the hour before, minor units"),
    n(Num::UserAmountSumFen1d, "user.amount_sum_fen_1d", "total amount of the user's transactions in the 24 hours before, minor units"),
    n(Num::UserAvgAmountFen1d, "user.avg_amount_fen_1d", "average amount over the 24 hours before; NaN without transactions"),
    n(Num::UserAvgAmountFen7d, "user.avg_amount_fen_7d", "average amount over the 7 days before; NaN without transactions"),
    n(Num::UserAvgAmountFen30d, "user.avg_amount_fen_30d", "average amount over the 30 days before; NaN without transactions"),
    n(Num::UserAmountToAvg30d, "user.amount_to_avg_30d", "this amount divided by user.avg_amount_fen_30d; NaN without transactions"),
    n(
        Num::UserMaxAmountFen7d,
        "user.max_amount_fen_7d",
        "the largest of the user's transactions in the 7 days before; NaN without transactions",
    ),
    n(
        Num::UserAmountToMax7d,
        "user.amount_to_max_7d",
        "this amount divided by user.max_amount_fen_7d: above 1, larger than anything the user did that week; NaN without transactions",
    ),
    n(
        Num::UserHighAmountCount7d,
        "user.high_amount_count_7d",
        "of the user's transactions in the 7 days before, those above 3 times the median amount of its 30 days before: a run of unusually large spending",
    ),
    n(
        Num::UserAmountZscore,
        "user.amount_zscore",
        "(amount - mean) / std of the user's whole history of amounts; with fewer than 3 transactions, of every user's (the cold-start baseline)",
    ),
    n(Num::UserSecsSinceLastTx, "user.secs_since_last_tx", "seconds since the user's previous transaction; NaN for the first"),
    n(Num::UserTxCountTotal, "user.tx_count_total", "the user's transactions ever, before this one"),
    n(Num::UserKnownFraudCount, "user.known_fraud_count", "the user's transactions already labelled fraud (labels known now)"),
    n(Num::UserDaysSinceKnownFraud, "user.days_since_known_fraud", "days since the latest fraud label on the user arrived; NaN if none"),
    n(Num::UserDevicesSeen, "user.devices_seen", "distinct devices the user has used (up to 64 remembered)"),
    n(Num::UserTerminalsSeen, "user.terminals_seen", "distinct terminals the user has paid at (up to 64 remembered)"),
    n(Num::UserBalanceFen, "user.balance_fen", "deposits less withdrawals and transfers out, minor units"),
    n(Num::UserOverdueLoans, "user.overdue_loans", "the user's loans with an overdue instalment not yet repaid"),
    n(Num::UserBureauScore, "user.bureau_score", "score of the latest credit report; NaN without one"),
    n(Num::TerminalTxCount1d, "terminal.tx_count_1d", "payments at the terminal today (business day)"),
    n(Num::TerminalTxCount7d, "terminal.tx_count_7d", "payments at the terminal today and the 6 days before"),
    n(Num::TerminalTxCount30d, "terminal.tx_count_30d", "payments at the terminal today and the 29 days before"),
    n(Num::TerminalFraudCount1d, "terminal.fraud_count_1d", "of terminal.tx_count_1d, those with a fraud label already known"),
    n(Num::TerminalFraudCount7d, "terminal.fraud_count_7d", "of terminal.tx_count_7d, those with a fraud label already known"),
    n(Num::TerminalFraudCount30d, "terminal.fraud_count_30d", "of terminal.tx_count_30d, those with a fraud label already known"),
    n(Num::TerminalFraudRate1d, "terminal.fraud_rate_1d", "terminal.fraud_count_1d / terminal.tx_count_1d; NaN when no payments"),
    n(Num::TerminalFraudRate7d, "terminal.fraud_rate_7d", "terminal.fraud_count_7d / terminal.tx_count_7d; NaN when no payments"),
    n(Num::TerminalFraudRate30d, "terminal.fraud_rate_30d", "terminal.fraud_count_30d / terminal.tx_count_30d; NaN when no payments"),
    n(Num::TerminalLaggedTxCount1d, "terminal.lagged_tx_count_1d", "payments at the terminal on the business day 7 days before today"),
    n(
        Num::TerminalLaggedTxCount7d,
        "terminal.lagged_tx_count_7d",
        "payments at the terminal over the 7 business days ending 7 days before today",
    ),
    n(
        Num::TerminalLaggedTxCount30d,
        "terminal.lagged_tx_count_30d",
        "payments at the terminal over the 30 business days ending 7 days before today",
    ),
    n(
        Num::TerminalLaggedFraudRate1d,
        "terminal.lagged_fraud_rate_1d",
        "share of terminal.lagged_tx_count_1d with a fraud label already known: risk over payments old enough for their labels to have come in; NaN when no payments",
    ),
    n(
        Num::TerminalLaggedFraudRate7d,
        "terminal.lagged_fraud_rate_7d",
        "share of terminal.lagged_tx_count_7d with a fraud label already known; NaN when no payments",
    ),
    n(
        Num::TerminalLaggedFraudRate30d,
        "terminal.lagged_fraud_rate_30d",
        "share of terminal.lagged_tx_count_30d with a fraud label already known; NaN when no payments",
    ),
    n(
        Num::TerminalDaysSinceFraud,
        "terminal.days_since_fraud",
        "business days since the terminal's latest payment with a fraud label already known (0: today); NaN when none in the last 40 days",
    ),
    n(
        Num::TerminalFraudStreak,
        "terminal.fraud_streak",
        "known frauds in the run ending at the terminal's latest payments 7 to 36 business days before today in which every payment is known fraud: a compromised terminal; 0 when its latest such payments are not fraud",
    ),
    n(
        Num::TerminalFraudStreakDays,
        "terminal.fraud_streak_days",
        "business days from the first day of terminal.fraud_streak to today: how long the terminal has been compromised; NaN without a streak",
    ),
    n(Num::MerchantTxCount1d, "merchant.tx_count_1d", "payments at the merchant today (business day)"),
    n(Num::MerchantTxCount7d, "merchant.tx_count_7d", "payments at the merchant today and the 6 days before"),
    n(Num::MerchantTxCount30d, "merchant.tx_count_30d", "payments at the merchant today and the 29 days before"),
    n(Num::MerchantFraudRate1d, "merchant.fraud_rate_1d", "share of merchant.tx_count_1d with a fraud label already known"),
    n(Num::MerchantFraudRate7d, "merchant.fraud_rate_7d", "share of merchant.tx_count_7d with a fraud label already known"),
    n(Num::MerchantFraudRate30d, "merchant.fraud_rate_30d", "share of merchant.tx_count_30d with a fraud label already known"),
    n(Num::ModelScore, "model.score", "the active fraud model's probability for this transaction; NaN without a model"),
];

const fn t(id: Text, name: &'static str, doc: &'static str) -> FeatureDef<Text> {
    FeatureDef { id, name, doc }
}

/// Every text feature, in index order. A missing value is the empty text.
pub const TEXTUAL: &[FeatureDef<Text>] = &[
    t(Text::TxnType, "txn.type", "payment, transfer or withdrawal"),
    t(Text::TxnCurrency, "txn.currency", "ISO 4217 code"),
    t(Text::TxnChannel, "txn.channel", "the transaction's channel (e.g. pos, app)"),
    t(Text::TxnTerminalId, "txn.terminal_id", "the terminal"),
    t(Text::TxnMerchantId, "txn.merchant_id", "the merchant"),
    t(Text::TxnDeviceId, "txn.device_id", "the device"),
    t(Text::TxnCardNumber, "txn.card_number", "the bank card, when the event carries one"),
    t(Text::UserId, "user.id", "the user"),
    t(Text::UserChannel, "user.channel", "the channel the user was acquired through"),
    t(Text::UserCity, "user.city", "the user's city at signup"),
];

/// Transaction-field prefixes accepted as aliases of `txn.`, so a rule can read as
/// `payment.amount_fen`. The alias does not filter by type: test `txn.type` for that.
pub const TXN_ALIASES: &[&str] = &["payment.", "transfer.", "withdrawal."];

/// A feature found by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureRef {
    /// A numeric one.
    Num(Num),
    /// A text one.
    Text(Text),
}

/// Looks a feature up by name (with the `txn.` aliases).
pub fn lookup(name: &str) -> Option<FeatureRef> {
    let canonical = TXN_ALIASES.iter().find_map(|a| name.strip_prefix(a)).map(|rest| format!("txn.{rest}"));
    let name = canonical.as_deref().unwrap_or(name);
    NUMERIC
        .iter()
        .find(|d| d.name == name)
        .map(|d| FeatureRef::Num(d.id))
        .or_else(|| TEXTUAL.iter().find(|d| d.name == name).map(|d| FeatureRef::Text(d.id)))
}

/// The features a model may be trained on: every numeric feature except the model's own score.
pub fn model_features() -> impl Iterator<Item = &'static FeatureDef<Num>> {
    NUMERIC.iter().filter(|d| d.id != Num::ModelScore)
}

/// One transaction's features.
#[derive(Clone, Debug)]
pub struct FeatureRow<'a> {
    /// Numeric features by [`Num`] index.
    pub num: [f64; NUM_COUNT],
    /// Text features by [`Text`] index.
    pub text: [&'a str; TEXT_COUNT],
}

impl Default for FeatureRow<'_> {
    fn default() -> Self {
        Self { num: [f64::NAN; NUM_COUNT], text: [""; TEXT_COUNT] }
    }
}

impl<'a> FeatureRow<'a> {
    /// A numeric feature.
    pub fn get(&self, f: Num) -> f64 {
        self.num[f as usize]
    }
    /// Sets a numeric feature.
    pub fn set(&mut self, f: Num, v: f64) {
        self.num[f as usize] = v;
    }
    /// A text feature.
    pub fn text(&self, f: Text) -> &'a str {
        self.text[f as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_index_order_with_unique_names() {
        assert_eq!(NUMERIC.len(), NUM_COUNT);
        assert_eq!(TEXTUAL.len(), TEXT_COUNT);
        for (i, d) in NUMERIC.iter().enumerate() {
            assert_eq!(d.id as usize, i, "{}", d.name);
        }
        for (i, d) in TEXTUAL.iter().enumerate() {
            assert_eq!(d.id as usize, i, "{}", d.name);
        }
        let mut names: Vec<&str> = NUMERIC.iter().map(|d| d.name).chain(TEXTUAL.iter().map(|d| d.name)).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn transaction_aliases_resolve_to_txn_features() {
        assert_eq!(lookup("payment.amount_fen"), Some(FeatureRef::Num(Num::TxnAmountFen)));
        assert_eq!(lookup("transfer.type"), Some(FeatureRef::Text(Text::TxnType)));
        assert_eq!(lookup("user.avg_amount_fen_30d"), Some(FeatureRef::Num(Num::UserAvgAmountFen30d)));
        assert_eq!(lookup("user.nope"), None);
        assert_eq!(lookup("payment.nope"), None);
    }
}
