//! What an experiment is, as people write it: its variations and their weights, who may enter
//! (a segment, filters on user properties, a share of traffic, a slice of a layer), the metrics
//! it is judged on and how, and — kept beside the definition — its status and the phases it
//! ran in. [`ExperimentDef::check`] checks a definition against the schema and the saved
//! segments before anything is stored; every error names the field at fault.

use crate::{BookError, VARIATIONS_MAX};
use finpulse_core::registry::{FieldType, Registry};
use serde::{Deserialize, Serialize};

/// Longest experiment key, variation key, layer or metric name, bytes (keys name files).
pub const KEY_BYTES_MAX: usize = finpulse_core::versions::NAME_BYTES_MAX;
/// How far the weights' sum may be from 1.
pub const WEIGHT_SUM_TOLERANCE: f64 = 1e-9;
/// Most metrics (goal and guardrail together) on one experiment.
pub const METRICS_MAX: usize = 32;
/// Most property filters in one experiment's targeting.
pub const FILTERS_MAX: usize = 16;
/// Longest metric window (after exposure) or covariate window (before it), days.
pub const WINDOW_DAYS_MAX: u32 = 366;
/// The metric window when none is given, days.
pub const WINDOW_DAYS_DEFAULT: u32 = 7;
/// The significance level when none is given.
pub const ALPHA_DEFAULT: f64 = 0.05;
/// The event whose fields are a user's properties (their first signup's), as in insights.
pub const USER_PROPERTIES_EVENT: &str = "user_signup";

/// An experiment as defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentDef {
    /// Its key: letters, digits, `_` and `-`. Also the hash seed of its assignments.
    pub key: String,
    /// What it tests.
    #[serde(default)]
    pub description: String,
    /// Control first, then the treatments; weights sum to 1.
    pub variations: Vec<VariationDef>,
    /// The share of eligible users (after targeting and the layer) who enter, in (0, 1].
    #[serde(default = "full_traffic")]
    pub traffic_share: f64,
    /// Who is eligible.
    #[serde(default)]
    pub targeting: Targeting,
    /// The slice of a layer it owns: experiments in one layer never share a user.
    #[serde(default)]
    pub layer: Option<LayerSlot>,
    /// What it is judged on.
    #[serde(default)]
    pub metrics: Vec<MetricDef>,
    /// How it is analysed.
    #[serde(default)]
    pub analysis: AnalysisSettings,
}

fn full_traffic() -> f64 {
    1.0
}

/// One variation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariationDef {
    /// Its key (`control`, `new_onboarding`), as exposures record it.
    pub key: String,
    /// Its share of the experiment's users.
    pub weight: f64,
}

/// Who may enter: every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targeting {
    /// Members of this saved segment (as of its last materialisation).
    #[serde(default)]
    pub segment: Option<String>,
    /// `user.FIELD OP VALUE` on user properties (the fields of a signup): OP is `=`, `!=`,
    /// `in` (comma-separated values), `>`, `>=`, `<` or `<=` (numbers).
    #[serde(default)]
    pub filters: Vec<String>,
}

/// A slice `[start, end)` of a layer's users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSlot {
    /// The layer's name.
    pub name: String,
    /// First share of the layer owned, in [0, 1).
    pub start: f64,
    /// First share past it, in (start, 1].
    pub end: f64,
}

impl LayerSlot {
    /// Whether two slices share any users.
    pub fn overlaps(&self, other: &LayerSlot) -> bool {
        self.name == other.name && self.start < other.end && other.start < self.end
    }
}

/// How a metric's per-user value is formed from events in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// 1 if the user did the event in the window, else 0.
    Conversion,
    /// How many times.
    Count,
    /// The sum of a numeric field (`amount_fen`).
    Sum,
    /// A sum or count over another (revenue per session): `event`/`field` over `denominator`.
    Ratio,
}

impl MetricKind {
    /// Its name in definitions.
    pub fn name(self) -> &'static str {
        match self {
            Self::Conversion => "conversion",
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Ratio => "ratio",
        }
    }
}

/// A ratio's denominator: a count of an event, or the sum of its field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// The event type.
    pub event: String,
    /// Summed when given, counted otherwise.
    #[serde(default)]
    pub field: Option<String>,
}

