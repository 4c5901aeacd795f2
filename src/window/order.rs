//! Event-time ordering: a reorder buffer released by a watermark, so that results never depend on
//! arrival order within the allowed lateness.
//!
//! The watermark is `min over input partitions of (max event time seen) − allowed lateness`, as in
//! Flink: a partition that has not delivered yet holds it back, a partition at its end (or declared
//! idle) does not. Buffered events are released in `(ts, event_id)` order once `ts < watermark`;
//! an event that arrives below the watermark is *late*: it is processed at once and counted.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::decode::{Event, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionClock {
    /// Assigned but nothing read yet: its events may be older than anything seen.
    Unseen,
    Active(Millis),
    /// Caught up (end of partition) or idle: does not hold the watermark back.
    Idle(Millis),
}

/// A buffered event's place in the release order `(ts, event_id, seq)`. The heap sifts these
/// 16-byte keys instead of whole events; `event_id` and `seq` are read from the slab only on a
/// `ts` tie, which is rare.
#[derive(Clone, Copy)]
struct Key {
    ts: Millis,
    slot: usize,
}

struct Slot<T> {
    seq: u64,
    event: Event,
    token: T,
}

/// `a` is released before `b`. A strict total order (`seq` is unique), so the release order does
/// not depend on how the heap happens to be laid out.
#[inline]
fn order<T>(slab: &[Option<Slot<T>>], a: Key, b: Key) -> Ordering {
    a.ts.cmp(&b.ts).then_with(|| {
        let tie = |k: Key| slab[k.slot].as_ref().map(|s| (&*s.event.event_id, s.seq));
        tie(a).cmp(&tie(b))
    })
}

#[inline]
fn before<T>(slab: &[Option<Slot<T>>], a: Key, b: Key) -> bool {
    order(slab, a, b) == Ordering::Less
}

/// Min-heap of keys into `slab`. Hand-written because the comparator needs the slab.
struct Reorder<T> {
    heap: Vec<Key>,
    slab: Vec<Option<Slot<T>>>,
    /// Vacant slab slots, reused before the slab grows: it stays as large as the peak buffered.
    free: Vec<usize>,
}

impl<T> Reorder<T> {
    fn new() -> Self {
        Reorder { heap: Vec::new(), slab: Vec::new(), free: Vec::new() }
    }

    fn push(&mut self, seq: u64, event: Event, token: T) {
        let ts = event.ts;
        let entry = Some(Slot { seq, event, token });
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i] = entry;
                i
            }
            None => {
                self.slab.push(entry);
                self.slab.len() - 1
            }
        };
        self.heap.push(Key { ts, slot });
        self.sift_up(self.heap.len() - 1);
    }

    fn peek_ts(&self) -> Option<Millis> {
        self.heap.first().map(|k| k.ts)
    }

    /// Removes the first key; its event stays in the slab until [`Reorder::release`].
    fn pop_slot(&mut self) -> Option<usize> {
        let last = self.heap.pop()?;
        let top = match self.heap.first_mut() {
            Some(root) => {
                let top = std::mem::replace(root, last);
                self.sift_down_to_bottom();
                top
            }
            None => last,
        };
        Some(top.slot)
    }

    fn release(&mut self, slot: usize) -> Option<(Event, T)> {
        self.free.push(slot);
        self.slab[slot].take().map(|s| (s.event, s.token))
    }

    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let (slab, free) = (&mut self.slab, &mut self.free);
        self.heap.retain(|k| {
            let kept = slab[k.slot].as_ref().is_some_and(|s| keep(&s.token));
            if !kept {
                slab[k.slot] = None;
                free.push(k.slot);
            }
            kept
        });
        // A sorted array is a valid heap; discarding is rare (a rebalance).
        let slab = &self.slab;
        self.heap.sort_unstable_by(|&a, &b| order(slab, a, b));
    }

    fn sift_up(&mut self, mut pos: usize) {
        let key = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !before(&self.slab, key, self.heap[parent]) {
                break;
            }
            self.heap[pos] = self.heap[parent];
            pos = parent;
        }
        self.heap[pos] = key;
    }

    /// The root's key was replaced by the last leaf: move the hole to the bottom along the smaller
    /// children, then sift the key up from there (fewer comparisons than stopping early, as std).
    fn sift_down_to_bottom(&mut self) {
        let end = self.heap.len();
        let key = self.heap[0];
        let (mut pos, mut child) = (0, 1);
        while child + 1 < end {
            if before(&self.slab, self.heap[child + 1], self.heap[child]) {
                child += 1;
            }
            self.heap[pos] = self.heap[child];
            pos = child;
            child = 2 * pos + 1;
        }
        if child + 1 == end {
            self.heap[pos] = self.heap[child];
            pos = child;
        }
        self.heap[pos] = key;
        self.sift_up(pos);
    }
}

