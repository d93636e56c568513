//! The rows a behaviour function keeps per group: time, a bit mask of the conditions met and
//! an order key for rows tied in time, stored flat for all groups (no allocation per group) and
//! bucketed by group when results are due.

/// One group's rows, in the order they arrived.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// Timestamps.
    pub ts: &'a [i64],
    /// Conditions met, bit i for condition i+1.
    pub masks: &'a [u32],
    /// Order among rows tied in time: the events' log positions (`_seq`), or the arrival
    /// order where the query has none.
    pub order: &'a [u64],
}

impl Rows<'_> {
    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ts.len()
    }
}

/// Puts runs of items tied on `tie_key` (already sorted by it, ties in arrival order) into the
/// order of their rows' keys `order[row_of(item)]`, ties of that in arrival order. Ties in time
/// are rare, so this is one pass that sorts nothing in most groups: the items stay 16 bytes and
/// are sorted as before, and only the few tied runs pay for the order key.
pub fn order_ties<T, K: PartialEq>(items: &mut [T], order: &[u64], tie_key: impl Fn(&T) -> K, row_of: impl Fn(&T) -> u32) {
    if order.is_empty() {
        return;
    }
    let mut start = 0;
    while start < items.len() {
        let key = tie_key(&items[start]);
        let mut end = start + 1;
        while end < items.len() && tie_key(&items[end]) == key {
            end += 1;
        }
        if end - start > 1 {
            let run = &mut items[start..end];
            if !run.is_sorted_by_key(|i| order[row_of(i) as usize]) {
                run.sort_by_key(|i| order[row_of(i) as usize]);
            }
        }
        start = end;
    }
}

/// Rows of every group, in arrival order.
#[derive(Debug, Default)]
pub struct RowStore {
    group: Vec<u32>,
    ts: Vec<i64>,
    mask: Vec<u32>,
    order: Vec<u64>,
}

/// Rows bucketed by group: group g's rows are `ts[offsets[g]..offsets[g+1]]`.
#[derive(Debug, Default)]
pub struct Bucketed {
    /// Start of each group's rows, plus the end.
    pub offsets: Vec<usize>,
    /// Timestamps, grouped.
    pub ts: Vec<i64>,
    /// Masks, grouped.
    pub masks: Vec<u32>,
    /// Order keys, grouped.
    pub order: Vec<u64>,
}

impl Bucketed {
    /// Group `g`'s rows.
    pub fn rows(&self, g: usize) -> Rows<'_> {
        let range = self.offsets[g]..self.offsets[g + 1];
        Rows { ts: &self.ts[range.clone()], masks: &self.masks[range.clone()], order: &self.order[range] }
    }

    /// Number of groups.
    pub fn groups(&self) -> usize {
        self.offsets.len() - 1
    }
}

impl RowStore {
    /// Adds one row of group `g`.
    #[inline]
    pub fn push(&mut self, g: usize, ts: i64, mask: u32, order: u64) {
        self.group.push(g as u32);
        self.ts.push(ts);
        self.mask.push(mask);
        self.order.push(order);
    }

    /// Adds rows of group `g` (a partial state's list of them).
    pub fn extend_group(&mut self, g: usize, ts: &[i64], masks: &[u32], order: &[u64]) {
        self.group.extend(std::iter::repeat_n(g as u32, ts.len()));
        self.ts.extend_from_slice(ts);
        self.mask.extend_from_slice(masks);
        self.order.extend_from_slice(order);
    }

    /// Reserves room for `n` more rows.
    pub fn reserve(&mut self, n: usize) {
        self.group.reserve(n);
        self.ts.reserve(n);
        self.mask.reserve(n);
        self.order.reserve(n);
    }

    /// Bytes held.
    pub fn size_bytes(&self) -> usize {
        self.group.capacity() * 4 + self.ts.capacity() * 8 + self.mask.capacity() * 4 + self.order.capacity() * 8
    }

    /// Takes the rows of groups `0..n` out, bucketed by group (stable: each group's rows keep their
    /// arrival order); the rows of later groups stay, renumbered from 0.
    pub fn take_first(&mut self, n: usize) -> Bucketed {
        let mut counts = vec![0usize; n + 1];
        let all_taken = self.group.iter().all(|&g| (g as usize) < n);
        if all_taken && self.group.is_sorted() {
            // Rows already arrive grouped (input sorted by user, as a one-type query over the
            // compacted files gives): count, and hand the rows over.
            for &g in &self.group {
                counts[g as usize + 1] += 1;
            }
            for i in 1..=n {
                counts[i] += counts[i - 1];
            }
            self.group.clear();
            return Bucketed {
                offsets: counts,
                ts: std::mem::take(&mut self.ts),
                masks: std::mem::take(&mut self.mask),
                order: std::mem::take(&mut self.order),
            };
        }
        for &g in &self.group {
            if (g as usize) < n {
                counts[g as usize + 1] += 1;
            }
        }
        for i in 1..=n {
            counts[i] += counts[i - 1];
        }
        let total = counts[n];
        let offsets = counts.clone();
        let mut next = counts;
        let mut ts = vec![0i64; total];
        let mut masks = vec![0u32; total];
        let mut order = vec![0u64; total];
        for (((&g, &t), &m), &o) in self.group.iter().zip(&self.ts).zip(&self.mask).zip(&self.order) {
            let g = g as usize;
            if g < n {
                let at = next[g];
                ts[at] = t;
                masks[at] = m;
                order[at] = o;
                next[g] = at + 1;
            }
        }
        if all_taken {
            self.group.clear();
            self.ts.clear();
            self.mask.clear();
            self.order.clear();
        } else {
            let mut keep = 0;
            for i in 0..self.group.len() {
                let g = self.group[i] as usize;
                if g >= n {
                    self.group[keep] = (g - n) as u32;
                    self.ts[keep] = self.ts[i];
                    self.mask[keep] = self.mask[i];
                    self.order[keep] = self.order[i];
                    keep += 1;
                }
            }
            self.group.truncate(keep);
            self.ts.truncate(keep);
            self.mask.truncate(keep);
            self.order.truncate(keep);
        }
        Bucketed { offsets, ts, masks, order }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucketing_keeps_arrival_order_within_a_group_and_renumbers_the_rest() {
        let mut store = RowStore::default();
        for (g, ts) in [(2, 10), (0, 11), (2, 12), (1, 13), (0, 14), (3, 15)] {
            store.push(g, ts, 1, ts as u64);
        }
        let first = store.take_first(2);
        assert_eq!(first.groups(), 2);
        assert_eq!(first.rows(0).ts, &[11, 14]);
        assert_eq!(first.rows(0).order, &[11, 14]);
        assert_eq!(first.rows(1).ts, &[13]);
        let rest = store.take_first(2);
        assert_eq!(rest.rows(0).ts, &[10, 12]);
        assert_eq!(rest.rows(1).ts, &[15]);
        assert!(store.take_first(1).rows(0).is_empty());
    }

    #[test]
    fn rows_already_grouped_are_handed_over_in_order() {
        let mut store = RowStore::default();
        for (g, ts) in [(0, 10), (0, 11), (2, 12), (2, 13)] {
            store.push(g, ts, 1, ts as u64);
        }
        let all = store.take_first(3);
        assert_eq!(all.rows(0).ts, &[10, 11]);
        assert!(all.rows(1).is_empty());
        assert_eq!(all.rows(2).ts, &[12, 13]);
        assert!(store.take_first(1).rows(0).is_empty());
    }
}