/// A metric, measured per exposed user over a window after their first exposure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// Its name in the report.
    pub name: String,
    /// Conversion, count, sum or ratio.
    pub kind: MetricKind,
    /// The event type (a ratio's numerator).
    pub event: String,
    /// The summed field: required by `sum`, optional for a ratio's numerator (counted when
    /// absent), refused otherwise.
    #[serde(default)]
    pub field: Option<String>,
    /// A ratio's denominator.
    #[serde(default)]
    pub denominator: Option<Component>,
    /// Days after the first exposure that count.
    #[serde(default = "window_days_default")]
    pub window_days: u32,
    /// When given, the same metric over this many days before the first exposure is the
    /// covariate of a CUPED (regression-adjusted) analysis.
    #[serde(default)]
    pub pre_window_days: Option<u32>,
    /// Lower is better (complaints, defaults).
    #[serde(default)]
    pub inverse: bool,
    /// A metric the experiment must not hurt, rather than one it tries to move.
    #[serde(default)]
    pub guardrail: bool,
}

fn window_days_default() -> u32 {
    WINDOW_DAYS_DEFAULT
}

/// Adjusting goal metrics' p-values for testing several at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm's step-down (family-wise error).
    #[default]
    Holm,
    /// Benjamini–Hochberg (false discovery rate).
    BenjaminiHochberg,
    /// None.
    None,
}

/// How an experiment is analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSettings {
    /// The significance level, in (0, 1).
    #[serde(default = "alpha_default")]
    pub alpha: f64,
    /// Always-valid (sequential) intervals and p-values, safe to look at every day.
    #[serde(default)]
    pub sequential: bool,
    /// Across goal metrics and variations.
    #[serde(default)]
    pub correction: Correction,
    /// A proper normal prior N(0, s²) on the relative effect for the Bayesian numbers; flat
    /// when absent.
    #[serde(default)]
    pub prior_stddev: Option<f64>,
}

fn alpha_default() -> f64 {
    ALPHA_DEFAULT
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self { alpha: ALPHA_DEFAULT, sequential: false, correction: Correction::Holm, prior_stddev: None }
    }
}

/// A comparison on a user property.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyTest {
    /// Equal to the text.
    Equals(String),
    /// Not equal (a user without the property is not equal).
    NotEquals(String),
    /// One of these.
    In(Vec<String>),
    /// Numerically greater than.
    Greater(f64),
    /// … or equal.
    GreaterOrEqual(f64),
    /// Numerically less than.
    Less(f64),
    /// … or equal.
    LessOrEqual(f64),
}

/// A checked `user.FIELD OP VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyFilter {
    /// The property (a signup field).
    pub property: String,
    /// What its value must pass.
    pub test: PropertyTest,
}

impl PropertyFilter {
    /// Parses `user.FIELD OP VALUE`; `field` names it in errors, and FIELD must be a field of
    /// [`USER_PROPERTIES_EVENT`].
    pub fn parse(text: &str, registry: &Registry, field: &str) -> Result<Self, BookError> {
        let bad = |message: String| BookError::field(field, message);
        let mut words = text.trim().splitn(3, char::is_whitespace);
        let (Some(name), Some(op), Some(value)) = (words.next(), words.next(), words.next()) else {
            return Err(bad(format!("'{text}' is not `user.FIELD OP VALUE`")));
        };
        let property = name.strip_prefix("user.").ok_or_else(|| bad(format!("'{name}' is not a user property (user.FIELD)")))?;
        let known = user_properties(registry);
        if !known.iter().any(|k| k == property) {
            return Err(bad(format!("'{property}' is not a user property (known: {})", known.join(", "))));
        }
        let value = value.trim();
        let number = || value.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| bad(format!("'{value}' is not a number")));
        let test = match op {
            "=" => PropertyTest::Equals(value.into()),
            "!=" => PropertyTest::NotEquals(value.into()),
            "in" => PropertyTest::In(value.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect()),
            ">" => PropertyTest::Greater(number()?),
            ">=" => PropertyTest::GreaterOrEqual(number()?),
            "<" => PropertyTest::Less(number()?),
            "<=" => PropertyTest::LessOrEqual(number()?),
            other => return Err(bad(format!("'{other}' is not =, !=, in, >, >=, < or <="))),
        };
        Ok(Self { property: property.into(), test })
    }

    /// Whether a user whose property has `value` (`None`: not known) passes.
    pub fn passes(&self, value: Option<&str>) -> bool {
        let Some(value) = value else { return false };
        let number = || value.trim().parse::<f64>().ok();
        match &self.test {
            PropertyTest::Equals(v) => value == v,
            PropertyTest::NotEquals(v) => value != v,
            PropertyTest::In(vs) => vs.iter().any(|v| v == value),
            PropertyTest::Greater(n) => number().is_some_and(|x| x > *n),
            PropertyTest::GreaterOrEqual(n) => number().is_some_and(|x| x >= *n),
            PropertyTest::Less(n) => number().is_some_and(|x| x < *n),
            PropertyTest::LessOrEqual(n) => number().is_some_and(|x| x <= *n),
        }
    }
}

