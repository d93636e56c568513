//! The built-in catalogue of fintech event types. Ids here are part of the log format: append
//! new fields and types at the end, never reorder or reuse.

use crate::class::DataClass;
use crate::mask::MaskStyle;
use crate::registry::{FieldCheck, FieldType, Scope};

/// A built-in field: name, type, class, whether it must be non-negative, and what it means.
pub struct BuiltinField {
    /// Field name, unique across the catalogue.
    pub name: &'static str,
    /// Value type.
    pub ty: FieldType,
    /// Data class.
    pub class: DataClass,
    /// The extra check its values pass.
    pub check: FieldCheck,
    /// How a masked value looks.
    pub mask: MaskStyle,
    /// One line on what it means.
    pub doc: &'static str,
}

/// A built-in event type: its fields as (name, required).
pub struct BuiltinType {
    /// Type name.
    pub name: &'static str,
    /// Whether it belongs to a user or to the business.
    pub scope: Scope,
    /// Fields with their required flag.
    pub fields: &'static [(&'static str, bool)],
    /// One line on what it records.
    pub doc: &'static str,
}

use DataClass as C;
use FieldType::*;

const fn f(name: &'static str, ty: FieldType, class: DataClass, doc: &'static str) -> BuiltinField {
    BuiltinField { name, ty, class, check: FieldCheck::None, mask: MaskStyle::Partial, doc }
}
const fn masked(name: &'static str, mask: MaskStyle, doc: &'static str) -> BuiltinField {
    BuiltinField { name, ty: String, class: C::SENSITIVE, check: FieldCheck::None, mask, doc }
}
const fn nn(name: &'static str, ty: FieldType, class: DataClass, doc: &'static str) -> BuiltinField {
    BuiltinField { name, ty, class, check: FieldCheck::NonNegative, mask: MaskStyle::Partial, doc }
}

/// Every built-in field, in id order.
pub const FIELDS: &[BuiltinField] = &[
    nn("amount_fen", Int, C::PERSONAL, "amount in minor units of `currency` (fen for CNY)"),
    BuiltinField {
        name: "currency",
        ty: String,
        class: C::INTERNAL,
        check: FieldCheck::Currency,
        mask: MaskStyle::Partial,
        doc: "ISO 4217 code, e.g. CNY",
    },
    f("terminal_id", String, C::INTERNAL, "payment terminal (POS) id"),
    f("merchant_id", String, C::INTERNAL, "merchant id"),
    f("device_id", String, C::PERSONAL, "device fingerprint"),
    f("channel", String, C::BASIC, "acquisition or transaction channel"),
    f("target_event_id", String, C::INTERNAL, "the event a label or correction refers to"),
    f("is_fraud", Bool, C::PERSONAL, "whether the target event was fraud"),
    f("campaign", String, C::BASIC, "marketing campaign"),
    f("city", String, C::PERSONAL, "city"),
    f("os", String, C::BASIC, "operating system"),
    masked("mobile", MaskStyle::Mobile, "mainland mobile number"),
    f("referrer_id", String, C::PERSONAL, "user id of the referrer"),
    masked("id_number", MaskStyle::IdNumber, "resident identity card number"),
    masked("real_name", MaskStyle::Name, "legal name"),
    f("method", String, C::BASIC, "how it was done (e.g. face, bank_transfer)"),
    masked("card_number", MaskStyle::Card, "bank card number (UnionPay)"),
    f("bank", String, C::BASIC, "issuing bank"),
    f("card_type", String, C::BASIC, "debit or credit"),
    nn("session_secs", Int, C::BASIC, "session duration in seconds"),
    f("app_version", String, C::INTERNAL, "app version"),
    f("page", String, C::BASIC, "app page or screen"),
    f("counterparty_id", String, C::PERSONAL, "the other party of a transfer"),
    f("product_id", String, C::INTERNAL, "wealth or loan product id"),
    f("product_type", String, C::INTERNAL, "product category"),
    f("application_id", String, C::INTERNAL, "loan application id"),
    nn("term_months", Int, C::PERSONAL, "loan term in months"),
    f("loan_id", String, C::INTERNAL, "loan id"),
    nn("apr_bps", Int, C::PERSONAL, "annual percentage rate in basis points"),
    f("reason", String, C::PERSONAL, "reason code"),
    nn("principal_fen", Int, C::PERSONAL, "principal part of a repayment, minor units"),
    nn("interest_fen", Int, C::PERSONAL, "interest part of a repayment, minor units"),
    nn("days_overdue", Int, C::PERSONAL, "days past due"),
    nn("overdue_fen", Int, C::PERSONAL, "amount past due, minor units"),
    f("scenario_id", String, C::INTERNAL, "partner scenario (e.g. food delivery)"),
    nn("instalments", Int, C::PERSONAL, "number of instalments"),
    f("bureau", String, C::INTERNAL, "credit bureau"),
    nn("bureau_score", Int, C::SENSITIVE, "bureau credit score"),
    nn("delinquencies_24m", Int, C::SENSITIVE, "delinquencies in the last 24 months"),
    nn("inquiries_6m", Int, C::SENSITIVE, "credit inquiries in the last 6 months"),
    nn("open_accounts", Int, C::SENSITIVE, "open credit accounts"),
    f("stream", String, C::INTERNAL, "revenue stream: interest, fees, value_added, scenario_finance, api_ecosystem"),
    f("source_event_id", String, C::INTERNAL, "the event that generated revenue"),
    f("partner_id", String, C::INTERNAL, "partner or developer app"),
    f("task", String, C::BASIC, "new-user task: verify_identity, bind_card, first_deposit, first_investment"),
    nn("reward_fen", Int, C::PERSONAL, "reward paid, minor units"),
    f("kind", String, C::BASIC, "feedback or complaint"),
    f("category", String, C::BASIC, "topic category"),
    f("text", String, C::PERSONAL, "free text written by the user"),
    nn("nps_score", Int, C::BASIC, "net promoter score answer, 0 to 10"),
    f("ip", String, C::PERSONAL, "client IP address"),
    f("success", Bool, C::BASIC, "whether it succeeded"),
    f("approved", Bool, C::PERSONAL, "whether it was approved"),
    nn("fee_fen", Int, C::PERSONAL, "fee charged, minor units"),
    f("decision", String, C::INTERNAL, "a risk decision: allow, review or block"),
    f("risk_score", Float, C::INTERNAL, "a risk decision's score in [0, 1]"),
    nn("ruleset_version", Int, C::INTERNAL, "the ruleset version a decision used"),
    nn("model_version", Int, C::INTERNAL, "the model version a decision used"),
    f("reasons", String, C::INTERNAL, "why a decision came out as it did (JSON)"),
    f("decision_us", Float, C::INTERNAL, "time a decision took, microseconds"),
    f("case_id", String, C::INTERNAL, "a risk case"),
    f("case_action", String, C::INTERNAL, "what was done to a case: assign, comment or resolve"),
    f("actor", String, C::INTERNAL, "the analyst (or system) who acted"),
    f("assignee", String, C::INTERNAL, "the analyst a case is assigned to"),
    f("note", String, C::PERSONAL, "an analyst's comment or resolution note"),
    f("experiment_key", String, C::BASIC, "the A/B experiment a user was exposed to"),
    f("variation", String, C::BASIC, "the experiment variation the user saw"),
];

