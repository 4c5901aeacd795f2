//! At-least-once offset tracking. Events leave the engine out of offset order (it releases them in
//! event-time order) and alerts are acknowledged asynchronously, so a partition's commit point is
//! the lowest offset not yet fully done: everything below it has been processed and its alerts
//! acknowledged by the broker.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
struct PartitionOffsets {
    pending: BTreeSet<i64>,
    /// Lowest and highest offsets received so far.
    low: Option<i64>,
    high: Option<i64>,
    /// Last offset handed to the consumer's offset store.
    stored: Option<i64>,
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<i32, PartitionOffsets>,
}

impl OffsetTracker {
    /// A message was read: it is pending until [`OffsetTracker::complete`].
    pub fn received(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        p.pending.insert(offset);
        p.high = Some(p.high.map_or(offset, |h| h.max(offset)));
        p.low = Some(p.low.map_or(offset, |l| l.min(offset)));
    }

    pub fn complete(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.pending.remove(&offset);
        }
    }

    /// The partition was revoked: forget it.
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Offsets that became storable since the last call, as `(partition, last done offset)`:
    /// every offset up to and including it is done. (rust-rdkafka's `store_offset` takes the last
    /// processed offset and commits offset + 1, like `store_offset_from_message`.)
    pub fn take_storable(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (part, p) in &mut self.partitions {
            let done_upto = match (p.pending.first(), p.high) {
                (Some(first), _) => first - 1,
                (None, Some(h)) => h,
                (None, None) => continue,
            };
            // Below the first offset read there is nothing of ours to commit.
            if p.stored.is_none_or(|s| done_upto > s) && p.low.is_some_and(|l| done_upto >= l) {
                p.stored = Some(done_upto);
                out.push((*part, done_upto));
            }
        }
        out
    }

    pub fn pending(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_point_waits_for_the_lowest_pending_offset() {
        let mut t = OffsetTracker::default();
        for o in 0..5 {
            t.received(0, o);
        }
        t.complete(0, 3);
        t.complete(0, 4);
        assert!(t.take_storable().is_empty(), "0 is still pending");
        t.complete(0, 0);
        assert_eq!(t.take_storable(), [(0, 0)]);
        t.complete(0, 1);
        t.complete(0, 2);
        assert_eq!(t.take_storable(), [(0, 4)]);
        assert!(t.take_storable().is_empty(), "nothing new");
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        t.received(0, 10);
        t.received(1, 20);
        t.complete(1, 20);
        assert_eq!(t.take_storable(), [(1, 20)]);
        t.forget(0);
        assert_eq!(t.pending(), 0);
    }
}
