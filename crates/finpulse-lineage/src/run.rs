//! The builder every derivation uses: [`Run::start`] gives the START event, then the run ends
//! with exactly one [`Run::complete`] or [`Run::fail`], which take the run by value so a run
//! cannot end twice or not say how it ended without the compiler seeing it dropped.

use crate::event::{
    Dataset, ERROR_MESSAGE_FACET_SCHEMA_URL, ErrorMessageFacet, EventType, Job, PRODUCER, PROGRAMMING_LANGUAGE, RUN_EVENT_SCHEMA_URL,
    RunEvent, RunFacets, RunInfo,
};
use finpulse_core::time::{MICROS_PER_SEC, now_us};
use std::collections::BTreeMap;
use uuid::{NoContext, Timestamp, Uuid};

/// Longest error message a FAIL event keeps; longer ones are cut (and say so), so one failure
/// with a huge message cannot make an event the store refuses.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 4096;

/// A run in progress: what its START said, kept for the event that ends it. Not `Clone`: one
/// run, one ending.
#[must_use = "a started run must end with complete() or fail()"]
#[derive(Debug)]
pub struct Run {
    run_id: Uuid,
    job: Job,
    inputs: Vec<Dataset>,
    outputs: Vec<Dataset>,
    started_us: i64,
}

impl Run {
    /// Starts a run of job `job_name` in `job_namespace` reading `inputs` and meaning to write
    /// `outputs`, now. Returns the run and its START event.
    pub fn start(
        job_namespace: impl Into<String>,
        job_name: impl Into<String>,
        inputs: Vec<Dataset>,
        outputs: Vec<Dataset>,
    ) -> (Run, RunEvent) {
        Self::start_at(job_namespace, job_name, inputs, outputs, now_us())
    }

    /// As [`Run::start`], at `at_us` (UTC microseconds): for derivations replayed or recorded
    /// after the fact. The run id is a UUIDv7 carrying that time, so ids sort by start.
    pub fn start_at(
        job_namespace: impl Into<String>,
        job_name: impl Into<String>,
        inputs: Vec<Dataset>,
        outputs: Vec<Dataset>,
        at_us: i64,
    ) -> (Run, RunEvent) {
        let since_epoch_us = at_us.max(0) as u64;
        let seconds = since_epoch_us / MICROS_PER_SEC as u64;
        let nanos = (since_epoch_us % MICROS_PER_SEC as u64) as u32 * 1000;
        let run_id = Uuid::new_v7(Timestamp::from_unix(NoContext, seconds, nanos));
        let job = Job { namespace: job_namespace.into(), name: job_name.into(), facets: BTreeMap::new() };
        let run = Run { run_id, job, inputs, outputs, started_us: at_us };
        let event = run.event(EventType::Start, at_us, run.outputs.clone(), RunFacets::default());
        (run, event)
    }