/// Every built-in event type, in id order.
pub const TYPES: &[BuiltinType] = &[
    BuiltinType {
        name: "payment",
        scope: Scope::User,
        doc: "card payment at a merchant terminal",
        fields: &[
            ("amount_fen", true),
            ("currency", true),
            ("terminal_id", true),
            ("merchant_id", false),
            ("device_id", false),
            ("channel", false),
            ("card_number", false),
        ],
    },
    BuiltinType {
        name: "fraud_label",
        scope: Scope::Business,
        doc: "a late fraud verdict (e.g. chargeback) on an earlier event",
        fields: &[("target_event_id", true), ("is_fraud", true)],
    },
    BuiltinType {
        name: "user_signup",
        scope: Scope::User,
        doc: "a new user registered",
        fields: &[
            ("channel", true),
            ("campaign", false),
            ("city", false),
            ("os", false),
            ("device_id", false),
            ("mobile", false),
            ("referrer_id", false),
        ],
    },
    BuiltinType {
        name: "login",
        scope: Scope::User,
        doc: "a login attempt",
        fields: &[("device_id", false), ("ip", false), ("success", true)],
    },
    BuiltinType {
        name: "identity_verified",
        scope: Scope::User,
        doc: "real-name verification passed",
        fields: &[("id_number", true), ("real_name", false), ("method", false)],
    },
    BuiltinType {
        name: "card_bound",
        scope: Scope::User,
        doc: "a bank card was bound to the account",
        fields: &[("card_number", true), ("bank", false), ("card_type", false)],
    },
    BuiltinType {
        name: "app_session",
        scope: Scope::User,
        doc: "an app session ended",
        fields: &[("session_secs", true), ("device_id", false), ("os", false), ("app_version", false)],
    },
    BuiltinType { name: "page_view", scope: Scope::User, doc: "a screen was shown", fields: &[("page", true), ("product_id", false)] },
    BuiltinType {
        name: "deposit",
        scope: Scope::User,
        doc: "money moved into the account",
        fields: &[("amount_fen", true), ("currency", true), ("method", false)],
    },
    BuiltinType {
        name: "withdrawal",
        scope: Scope::User,
        doc: "money moved out of the account",
        fields: &[("amount_fen", true), ("currency", true), ("fee_fen", false)],
    },
    BuiltinType {
        name: "transfer",
        scope: Scope::User,
        doc: "a transfer to another party",
        fields: &[("amount_fen", true), ("currency", true), ("counterparty_id", false), ("fee_fen", false), ("device_id", false)],
    },
    BuiltinType {
        name: "wealth_purchase",
        scope: Scope::User,
        doc: "a wealth-management product was bought",
        fields: &[("product_id", true), ("product_type", true), ("amount_fen", true), ("currency", true)],
    },
    BuiltinType {
        name: "wealth_redemption",
        scope: Scope::User,
        doc: "a wealth-management holding was redeemed",
        fields: &[("product_id", true), ("product_type", false), ("amount_fen", true), ("currency", true)],
    },
    BuiltinType {
        name: "loan_application",
        scope: Scope::User,
        doc: "a loan was applied for",
        fields: &[("application_id", true), ("product_id", true), ("amount_fen", true), ("currency", true), ("term_months", true)],
    },
    BuiltinType {
        name: "loan_decision",
        scope: Scope::User,
        doc: "a loan application was approved or rejected",
        fields: &[
            ("application_id", true),
            ("approved", true),
            ("loan_id", false),
            ("amount_fen", false),
            ("currency", false),
            ("apr_bps", false),
            ("term_months", false),
            ("reason", false),
        ],
    },
    BuiltinType {
        name: "loan_repayment",
        scope: Scope::User,
        doc: "an instalment of a loan was repaid",
        fields: &[("loan_id", true), ("amount_fen", true), ("currency", true), ("principal_fen", false), ("interest_fen", false)],
    },
    BuiltinType {
        name: "loan_overdue",
        scope: Scope::User,
        doc: "a loan instalment is past due",
        fields: &[("loan_id", true), ("days_overdue", true), ("overdue_fen", true), ("currency", true)],
    },
    BuiltinType {
        name: "instalment_purchase",
        scope: Scope::User,
        doc: "a purchase paid in instalments inside a partner scenario",
        fields: &[("scenario_id", true), ("merchant_id", false), ("amount_fen", true), ("currency", true), ("instalments", true)],
    },
    BuiltinType {
        name: "credit_report",
        scope: Scope::User,
        doc: "a third-party credit bureau report",
        fields: &[
            ("bureau", true),
            ("bureau_score", true),
            ("delinquencies_24m", false),
            ("inquiries_6m", false),
            ("open_accounts", false),
        ],
    },
    BuiltinType {
        name: "revenue",
        scope: Scope::Business,
        doc: "revenue booked to a stream, for a user when user_id is set",
        fields: &[
            ("stream", true),
            ("amount_fen", true),
            ("currency", true),
            ("source_event_id", false),
            ("partner_id", false),
            ("product_id", false),
        ],
    },
    BuiltinType {
        name: "marketing_spend",
        scope: Scope::Business,
        doc: "marketing spend on a channel for a day",
        fields: &[("channel", true), ("campaign", false), ("amount_fen", true), ("currency", true)],
    },
    BuiltinType {
        name: "task_completed",
        scope: Scope::User,
        doc: "a new-user task was completed",
        fields: &[("task", true), ("reward_fen", false), ("currency", false)],
    },
    BuiltinType {
        name: "feedback",
        scope: Scope::User,
        doc: "feedback or a complaint from a user",
        fields: &[("kind", true), ("category", true), ("text", false), ("nps_score", false), ("channel", false)],
    },
    BuiltinType {
        name: "risk_decision",
        scope: Scope::User,
        doc: "the risk engine's decision on a transaction, recorded with it",
        fields: &[
            ("target_event_id", true),
            ("decision", true),
            ("risk_score", true),
            ("ruleset_version", true),
            ("model_version", false),
            ("reasons", false),
            ("decision_us", false),
        ],
    },
    BuiltinType {
        name: "case_update",
        scope: Scope::User,
        doc: "an analyst assigned, commented on or resolved a risk case",
        fields: &[("case_id", true), ("case_action", true), ("actor", true), ("assignee", false), ("note", false), ("is_fraud", false)],
    },
    BuiltinType {
        name: "experiment_exposure",
        scope: Scope::User,
        doc: "a user saw a variation of an A/B experiment (the first one starts the metric windows)",
        fields: &[("experiment_key", true), ("variation", true)],
    },
];