/// The user properties filters may name: the fields of [`USER_PROPERTIES_EVENT`].
pub fn user_properties(registry: &Registry) -> Vec<String> {
    registry
        .type_id(USER_PROPERTIES_EVENT)
        .map(|t| registry.event_type(t).fields.iter().map(|f| registry.field(f.field).name.clone()).collect())
        .unwrap_or_default()
}

fn check_key(value: &str, field: &str) -> Result<(), BookError> {
    let ok =
        !value.is_empty() && value.len() <= KEY_BYTES_MAX && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(BookError::field(field, format!("'{value}': 1 to {KEY_BYTES_MAX} letters, digits, '_' or '-'"))) }
}

fn check_window(days: u32, field: &str) -> Result<(), BookError> {
    if (1..=WINDOW_DAYS_MAX).contains(&days) {
        Ok(())
    } else {
        Err(BookError::field(field, format!("{days} days: give 1 to {WINDOW_DAYS_MAX}")))
    }
}

/// Checks `event` (and a summed `field` of it) against the schema.
fn check_event(registry: &Registry, event: &str, field: Option<&str>, at: &str) -> Result<(), BookError> {
    let Some(type_id) = registry.type_id(event) else {
        return Err(BookError::field(&format!("{at}.event"), format!("no event type '{event}' in the schema")));
    };
    let Some(field) = field else { return Ok(()) };
    let spec = registry.event_type(type_id);
    let found = spec.fields.iter().map(|f| registry.field(f.field)).find(|f| f.name == field);
    match found {
        None => Err(BookError::field(&format!("{at}.field"), format!("event '{event}' has no field '{field}'"))),
        Some(f) if !matches!(f.ty, FieldType::Int | FieldType::Float) => {
            Err(BookError::field(&format!("{at}.field"), format!("'{field}' is {}, not a number", f.ty.name())))
        }
        Some(_) => Ok(()),
    }
}

impl MetricDef {
    fn check(&self, registry: &Registry, at: &str) -> Result<(), BookError> {
        check_key(&self.name, &format!("{at}.name"))?;
        check_event(registry, &self.event, self.field.as_deref(), at)?;
        check_window(self.window_days, &format!("{at}.window_days"))?;
        if let Some(days) = self.pre_window_days {
            check_window(days, &format!("{at}.pre_window_days"))?;
        }
        let field_at = format!("{at}.field");
        match self.kind {
            MetricKind::Sum if self.field.is_none() => return Err(BookError::field(&field_at, "a sum needs the field to add up")),
            MetricKind::Conversion | MetricKind::Count if self.field.is_some() => {
                return Err(BookError::field(&field_at, format!("a {} metric takes no field", self.kind.name())));
            }
            _ => {}
        }
        let denominator_at = format!("{at}.denominator");
        match (&self.denominator, self.kind) {
            (None, MetricKind::Ratio) => Err(BookError::field(&denominator_at, "a ratio needs a denominator")),
            (Some(_), kind) if kind != MetricKind::Ratio => {
                Err(BookError::field(&denominator_at, format!("a {} metric takes no denominator", kind.name())))
            }
            (Some(_), _) if self.pre_window_days.is_some() => {
                Err(BookError::field(&format!("{at}.pre_window_days"), "CUPED applies to conversion, count and sum metrics, not to ratios"))
            }
            (Some(d), _) => check_event(registry, &d.event, d.field.as_deref(), &denominator_at),
            (None, _) => Ok(()),
        }
    }
}

