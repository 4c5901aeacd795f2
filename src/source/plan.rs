//! Where the reader starts each partition after an ownership change (start, restart, rebalance).
//! Pure: the broker facts come in as [`Positions`], so every case is unit-tested.

use std::collections::{HashMap, HashSet};

/// What the brokers said, read by [`super::positions`].
#[derive(Debug, Clone, Default)]
pub struct Positions {
    pub partitions: Vec<i32>,
    /// The group's committed offset (next to read) per partition, where there is one.
    pub committed: HashMap<i32, i64>,
    /// Oldest and next offset per partition (`fetch_watermarks`).
    pub retained: HashMap<i32, (i64, i64)>,
    /// First offset at or after `since` per partition (`i64::MAX`: none); missing when the broker
    /// cannot look offsets up by time.
    pub at_lookback: HashMap<i32, i64>,
    /// Wall-clock time the state is rebuilt from (now − `state.recovery_lookback_hours`).
    pub since: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlan {
    pub partition: i32,
    /// First offset to read.
    pub start: i64,
    pub owned: bool,
    /// Owned and re-read below its committed offset: those messages rebuild state only (their
    /// alerts were delivered before the commit).
    pub recover_until: Option<i64>,
    /// Messages deleted by retention before the group processed them (committed offset older than
    /// the oldest retained one): lost, counted.
    pub lost_unread: i64,
    /// The rebuild starts at the oldest retained message, and older ones existed: if that message
    /// is younger than `since`, part of the lookback is gone (windows start short). The reader
    /// checks the first message's timestamp.
    pub check_history: bool,
}

/// Plans every partition: owned ones are judged, the others feed the cross-seller views only; both
/// are read from the same point so that those views equal a single instance's.
pub fn plan(pos: &Positions, owned: &HashSet<i32>) -> Vec<PartitionPlan> {
    let mut out = Vec::with_capacity(pos.partitions.len());
    for &p in &pos.partitions {
        let (low, _high) = pos.retained.get(&p).copied().unwrap_or((0, 0));
        let is_owned = owned.contains(&p);
        let mut pp = PartitionPlan {
            partition: p,
            start: low,
            owned: is_owned,
            recover_until: None,
            lost_unread: 0,
            check_history: false,
        };
        if let Some(&c) = pos.committed.get(&p) {
            // No timestamp lookup: re-read everything retained (more work, nothing missed).
            let lookback = pos.at_lookback.get(&p).copied().unwrap_or(low);
            pp.start = lookback.min(c).max(low);
            if c < low {
                pp.lost_unread = low - c;
            } else if is_owned && pp.start < c {
                pp.recover_until = Some(c);
            }
            pp.check_history = pp.start == low && low > 0;
        }
        out.push(pp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> Positions {
        Positions {
            partitions: vec![0, 1, 2],
            committed: HashMap::from([(0, 500), (1, 80)]),
            retained: HashMap::from([(0, (0, 900)), (1, (0, 100)), (2, (0, 50))]),
            at_lookback: HashMap::from([(0, 300), (1, i64::MAX), (2, 0)]),
            since: 1_000,
        }
    }

    #[test]
    fn owned_partitions_recover_from_the_lookback_to_their_commit() {
        let plan = plan(&pos(), &HashSet::from([0, 1]));
        // 0: lookback finds offset 300, commit at 500: 300..500 rebuild state.
        assert_eq!(plan[0].start, 300);
        assert_eq!(plan[0].recover_until, Some(500));
        // 1: nothing in the lookback: start at the commit, nothing to recover.
        assert_eq!((plan[1].start, plan[1].recover_until), (80, None));
        // 2: never committed: the whole retained partition, live.
        assert_eq!((plan[2].start, plan[2].recover_until, plan[2].owned), (0, None, false));
        assert!(plan.iter().all(|p| p.lost_unread == 0 && !p.check_history));
    }

    #[test]
    fn partitions_of_other_instances_are_read_from_the_same_point_but_not_recovered() {
        let plan = plan(&pos(), &HashSet::from([2]));
        assert_eq!((plan[0].start, plan[0].recover_until, plan[0].owned), (300, None, false));
        assert!(plan[2].owned);
    }

    #[test]
    fn without_timestamp_lookup_everything_retained_is_re_read() {
        let mut p = pos();
        p.at_lookback.clear();
        let plan = plan(&p, &HashSet::from([0]));
        assert_eq!((plan[0].start, plan[0].recover_until), (0, Some(500)));
    }

    #[test]
    fn retention_shorter_than_the_lookback_is_detected_and_counted() {
        let mut p = pos();
        // Partition 0 lost offsets below 400 (the lookback wanted 300): history may be short.
        p.retained.insert(0, (400, 900));
        // Partition 1 lost offsets below 90, past its commit at 80: ten messages never processed.
        p.retained.insert(1, (90, 100));
        let plan = plan(&p, &HashSet::from([0, 1]));
        assert_eq!((plan[0].start, plan[0].recover_until, plan[0].check_history), (400, Some(500), true));
        assert_eq!((plan[1].start, plan[1].lost_unread, plan[1].recover_until), (90, 10, None));
    }
}
