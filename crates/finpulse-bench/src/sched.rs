//! Where a process's threads spent a run: on a core, or runnable and waiting for one. Read from
//! Linux's `/proc/PID/task/TID/schedstat` (nanoseconds on a core, nanoseconds waiting on a run
//! queue); elsewhere there is nothing to read and the report is empty.

use std::collections::BTreeMap;
use std::time::Duration;

/// One thread's counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadTimes {
    pub name: String,
    pub on_core_ns: u64,
    pub waiting_ns: u64,
}

/// The counters of every thread of process `pid`, by thread id (empty when unreadable).
pub fn sample(pid: u32) -> BTreeMap<u32, ThreadTimes> {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return threads };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        let (Ok(name), Ok(stat)) =
            (std::fs::read_to_string(task.path().join("comm")), std::fs::read_to_string(task.path().join("schedstat")))
        else {
            continue;
        };
        if let Some(times) = parse_schedstat(name.trim(), &stat) {
            threads.insert(tid, times);
        }
    }
    threads
}

/// The calling thread's counters, read as it ends (a thread that has exited is gone from
/// `/proc`), or `None` when unreadable.
pub fn this_thread(name: &str) -> Option<ThreadTimes> {
    parse_schedstat(name, &std::fs::read_to_string("/proc/thread-self/schedstat").ok()?)
}

fn parse_schedstat(name: &str, stat: &str) -> Option<ThreadTimes> {
    let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (on_core_ns, waiting_ns) = (fields.next()??, fields.next()??);
    Some(ThreadTimes { name: name.to_string(), on_core_ns, waiting_ns })
}

/// Per thread name (threads of one name summed, e.g. a runtime's workers), the share of one
/// core each spent on a core and runnable but waiting between `before` and `after`, over
/// `wall`: "name ×n on a core A%, waiting B%". Threads that did not run are left out.
pub fn report(before: &BTreeMap<u32, ThreadTimes>, after: &BTreeMap<u32, ThreadTimes>, wall: Duration) -> Vec<String> {
    let mut by_name: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for (tid, end) in after {
        let (on0, wait0) = before.get(tid).map_or((0, 0), |b| (b.on_core_ns, b.waiting_ns));
        let (on, wait) = (end.on_core_ns.saturating_sub(on0), end.waiting_ns.saturating_sub(wait0));
        if on == 0 {
            continue;
        }
        let entry = by_name.entry(&end.name).or_default();
        *entry = (entry.0 + 1, entry.1 + on, entry.2 + wait);
    }
    let wall_ns = wall.as_nanos().max(1) as f64;
    let mut lines: Vec<(u64, String)> = by_name
        .into_iter()
        .map(|(name, (n, on, wait))| {
            let count = if n > 1 { format!(" ×{n}") } else { String::new() };
            (on, format!("{name}{count} on a core {:.0}%, waiting {:.0}%", on as f64 / wall_ns * 100.0, wait as f64 / wall_ns * 100.0))
        })
        .collect();
    lines.sort_by_key(|(on, _)| std::cmp::Reverse(*on));
    lines.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_of_one_name_are_summed_as_shares_of_one_core() {
        let t = |name: &str, on: u64, wait: u64| ThreadTimes { name: name.into(), on_core_ns: on, waiting_ns: wait };
        let before = BTreeMap::from([(1, t("worker", 100, 0)), (2, t("worker", 0, 0)), (3, t("writer", 0, 0)), (4, t("idle", 5, 5))]);
        let after = BTreeMap::from([
            (1, t("worker", 300_000_100, 500_000_000)),
            (2, t("worker", 200_000_000, 0)),
            (3, t("writer", 700_000_000, 100_000_000)),
            (4, t("idle", 5, 5)),
            (5, t("new", 10_000_000, 0)),
        ]);
        let lines = report(&before, &after, Duration::from_secs(1));
        assert_eq!(
            lines,
            vec!["writer on a core 70%, waiting 10%", "worker ×2 on a core 50%, waiting 50%", "new on a core 1%, waiting 0%"]
        );
    }

    #[test]
    fn a_schedstat_line_gives_time_on_a_core_and_waiting() {
        assert_eq!(parse_schedstat("w", "123 456 7\n"), Some(ThreadTimes { name: "w".into(), on_core_ns: 123, waiting_ns: 456 }));
        assert_eq!(parse_schedstat("w", "garbage"), None);
    }

    #[test]
    fn this_process_can_be_sampled_on_linux() {
        if cfg!(target_os = "linux") {
            let threads = sample(std::process::id());
            assert!(!threads.is_empty(), "no threads read from /proc");
        }
    }
}