    /// The run's id.
    pub fn run_id(&self) -> Uuid {
        self.run_id
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Ends the run now: its `outputs` are written (as they are at the end, e.g. with the final
    /// schema). The COMPLETE event repeats the inputs, so it alone describes the derivation.
    pub fn complete(self, outputs: Vec<Dataset>) -> RunEvent {
        let at_us = self.not_before_start(now_us());
        self.complete_at(outputs, at_us)
    }

    /// As [`Run::complete`], at `at_us`.
    pub fn complete_at(self, outputs: Vec<Dataset>, at_us: i64) -> RunEvent {
        self.event(EventType::Complete, at_us, outputs, RunFacets::default())
    }

    /// Ends the run now as failed, saying why. The event names the outputs the run meant to
    /// write, none of which count as derived (the graph reads COMPLETE events only).
    pub fn fail(self, message: &str) -> RunEvent {
        let at_us = self.not_before_start(now_us());
        self.fail_at(message, at_us)
    }

    /// As [`Run::fail`], at `at_us`.
    pub fn fail_at(self, message: &str, at_us: i64) -> RunEvent {
        let facets = RunFacets {
            error_message: Some(ErrorMessageFacet {
                producer: PRODUCER.to_string(),
                schema_url: ERROR_MESSAGE_FACET_SCHEMA_URL.to_string(),
                message: bounded(message),
                programming_language: PROGRAMMING_LANGUAGE.to_string(),
                stack_trace: None,
            }),
            other: BTreeMap::new(),
        };
        self.event(EventType::Fail, at_us, self.outputs.clone(), facets)
    }

    /// The clock may step back during a run; an end before its start would read as nonsense.
    fn not_before_start(&self, at_us: i64) -> i64 {
        at_us.max(self.started_us)
    }

    fn event(&self, event_type: EventType, at_us: i64, outputs: Vec<Dataset>, facets: RunFacets) -> RunEvent {
        RunEvent {
            event_type,
            event_time_us: at_us,
            run: RunInfo { run_id: self.run_id, facets },
            job: self.job.clone(),
            inputs: self.inputs.clone(),
            outputs,
            producer: PRODUCER.to_string(),
            schema_url: RUN_EVENT_SCHEMA_URL.to_string(),
        }
    }
}

/// Cuts `message` to [`ERROR_MESSAGE_BYTES_MAX`] on a character boundary.
fn bounded(message: &str) -> String {
    if message.len() <= ERROR_MESSAGE_BYTES_MAX {
        return message.to_string();
    }
    let mut end = ERROR_MESSAGE_BYTES_MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…(cut)", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT_US: i64 = 1_772_323_200_000_000;

    #[test]
    fn a_run_keeps_its_id_job_and_inputs_from_start_to_complete() {
        let inputs = vec![Dataset::new("finpulse://t", "events")];
        let (run, start) =
            Run::start_at("finpulse://t", "compaction", inputs.clone(), vec![Dataset::new("finpulse://t", "parquet")], AT_US);
        let id = run.run_id();
        let done = run.complete_at(vec![Dataset::new("finpulse://t", "parquet")], AT_US + 5);
        assert_eq!(start.event_type, EventType::Start);
        assert_eq!(done.event_type, EventType::Complete);
        assert_eq!((start.run.run_id, done.run.run_id), (id, id));
        assert_eq!(done.inputs, inputs);
        assert_eq!(done.job.name, "compaction");
        assert_eq!(done.event_time_us, AT_US + 5);
    }

    #[test]
    fn run_ids_are_version_7_and_carry_the_start_time() {
        let (run, _) = Run::start_at("ns", "job", vec![], vec![], AT_US);
        assert_eq!(run.run_id().get_version_num(), 7);
        let (seconds, _) = run.run_id().get_timestamp().expect("a v7 id has a time").to_unix();
        assert_eq!(seconds as i64, AT_US / MICROS_PER_SEC);
        let (other, _) = Run::start_at("ns", "job", vec![], vec![], AT_US);
        assert_ne!(run.run_id(), other.run_id());
    }

    #[test]
    fn a_failed_run_says_why_in_the_error_message_facet() {
        let (run, _) = Run::start("ns", "pricing", vec![], vec![]);
        let failed = run.fail("segment store unreachable");
        assert_eq!(failed.event_type, EventType::Fail);
        let facet = failed.run.facets.error_message.expect("an error message facet");
        assert_eq!(facet.message, "segment store unreachable");
        assert_eq!(facet.programming_language, PROGRAMMING_LANGUAGE);
        assert!(failed.event_time_us >= AT_US);
    }

    #[test]
    fn an_over_long_error_message_is_cut_on_a_character_boundary() {
        let (run, _) = Run::start("ns", "export", vec![], vec![]);
        let failed = run.fail(&"错".repeat(ERROR_MESSAGE_BYTES_MAX));
        let message = failed.run.facets.error_message.unwrap().message;
        assert!(message.len() <= ERROR_MESSAGE_BYTES_MAX + "…(cut)".len());
        assert!(message.ends_with("…(cut)"));
    }
}
