//! The lineage graph of a dataset: the jobs that wrote it and the datasets they read
//! (upstream), the jobs that read it and the datasets they wrote (downstream), hop by hop.
//!
//! Built from COMPLETE events only: a started, failed or aborted run derived nothing. Each
//! run links its own inputs to its own outputs, so a job that writes different datasets from
//! different inputs in different runs (one segment job, many segments) does not make every
//! segment depend on every input. The index keeps one entry per distinct link, not per event.

use crate::LineageError;
use crate::event::{DatasetId, EventType, JobId, RunEvent};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Deepest graph answered, in jobs from the root each way.
pub const GRAPH_DEPTH_MAX: usize = 16;
/// Most nodes a graph holds; past it the graph says it is truncated.
pub const GRAPH_NODES_MAX: usize = 2000;

/// A node's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    /// A dataset.
    Dataset(DatasetId),
    /// A job.
    Job(JobId),
}

/// A job's latest completed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    /// Its id.
    pub run_id: Uuid,
    /// When it completed, UTC microseconds.
    pub completed_us: i64,
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Which dataset or job.
    pub id: NodeId,
    /// For a job, its latest completed run.
    pub last_run: Option<LastRun>,
}

/// Data flowing: from a dataset into the job that read it, or from a job into what it wrote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    /// Where the data came from.
    pub from: NodeId,
    /// Where it went.
    pub to: NodeId,
}

/// The lineage graph around one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// The dataset asked about.
    pub root: DatasetId,
    /// Datasets and jobs, sorted by id, the root included.
    pub nodes: Vec<Node>,
    /// Edges in the direction data flows, sorted.
    pub edges: Vec<Edge>,
    /// Whether [`GRAPH_NODES_MAX`] cut the graph short.
    pub truncated: bool,
}

impl NodeId {
    /// Its id as Marquez writes node ids: `dataset:NAMESPACE:NAME` or `job:NAMESPACE:NAME`.
    pub fn text(&self) -> String {
        match self {
            NodeId::Dataset(d) => format!("dataset:{}:{}", d.namespace, d.name),
            NodeId::Job(j) => format!("job:{}:{}", j.namespace, j.name),
        }
    }
}

impl Graph {
    /// The graph as JSON, in the shape of Marquez's lineage answer: each node with its id,
    /// type (`DATASET` or `JOB`), namespace and name (a job with its latest completed run),
    /// each edge from origin to destination.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|n| {
                let (kind, namespace, name) = match &n.id {
                    NodeId::Dataset(d) => ("DATASET", &d.namespace, &d.name),
                    NodeId::Job(j) => ("JOB", &j.namespace, &j.name),
                };
                let last_run = n.last_run.map(
                    |r| serde_json::json!({"run_id": r.run_id.to_string(), "completed_at": finpulse_core::time::format_us(r.completed_us)}),
                );
                serde_json::json!({"id": n.id.text(), "type": kind, "namespace": namespace, "name": name, "last_run": last_run})
            })
            .collect();
        let edges: Vec<serde_json::Value> =
            self.edges.iter().map(|e| serde_json::json!({"origin": e.from.text(), "destination": e.to.text()})).collect();
        serde_json::json!({
            "root": NodeId::Dataset(self.root.clone()).text(),
            "nodes": nodes,
            "edges": edges,
            "truncated": self.truncated,
        })
    }

    /// Whether data flows straight from `from` to `to`.
    pub fn has_edge(&self, from: &NodeId, to: &NodeId) -> bool {
        self.edges.binary_search_by(|e| (&e.from, &e.to).cmp(&(from, to))).is_ok()
    }

    /// The datasets in the graph.
    pub fn datasets(&self) -> impl Iterator<Item = &DatasetId> {
        self.nodes.iter().filter_map(|n| match &n.id {
            NodeId::Dataset(d) => Some(d),
            NodeId::Job(_) => None,
        })
    }

    /// The jobs in the graph.
    pub fn jobs(&self) -> impl Iterator<Item = &JobId> {
        self.nodes.iter().filter_map(|n| match &n.id {
            NodeId::Job(j) => Some(j),
            NodeId::Dataset(_) => None,
        })
    }
}