impl ExperimentDef {
    /// Checks the definition: keys, weights summing to 1 within [`WEIGHT_SUM_TOLERANCE`], the
    /// traffic share, the layer slice, the targeting against the user properties and
    /// `segments` (the saved segments' names), the metrics against the schema and the analysis
    /// settings. Returns the parsed property filters.
    pub fn check(&self, registry: &Registry, segments: &[&str]) -> Result<Vec<PropertyFilter>, BookError> {
        check_key(&self.key, "key")?;
        self.check_variations()?;
        if !(self.traffic_share > 0.0 && self.traffic_share <= 1.0) {
            return Err(BookError::field("traffic_share", format!("{} is not in (0, 1]", self.traffic_share)));
        }
        if let Some(layer) = &self.layer {
            check_key(&layer.name, "layer.name")?;
            if !(0.0 <= layer.start && layer.start < layer.end && layer.end <= 1.0) {
                return Err(BookError::field("layer", format!("[{}, {}) is not a slice of [0, 1)", layer.start, layer.end)));
            }
        }
        if let Some(segment) = &self.targeting.segment
            && !segments.contains(&segment.as_str())
        {
            let saved = if segments.is_empty() { "none".to_string() } else { segments.join(", ") };
            return Err(BookError::field("targeting.segment", format!("no segment '{segment}' (saved: {saved})")));
        }
        if self.targeting.filters.len() > FILTERS_MAX {
            return Err(BookError::field("targeting.filters", format!("at most {FILTERS_MAX} filters")));
        }
        let filters = (self.targeting.filters.iter().enumerate())
            .map(|(i, f)| PropertyFilter::parse(f, registry, &format!("targeting.filters[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        self.check_metrics(registry)?;
        self.check_analysis()?;
        Ok(filters)
    }

    fn check_variations(&self) -> Result<(), BookError> {
        let n = self.variations.len();
        if !(2..=VARIATIONS_MAX).contains(&n) {
            return Err(BookError::field("variations", format!("{n} variations: give 2 to {VARIATIONS_MAX}, control first")));
        }
        for (i, v) in self.variations.iter().enumerate() {
            check_key(&v.key, &format!("variations[{i}].key"))?;
            if self.variations[..i].iter().any(|w| w.key == v.key) {
                return Err(BookError::field(&format!("variations[{i}].key"), format!("'{}' is given twice", v.key)));
            }
            if !(v.weight.is_finite() && v.weight >= 0.0) {
                return Err(BookError::field(&format!("variations[{i}].weight"), format!("{} is not a non-negative number", v.weight)));
            }
        }
        let sum: f64 = self.variations.iter().map(|v| v.weight).sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(BookError::field("variations", format!("the weights sum to {sum}, not 1 (within {WEIGHT_SUM_TOLERANCE:e})")));
        }
        Ok(())
    }

    fn check_metrics(&self, registry: &Registry) -> Result<(), BookError> {
        if self.metrics.len() > METRICS_MAX {
            return Err(BookError::field("metrics", format!("at most {METRICS_MAX} metrics, got {}", self.metrics.len())));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let at = format!("metrics[{i}]");
            m.check(registry, &at)?;
            if self.metrics[..i].iter().any(|o| o.name == m.name) {
                return Err(BookError::field(&format!("{at}.name"), format!("'{}' is given twice", m.name)));
            }
        }
        Ok(())
    }

    fn check_analysis(&self) -> Result<(), BookError> {
        let a = &self.analysis;
        if !(a.alpha > 0.0 && a.alpha < 1.0) {
            return Err(BookError::field("analysis.alpha", format!("{} is not in (0, 1)", a.alpha)));
        }
        if let Some(s) = a.prior_stddev
            && !(s.is_finite() && s > 0.0)
        {
            return Err(BookError::field("analysis.prior_stddev", format!("{s} is not a positive number")));
        }
        Ok(())
    }

    /// The weights, control first.
    pub fn weights(&self) -> Vec<f64> {
        self.variations.iter().map(|v| v.weight).collect()
    }

    /// Where this definition changes how users are split (variations and weights, traffic
    /// share, layer slice) compared to `earlier`: the field named, or `None`.
    pub fn split_change(&self, earlier: &ExperimentDef) -> Option<&'static str> {
        if self.variations != earlier.variations {
            Some("variations")
        } else if self.traffic_share != earlier.traffic_share {
            Some("traffic_share")
        } else if self.layer != earlier.layer {
            Some("layer")
        } else {
            None
        }
    }
}

/// Where an experiment is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Defined, never started: its split may still change.
    #[default]
    Draft,
    /// Assigning users.
    Running,
    /// Not assigning; a restart assigns every user as before.
    Stopped,
}

impl Status {
    /// As written (`draft`, `running`, `stopped`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// One period of running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// When it started, microseconds since the epoch (UTC).
    pub start_us: i64,
    /// When it stopped; `None` while running.
    #[serde(default)]
    pub stop_us: Option<i64>,
}

/// An experiment as stored: its definition, status and phases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// What it is.
    pub definition: ExperimentDef,
    /// Where it is.
    #[serde(default)]
    pub status: Status,
    /// When it ran, oldest first.
    #[serde(default)]
    pub phases: Vec<Phase>,
}

