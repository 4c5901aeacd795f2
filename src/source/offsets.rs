//! At-least-once offset tracking. Events leave the engine out of offset order (it releases them in
//! event-time order) and alerts are acknowledged asynchronously, so a partition's commit point is
//! the lowest offset not yet fully done: everything below it has been processed and its alerts
//! acknowledged by the broker.
//!
//! An alert about a seller that was not caused by one of the seller's own messages (a timer, or a
//! review ring completed on another partition) *holds* the seller's partition at the highest offset
//! processed when it was made: nothing past it is committed until the alert is acknowledged. On a
//! rebuild the same alert is suppressed only if the commit went past that point, so none is lost.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// Offsets not yet done, with a count (holds can share an offset with a message).
    pending: BTreeMap<i64, u32>,
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
        *p.pending.entry(offset).or_default() += 1;
        p.high = Some(p.high.map_or(offset, |h| h.max(offset)));
        p.low = Some(p.low.map_or(offset, |l| l.min(offset)));
    }

    pub fn complete(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            if let Some(n) = p.pending.get_mut(&offset) {
                *n -= 1;
                if *n == 0 {
                    p.pending.remove(&offset);
                }
            }
        }
    }

    /// Keeps the commit point at or below `processed` (offsets above stay uncommitted) until
    /// [`OffsetTracker::release`] with the same arguments.
    pub fn hold(&mut self, partition: i32, processed: i64) {
        let p = self.partitions.entry(partition).or_default();
        *p.pending.entry(processed + 1).or_default() += 1;
    }

    pub fn release(&mut self, partition: i32, processed: i64) {
        self.complete(partition, processed + 1)
    }

    /// Offsets that became storable since the last call, as `(partition, last done offset)`:
    /// every offset up to and including it is done. (rust-rdkafka's `store_offset` takes the last
    /// processed offset and commits offset + 1, like `store_offset_from_message`.)
    pub fn take_storable(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (part, p) in &mut self.partitions {
            let done_upto = match (p.pending.first_key_value(), p.high) {
                (Some((first, _)), _) => (first - 1).min(p.high.unwrap_or(i64::MIN)),
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
        self.partitions.values().map(|p| p.pending.values().map(|n| *n as usize).sum::<usize>()).sum()
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
        t.complete(0, 10);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn a_hold_stops_the_commit_at_the_processed_offset_until_released() {
        let mut t = OffsetTracker::default();
        for o in 0..3 {
            t.received(0, o);
        }
        // An alert made when offset 1 was the highest processed.
        t.hold(0, 1);
        for o in 0..3 {
            t.complete(0, o);
        }
        t.received(0, 3);
        t.complete(0, 3);
        assert_eq!(t.take_storable(), [(0, 1)], "offsets 2 and 3 wait for the alert");
        t.release(0, 1);
        assert_eq!(t.take_storable(), [(0, 3)]);
        // A hold that shares its offset with a message: both must finish.
        t.received(0, 4);
        t.hold(0, 3);
        t.complete(0, 4);
        assert!(t.take_storable().is_empty());
        t.release(0, 3);
        assert_eq!(t.take_storable(), [(0, 4)]);
    }
}