/// Job → the datasets on the far side of it, for one dataset.
type Links = BTreeMap<JobId, BTreeSet<DatasetId>>;

/// What completed runs derived from what, ready to answer graphs. Fed event by event, so a
/// server can keep one up to date instead of reading the store per question.
#[derive(Debug, Default)]
pub struct LineageIndex {
    /// Output → the jobs that wrote it → what those runs read.
    derived_from: BTreeMap<DatasetId, Links>,
    /// Input → the jobs that read it → what those runs wrote.
    feeds: BTreeMap<DatasetId, Links>,
    last_runs: BTreeMap<JobId, LastRun>,
}

impl LineageIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds what `event` says was derived, if it is a COMPLETE event; other events are ignored.
    pub fn add(&mut self, event: &RunEvent) {
        if event.event_type != EventType::Complete {
            return;
        }
        let job = event.job.id();
        let inputs: BTreeSet<DatasetId> = event.inputs.iter().map(|d| d.id()).collect();
        let outputs: BTreeSet<DatasetId> = event.outputs.iter().map(|d| d.id()).collect();
        for output in &outputs {
            self.derived_from.entry(output.clone()).or_default().entry(job.clone()).or_default().extend(inputs.iter().cloned());
        }
        for input in &inputs {
            self.feeds.entry(input.clone()).or_default().entry(job.clone()).or_default().extend(outputs.iter().cloned());
        }
        let run = LastRun { run_id: event.run.run_id, completed_us: event.event_time_us };
        let last = self.last_runs.entry(job).or_insert(run);
        if run.completed_us > last.completed_us {
            *last = run;
        }
    }

    /// The datasets and jobs up to `depth` jobs upstream and downstream of `root` (0: the root
    /// alone). Upstream follows writers back to what they read; downstream follows readers on
    /// to what they wrote; the two walks are separate, so siblings (other outputs of an
    /// upstream job) are not included.
    pub fn graph(&self, root: &DatasetId, depth: usize) -> Result<Graph, LineageError> {
        check_depth(depth)?;
        let mut builder = Builder::default();
        builder.add_node(NodeId::Dataset(root.clone()), None);
        self.walk(root, depth, Direction::Upstream, &mut builder);
        self.walk(root, depth, Direction::Downstream, &mut builder);
        let nodes = builder.nodes.into_iter().map(|(id, last_run)| Node { id, last_run }).collect();
        Ok(Graph { root: root.clone(), nodes, edges: builder.edges.into_iter().collect(), truncated: builder.truncated })
    }

    fn walk(&self, root: &DatasetId, depth: usize, direction: Direction, builder: &mut Builder) {
        let links = match direction {
            Direction::Upstream => &self.derived_from,
            Direction::Downstream => &self.feeds,
        };
        let mut seen = BTreeSet::from([root.clone()]);
        let mut frontier = vec![root.clone()];
        for _ in 0..depth {
            let mut next = Vec::new();
            for dataset in &frontier {
                for (job, far_side) in links.get(dataset).into_iter().flatten() {
                    let (here, job_node) = (NodeId::Dataset(dataset.clone()), NodeId::Job(job.clone()));
                    if !builder.add_node(job_node.clone(), self.last_runs.get(job).copied()) {
                        return;
                    }
                    builder.add_edge(direction, here, job_node.clone());
                    for other in far_side {
                        if !builder.add_node(NodeId::Dataset(other.clone()), None) {
                            return;
                        }
                        builder.add_edge(direction, job_node.clone(), NodeId::Dataset(other.clone()));
                        if seen.insert(other.clone()) {
                            next.push(other.clone());
                        }
                    }
                }
            }
            frontier = next;
        }
    }
}