impl Experiment {
    /// Whether it ever started (its split is then fixed).
    pub fn has_started(&self) -> bool {
        !self.phases.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn two_way(key: &str) -> ExperimentDef {
        ExperimentDef {
            key: key.into(),
            description: String::new(),
            variations: vec![VariationDef { key: "control".into(), weight: 0.5 }, VariationDef { key: "treatment".into(), weight: 0.5 }],
            traffic_share: 1.0,
            targeting: Targeting::default(),
            layer: None,
            metrics: vec![MetricDef {
                name: "deposited".into(),
                kind: MetricKind::Conversion,
                event: "deposit".into(),
                field: None,
                denominator: None,
                window_days: 7,
                pre_window_days: None,
                inverse: false,
                guardrail: false,
            }],
            analysis: AnalysisSettings::default(),
        }
    }

    fn error(def: &ExperimentDef) -> String {
        def.check(&Registry::builtin(), &["new_users"]).unwrap_err().to_string()
    }

    #[test]
    fn weights_must_sum_to_one() {
        let mut def = two_way("e");
        def.variations[1].weight = 0.4;
        assert!(error(&def).starts_with("variations: the weights sum to 0.9, not 1"), "{}", error(&def));
        def.variations[1].weight = 0.5 + 1e-8;
        assert!(error(&def).starts_with("variations:"));
        def.variations[1].weight = 0.5 + 1e-12;
        assert!(def.check(&Registry::builtin(), &[]).is_ok());
        def.variations[1].weight = -0.5;
        assert!(error(&def).starts_with("variations[1].weight:"));
    }

    #[test]
    fn unknown_events_fields_and_segments_are_named() {
        let mut def = two_way("e");
        def.metrics[0].event = "teleport".into();
        assert_eq!(error(&def), "metrics[0].event: no event type 'teleport' in the schema");
        let mut def = two_way("e");
        def.metrics[0].kind = MetricKind::Sum;
        def.metrics[0].field = Some("currency".into());
        assert_eq!(error(&def), "metrics[0].field: 'currency' is string, not a number");
        def.metrics[0].field = Some("amount_fen".into());
        def.metrics[0].pre_window_days = Some(14);
        assert!(def.check(&Registry::builtin(), &[]).is_ok());
        def.targeting.segment = Some("vips".into());
        assert_eq!(error(&def), "targeting.segment: no segment 'vips' (saved: new_users)");
        def.targeting.segment = None;
        def.targeting.filters = vec!["user.shoe_size > 40".into()];
        assert!(error(&def).starts_with("targeting.filters[0]: 'shoe_size' is not a user property"), "{}", error(&def));
    }

    #[test]
    fn a_ratio_needs_a_denominator_and_takes_no_covariate() {
        let mut def = two_way("e");
        def.metrics[0].kind = MetricKind::Ratio;
        def.metrics[0].event = "revenue".into();
        def.metrics[0].field = Some("amount_fen".into());
        assert_eq!(error(&def), "metrics[0].denominator: a ratio needs a denominator");
        def.metrics[0].denominator = Some(Component { event: "app_session".into(), field: None });
        assert!(def.check(&Registry::builtin(), &[]).is_ok());
        def.metrics[0].pre_window_days = Some(7);
        assert!(error(&def).starts_with("metrics[0].pre_window_days:"), "{}", error(&def));
    }

    #[test]
    fn filters_parse_and_pass_on_user_properties() {
        let r = Registry::builtin();
        let f = PropertyFilter::parse("user.channel in douyin, wechat", &r, "f").unwrap();
        assert!(f.passes(Some("wechat")) && !f.passes(Some("baidu")) && !f.passes(None));
        let f = PropertyFilter::parse("user.channel != douyin", &r, "f").unwrap();
        assert!(f.passes(Some("wechat")) && !f.passes(Some("douyin")));
        assert!(PropertyFilter::parse("user.channel ~ x", &r, "f").unwrap_err().to_string().starts_with("f: '~' is not"));
    }

    #[test]
    fn overlapping_slices_share_a_layer_and_a_range() {
        let a = LayerSlot { name: "home".into(), start: 0.0, end: 0.5 };
        assert!(a.overlaps(&LayerSlot { name: "home".into(), start: 0.4, end: 1.0 }));
        assert!(!a.overlaps(&LayerSlot { name: "home".into(), start: 0.5, end: 1.0 }));
        assert!(!a.overlaps(&LayerSlot { name: "other".into(), start: 0.0, end: 1.0 }));
    }
}