/// A released event still held by the sequencer (see [`Sequencer::next_ready`]).
#[must_use = "release it, or its place is never reused"]
pub struct Ready(usize);

pub struct Sequencer<T> {
    lateness: i64,
    heap: Reorder<T>,
    seq: u64,
    partitions: BTreeMap<i32, PartitionClock>,
    watermark: Millis,
    max_seen: Millis,
}

/// What happened to a pushed event.
// Late arrivals are rare and hand the event straight back; boxing it would cost an allocation there
// and buy nothing on the common `Buffered` path.
#[allow(clippy::large_enum_variant)]
pub enum Admission<T> {
    Buffered,
    /// Below the watermark: the caller processes it now.
    Late(Event, T),
}

impl<T> Sequencer<T> {
    pub fn new(lateness_ms: i64) -> Self {
        Sequencer {
            lateness: lateness_ms.max(0),
            heap: Reorder::new(),
            seq: 0,
            partitions: BTreeMap::new(),
            watermark: Millis::MIN,
            max_seen: Millis::MIN,
        }
    }

    pub fn watermark(&self) -> Millis {
        self.watermark
    }

    /// The newest event time seen on any partition (`Millis::MIN` before the first event).
    pub fn max_seen(&self) -> Millis {
        self.max_seen
    }

    pub fn buffered(&self) -> usize {
        self.heap.heap.len()
    }

    /// Every partition read has caught up (none unseen or delivering): the input is quiet, not
    /// merely paused by backpressure or a broker outage.
    pub fn all_idle(&self) -> bool {
        !self.partitions.is_empty() && self.partitions.values().all(|c| matches!(c, PartitionClock::Idle(_)))
    }