/// Refuses a depth over [`GRAPH_DEPTH_MAX`].
pub(crate) fn check_depth(depth: usize) -> Result<(), LineageError> {
    if depth > GRAPH_DEPTH_MAX {
        return Err(LineageError::DepthTooLarge { depth, max: GRAPH_DEPTH_MAX });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Upstream,
    Downstream,
}

#[derive(Default)]
struct Builder {
    nodes: BTreeMap<NodeId, Option<LastRun>>,
    edges: BTreeSet<Edge>,
    truncated: bool,
}

impl Builder {
    /// Adds a node unless the graph is full; answers whether the node is in the graph.
    fn add_node(&mut self, id: NodeId, last_run: Option<LastRun>) -> bool {
        if self.nodes.contains_key(&id) {
            return true;
        }
        if self.nodes.len() >= GRAPH_NODES_MAX {
            self.truncated = true;
            return false;
        }
        self.nodes.insert(id, last_run);
        true
    }

    /// Adds the link walked from `near` to `far`, turned to the direction data flows.
    fn add_edge(&mut self, direction: Direction, near: NodeId, far: NodeId) {
        let edge = match direction {
            Direction::Upstream => Edge { from: far, to: near },
            Direction::Downstream => Edge { from: near, to: far },
        };
        self.edges.insert(edge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Dataset;
    use crate::run::Run;

    const NS: &str = "finpulse://test";

    fn complete(index: &mut LineageIndex, job: &str, inputs: &[&str], outputs: &[&str]) {
        let datasets = |names: &[&str]| names.iter().map(|n| Dataset::new(NS, *n)).collect::<Vec<_>>();
        let (run, _) = Run::start(NS, job, datasets(inputs), datasets(outputs));
        index.add(&run.complete(datasets(outputs)));
    }

    fn dataset(name: &str) -> NodeId {
        NodeId::Dataset(DatasetId::new(NS, name))
    }

    fn job(name: &str) -> NodeId {
        NodeId::Job(JobId::new(NS, name))
    }

    #[test]
    fn each_run_links_only_its_own_inputs_to_its_own_outputs() {
        let mut index = LineageIndex::new();
        complete(&mut index, "segment", &["parquet", "labels"], &["segment_a"]);
        complete(&mut index, "segment", &["parquet"], &["segment_b"]);
        let graph = index.graph(&DatasetId::new(NS, "segment_b"), 1).unwrap();
        assert!(graph.has_edge(&dataset("parquet"), &job("segment")));
        assert!(!graph.datasets().any(|d| d.name == "labels"), "labels fed segment_a only: {graph:?}");
    }

    #[test]
    fn a_graph_with_too_many_nodes_says_it_is_truncated() {
        let mut index = LineageIndex::new();
        let inputs: Vec<String> = (0..GRAPH_NODES_MAX + 10).map(|i| format!("in{i}")).collect();
        let names: Vec<&str> = inputs.iter().map(String::as_str).collect();
        complete(&mut index, "report", &names, &["report"]);
        let graph = index.graph(&DatasetId::new(NS, "report"), 1).unwrap();
        assert!(graph.truncated);
        assert_eq!(graph.nodes.len(), GRAPH_NODES_MAX);
    }

    #[test]
    fn a_cycle_is_walked_once() {
        let mut index = LineageIndex::new();
        complete(&mut index, "merge", &["profiles", "events"], &["profiles"]);
        let graph = index.graph(&DatasetId::new(NS, "profiles"), GRAPH_DEPTH_MAX).unwrap();
        assert_eq!(graph.nodes.len(), 3);
        assert!(graph.has_edge(&job("merge"), &dataset("profiles")));
        assert!(graph.has_edge(&dataset("profiles"), &job("merge")));
        assert!(!graph.truncated);
    }

    #[test]
    fn a_depth_over_the_limit_is_refused() {
        let index = LineageIndex::new();
        assert!(matches!(index.graph(&DatasetId::new(NS, "x"), GRAPH_DEPTH_MAX + 1), Err(LineageError::DepthTooLarge { .. })));
    }
}
