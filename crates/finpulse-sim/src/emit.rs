//! Building events with the registry's ids.

use finpulse_core::{Event, FieldId, Registry, TypeId, Value};

/// Resolves type and field names once, then builds events cheaply.
pub(crate) struct Emitter {
    seed: u64,
    next: u64,
    pub(crate) types: Types,
    f: Fields,
}

macro_rules! ids {
    ($name:ident, $id:ty, $lookup:ident, [$($n:ident),* $(,)?]) => {
        #[allow(non_snake_case)]
        pub(crate) struct $name { $(pub(crate) $n: $id,)* }
        impl $name {
            fn resolve(reg: &Registry) -> Self {
                // Every name below is in the built-in catalogue; the crate's tests build an
                // Emitter, so a renamed catalogue entry fails there.
                Self { $($n: reg.$lookup(stringify!($n)).expect(concat!("catalogue has ", stringify!($n))),)* }
            }
        }
    };
}

ids!(
    Types,
    TypeId,
    type_id,
    [
        payment,
        fraud_label,
        user_signup,
        login,
        identity_verified,
        card_bound,
        app_session,
        page_view,
        deposit,
        withdrawal,
        transfer,
        wealth_purchase,
        wealth_redemption,
        loan_application,
        loan_decision,
        loan_repayment,
        loan_overdue,
        instalment_purchase,
        credit_report,
        revenue,
        marketing_spend,
        task_completed,
        feedback,
    ]
);

ids!(
    Fields,
    FieldId,
    field_id,
    [
        amount_fen,
        currency,
        terminal_id,
        merchant_id,
        device_id,
        channel,
        target_event_id,
        is_fraud,
        campaign,
        city,
        os,
        mobile,
        referrer_id,
        id_number,
        real_name,
        method,
        card_number,
        bank,
        card_type,
        session_secs,
        app_version,
        page,
        counterparty_id,
        product_id,
        product_type,
        application_id,
        term_months,
        loan_id,
        apr_bps,
        reason,
        principal_fen,
        interest_fen,
        days_overdue,
        overdue_fen,
        scenario_id,
        instalments,
        bureau,
        bureau_score,
        delinquencies_24m,
        inquiries_6m,
        open_accounts,
        stream,
        source_event_id,
        partner_id,
        task,
        reward_fen,
        kind,
        category,
        text,
        nps_score,
        ip,
        success,
        approved,
        fee_fen,
    ]
);

/// A field value under construction: (field name in [`Fields`], value).
pub(crate) enum V {
    I(i64),
    S(String),
    B(bool),
}

impl Emitter {
    pub(crate) fn new(reg: &Registry, seed: u64) -> Self {
        Self { seed, next: 0, types: Types::resolve(reg), f: Fields::resolve(reg) }
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.f
    }

    /// Builds an event with a deterministic id; fields are sorted by id as the log requires.
    pub(crate) fn event(&mut self, type_id: TypeId, user: Option<&str>, ts_us: i64, fields: Vec<(FieldId, V)>) -> Event {
        self.next += 1;
        let mut fields: Vec<(FieldId, Value)> = fields
            .into_iter()
            .map(|(id, v)| {
                (
                    id,
                    match v {
                        V::I(i) => Value::Int(i),
                        V::S(s) => Value::Str(s),
                        V::B(b) => Value::Bool(b),
                    },
                )
            })
            .collect();
        fields.sort_unstable_by_key(|(id, _)| *id);
        Event { event_id: format!("s{}-{}", self.seed, self.next), user_id: user.map(str::to_string), ts_us, type_id, fields }
    }

    /// Money fields: amount in fen, CNY.
    pub(crate) fn money(&self, amount_fen: i64) -> [(FieldId, V); 2] {
        [(self.f.amount_fen, V::I(amount_fen)), (self.f.currency, V::S("CNY".into()))]
    }
}