    /// Partitions this instance now reads; they hold the watermark until they deliver or go idle.
    pub fn assign(&mut self, partition: i32) {
        self.partitions.entry(partition).or_insert(PartitionClock::Unseen);
    }

    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        self.recompute();
    }

    /// The partition reached its end: it stops holding the watermark back until it delivers again.
    pub fn mark_idle(&mut self, partition: i32) {
        if let Some(c) = self.partitions.get_mut(&partition) {
            *c = match *c {
                PartitionClock::Active(t) | PartitionClock::Idle(t) => PartitionClock::Idle(t),
                PartitionClock::Unseen => PartitionClock::Idle(Millis::MIN),
            };
        }
        self.recompute();
    }

    /// The partition may have unread events after all (a fetch reported more, or the connection
    /// dropped): it holds the watermark again at its newest event time, as if it had not caught up.
    pub fn hold(&mut self, partition: i32) {
        if let Some(c) = self.partitions.get_mut(&partition) {
            if let PartitionClock::Idle(t) = *c {
                *c = if t == Millis::MIN { PartitionClock::Unseen } else { PartitionClock::Active(t) };
            }
        }
    }

    pub fn push(&mut self, partition: i32, event: Event, token: T) -> Admission<T> {
        let ts = event.ts;
        self.max_seen = self.max_seen.max(ts);
        let clock = self.partitions.entry(partition).or_insert(PartitionClock::Unseen);
        let prev = match *clock {
            PartitionClock::Active(t) | PartitionClock::Idle(t) => t,
            PartitionClock::Unseen => Millis::MIN,
        };
        *clock = PartitionClock::Active(prev.max(ts));
        if ts < self.watermark {
            return Admission::Late(event, token);
        }
        self.seq += 1;
        self.heap.push(self.seq, event, token);
        self.recompute();
        Admission::Buffered
    }

    /// Drops buffered events whose token matches (a revoked partition's: its new owner re-reads
    /// them from the committed offset). Returns how many were dropped.
    pub fn discard(&mut self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let had = self.buffered();
        self.heap.retain(|t| !pred(t));
        had - self.buffered()
    }

    /// The next buffered event below the watermark, in `(ts, event_id)` order.
    pub fn pop_ready(&mut self) -> Option<(Event, T)> {
        let ready = self.next_ready()?;
        self.heap.release(ready.0)
    }

    /// As [`Sequencer::pop_ready`], but the event stays where it is buffered: read it with
    /// [`Sequencer::ready`], then [`Sequencer::release`] it. Moving a ~270-byte event out (through
    /// temporaries the compiler does not elide) stalled on store forwarding at every event.
    pub fn next_ready(&mut self) -> Option<Ready> {
        if self.heap.peek_ts().is_some_and(|ts| ts < self.watermark) {
            self.heap.pop_slot().map(Ready)
        } else {
            None
        }
    }

    pub fn ready(&self, r: &Ready) -> Option<(&Event, &T)> {
        self.heap.slab[r.0].as_ref().map(|s| (&s.event, &s.token))
    }

    /// Frees the event's place and hands back its token.
    pub fn release(&mut self, r: Ready) -> Option<T> {
        self.heap.release(r.0).map(|(_, t)| t)
    }

    /// Treat the stream as caught up (end of a replay file, or input idle): everything buffered
    /// becomes ready and the watermark moves just past the newest event seen.
    pub fn flush(&mut self) {
        if self.max_seen > Millis::MIN {
            self.watermark = self.watermark.max(self.max_seen.saturating_add(1));
        }
    }

    fn recompute(&mut self) {
        let (mut min, mut idle_max): (Option<Millis>, Millis) = (None, Millis::MIN);
        for c in self.partitions.values() {
            match c {
                PartitionClock::Unseen => return,
                PartitionClock::Active(t) => min = Some(min.map_or(*t, |m: Millis| m.min(*t))),
                PartitionClock::Idle(t) => idle_max = idle_max.max(*t),
            }
        }
        // Every partition caught up: nothing older than the newest event seen minus the lateness
        // can still come (the event contract), so those events need not wait for the idle flush.
        let bound = min.or((idle_max > Millis::MIN).then_some(idle_max));
        if let Some(m) = bound {
            self.watermark = self.watermark.max(m.saturating_sub(self.lateness));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Body;

    fn ev(id: &str, ts: Millis) -> Event {
        Event {
            event_id: id.into(),
            seller_id: "s".into(),
            ts,
            body: Body::SellerReply { conversation_id: "c".into() },
        }
    }

    fn drain(s: &mut Sequencer<()>) -> Vec<String> {
        std::iter::from_fn(|| s.pop_ready()).map(|(e, _)| e.event_id.to_string()).collect()
    }

    #[test]
    fn releases_in_event_time_order_whatever_the_arrival_order() {
        let arrivals = [("a", 100), ("c", 300), ("b", 200), ("d", 1_000)];
        let mut s = Sequencer::new(500);
        for (id, ts) in arrivals {
            assert!(matches!(s.push(0, ev(id, ts), ()), Admission::Buffered));
        }
        // watermark = 1000 − 500 = 500: a, b, c are ready, d is not.
        assert_eq!(drain(&mut s), ["a", "b", "c"]);
        s.flush();
        assert_eq!(drain(&mut s), ["d"]);
    }

    #[test]
    fn ties_break_on_event_id() {
        let mut s = Sequencer::new(0);
        s.push(0, ev("z", 5), ());
        s.push(0, ev("a", 5), ());
        s.flush();
        assert_eq!(drain(&mut s), ["a", "z"]);
    }

    #[test]
    fn late_events_are_reported() {
        let mut s = Sequencer::new(100);
        s.push(0, ev("a", 1_000), ());
        assert_eq!(s.watermark(), 900);
        assert!(matches!(s.push(0, ev("late", 899), ()), Admission::Late(..)));
        assert!(matches!(s.push(0, ev("ok", 900), ()), Admission::Buffered));
    }

    #[test]
    fn slowest_partition_holds_the_watermark_until_idle() {
        let mut s = Sequencer::new(0);
        s.assign(0);
        s.assign(1);
        s.push(0, ev("p0", 1_000), ());
        assert_eq!(s.watermark(), Millis::MIN, "partition 1 has not delivered");
        s.push(1, ev("p1", 400), ());
        assert_eq!(s.watermark(), 400);
        assert_eq!(drain(&mut s), Vec::<String>::new());
        s.mark_idle(1);
        assert_eq!(s.watermark(), 1_000);
        assert_eq!(drain(&mut s), ["p1"]);
        s.revoke(0);
        assert_eq!(s.discard(|_| true), 1);
        s.flush();
        assert_eq!(drain(&mut s), Vec::<String>::new());
    }

    #[test]
    fn all_partitions_caught_up_release_up_to_the_newest_minus_the_lateness() {
        let mut s = Sequencer::new(100);
        s.assign(0);
        s.assign(1);
        s.push(0, ev("a", 1_000), ());
        s.push(0, ev("b", 1_950), ());
        s.push(1, ev("c", 2_000), ());
        assert_eq!(s.watermark(), 1_850, "the slower partition (0, at 1,950) holds it");
        assert_eq!(drain(&mut s), ["a"]);
        s.mark_idle(0);
        s.mark_idle(1);
        // Nothing older than 2,000 − 100 may still arrive, on any partition.
        assert_eq!(s.watermark(), 1_900);
        assert_eq!(drain(&mut s), Vec::<String>::new(), "b (1,950) may still be overtaken");
        assert!(matches!(s.push(0, ev("late", 1_899), ()), Admission::Late(..)));
        assert!(matches!(s.push(0, ev("ok", 1_900), ()), Admission::Buffered));
    }

    /// Against a plain sort on `(ts, event_id, seq)`, with repeated ids and times, interleaved
    /// pops and a discard, so slots are freed and reused mid-stream.
    #[test]
    fn release_order_matches_sorting_by_ts_event_id_and_arrival() {
        let mut s: Sequencer<u64> = Sequencer::new(10_000);
        let mut expected: Vec<(Millis, String, u64)> = Vec::new();
        let mut got = Vec::new();
        let mut x: u64 = 12_345;
        for seq in 0..3_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            // Each flush moves the watermark past everything seen: later batches start above it.
            let ts = seq.div_ceil(97) as i64 * 1_000 + (x >> 33) as i64 % 50;
            let id = format!("e{}", (x >> 20) % 7);
            assert!(matches!(s.push(0, ev(&id, ts), seq), Admission::Buffered));
            expected.push((ts, id, seq));
            if seq % 97 == 0 {
                s.flush();
                got.extend(std::iter::from_fn(|| s.pop_ready()).map(|(e, t)| (e.ts, e.event_id.to_string(), t)));
            }
            if seq == 1_500 {
                let gone = s.discard(|t| t % 5 == 0);
                let still = |&(_, _, t): &(Millis, String, u64)| t % 5 != 0 || got.iter().any(|g| g.2 == t);
                let before = expected.len();
                expected.retain(still);
                assert_eq!(gone, before - expected.len());
            }
        }
        assert!(s.heap.slab.len() < 2_000, "freed slots are reused");
        s.flush();
        got.extend(std::iter::from_fn(|| s.pop_ready()).map(|(e, t)| (e.ts, e.event_id.to_string(), t)));
        assert_eq!(s.buffered(), 0);
        // Every flush releases everything, so each batch is sorted on its own.
        let mut want = Vec::new();
        let mut batch = Vec::new();
        for e in expected {
            let cut = e.2 % 97 == 0;
            batch.push(e);
            if cut {
                batch.sort();
                want.append(&mut batch);
            }
        }
        batch.sort();
        want.append(&mut batch);
        assert_eq!(got, want);
    }
}
