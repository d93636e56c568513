//! A simulated A/B experiment on top of the simulated app, with a known true effect: every new
//! user is exposed at signup (an `experiment_exposure` 1 s after their `user_signup`) to the
//! variation an assignment gives — the caller's, so the experiment engine's own assignment can
//! be used — and each user in a treatment comes back for one more session the next day with
//! probability [`SimExperiment::extra_session_p`]. Nothing else changes, so the treatment's
//! true effect on sessions in the week after exposure is exactly that probability, per user.
//!
//! It adds events to a day's and never draws from the simulator's random stream, so the app's
//! own events are the same with or without it. Whether a treatment user comes back is a hash of
//! the seed and the user id.

use finpulse_core::{Event, Registry, Value};

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// An experiment run on simulated users.
pub struct SimExperiment<F> {
    /// The experiment's key, as exposures record it.
    pub key: String,
    /// Variation keys, control first.
    pub variations: Vec<String>,
    /// The chance a treatment user has one more session the day after signup: the true
    /// effect, in sessions per user.
    pub extra_session_p: f64,
    /// Seeds whether each treatment user comes back.
    pub seed: u64,
    /// A user's variation (index into `variations`), or `None` when they are not in it.
    pub assign: F,
}

/// FNV-1a over the seed's bytes then the text: a stable hash for per-user draws.
fn hash(seed: u64, text: &str) -> u64 {
    seed.to_le_bytes()
        .iter()
        .chain(text.as_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

impl<F: Fn(&str) -> Option<usize>> SimExperiment<F> {
    /// Adds the day's exposures, and the extra sessions of the treatment users who come back,
    /// to `day` (one simulated day's events).
    pub fn apply(&self, registry: &Registry, day: &mut Vec<Event>) {
        let (Some(signup), Some(exposure), Some(session)) =
            (registry.type_id("user_signup"), registry.type_id("experiment_exposure"), registry.type_id("app_session"))
        else {
            return;
        };
        let (Some(key_field), Some(variation_field), Some(secs_field)) =
            (registry.field_id("experiment_key"), registry.field_id("variation"), registry.field_id("session_secs"))
        else {
            return;
        };
        let mut added = Vec::new();
        for e in day.iter().filter(|e| e.type_id == signup) {
            let Some(user) = e.user_id.as_deref() else { continue };
            let Some(v) = (self.assign)(user).filter(|v| *v < self.variations.len()) else { continue };
            let mut fields = vec![(key_field, Value::Str(self.key.clone())), (variation_field, Value::Str(self.variations[v].clone()))];
            fields.sort_by_key(|(id, _)| *id);
            added.push(Event {
                event_id: format!("exposure-{}-{user}", self.key),
                user_id: Some(user.to_string()),
                ts_us: e.ts_us + 1_000_000,
                type_id: exposure,
                fields,
            });
            let draw = hash(self.seed, user) as f64 / u64::MAX as f64;
            if v > 0 && draw < self.extra_session_p {
                added.push(Event {
                    event_id: format!("extra-session-{}-{user}", self.key),
                    user_id: Some(user.to_string()),
                    ts_us: e.ts_us + DAY_US,
                    type_id: session,
                    fields: vec![(secs_field, Value::Int(180))],
                });
            }
        }
        day.extend(added);
    }
}
