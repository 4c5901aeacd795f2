//! Trailing event-time windows shared by every rule family.
//!
//! * [`Counter`]: how many events fell in `(now − span, now]`, kept in fixed-width buckets so the
//!   cost per event and the memory are independent of the traffic (a 30-day window costs what a
//!   1-hour one does). Only non-empty buckets are stored, so an idle seller costs an empty deque.
//!   [`Counters`] keeps several series over the same span in one deque.
//! * [`TimedLog`]: the exact items in the window, for rare evidence that alerts must quote (flagged
//!   shipments, five-star reviews of the last day).
//!
//! Neither stores its span: the rule's [`Span`] is passed in, so per-seller state stays small.

use std::collections::VecDeque;

use crate::decode::Millis;

/// A window length and the bucket width that approximates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub len_ms: i64,
    pub bucket_ms: i64,
}

impl Span {
    /// `buckets` buckets across the window (at least 1 ms each).
    pub fn new(len_ms: i64, buckets: i64) -> Span {
        Span { len_ms, bucket_ms: (len_ms / buckets.max(1)).max(1) }
    }

    /// One-millisecond buckets: exact counting.
    pub fn exact(len_ms: i64) -> Span {
        Span { len_ms, bucket_ms: 1 }
    }

    fn bucket(&self, ts: Millis) -> i64 {
        ts.div_euclid(self.bucket_ms)
    }

    /// Oldest bucket still (partly) inside `(now − len, now]`.
    fn first_live_bucket(&self, now: Millis) -> i64 {
        self.bucket(now.saturating_sub(self.len_ms).saturating_add(1))
    }
}

/// Bucketed sliding counts of `N` series over one span, in one deque: a seller's standing keeps
/// ten series, and a deque each would cost ten allocations. The bucket straddling the window
/// start is counted whole, so a count may include up to one bucket's width of older events:
/// callers use it for denominators, where that errs on the side of not alerting.
#[derive(Debug, Clone)]
pub struct Counters<const N: usize> {
    buckets: VecDeque<(i64, [u32; N])>,
    total: [u64; N],
}

/// One series: the common case.
pub type Counter = Counters<1>;

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters { buckets: VecDeque::new(), total: [0; N] }
    }
}

impl<const N: usize> Counters<N> {
    /// Adds `n` to series `i` at `ts`.
    pub fn add_to(&mut self, i: usize, span: Span, ts: Millis, n: u32) {
        let b = span.bucket(ts);
        let pos = match self.buckets.back() {
            Some((last, _)) if *last == b => self.buckets.len() - 1,
            Some((last, _)) if *last > b => {
                // Out-of-order (late) add: find its place; rare, so linear from the back is fine.
                let pos = self.buckets.partition_point(|(k, _)| *k < b);
                if self.buckets.get(pos).is_none_or(|(k, _)| *k != b) {
                    self.buckets.insert(pos, (b, [0; N]));
                }
                pos
            }
            _ => {
                self.buckets.push_back((b, [0; N]));
                self.buckets.len() - 1
            }
        };
        let c = &mut self.buckets[pos].1[i];
        *c = c.saturating_add(n);
        self.total[i] += n as u64;
    }

    /// Every series' count in the window ending at `now`; forgets buckets that have left it.
    pub fn counts(&mut self, span: Span, now: Millis) -> [u64; N] {
        self.expire(span, now);
        self.total
    }

    /// The earliest time at which the counts change with nothing added: the oldest bucket leaves
    /// (`expire` drops bucket `b` once `now − len + 1` reaches bucket `b + 1`).
    pub fn next_expiry(&self, span: Span) -> Option<Millis> {
        let (b, _) = self.buckets.front()?;
        Some((b + 1).saturating_mul(span.bucket_ms).saturating_add(span.len_ms - 1))
    }

    pub fn expire(&mut self, span: Span, now: Millis) {
        let first = span.first_live_bucket(now);
        while let Some(&(b, c)) = self.buckets.front() {
            if b >= first {
                break;
            }
            for (t, c) in self.total.iter_mut().zip(c) {
                *t -= c as u64;
            }
            self.buckets.pop_front();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

impl Counter {
    pub fn add(&mut self, span: Span, ts: Millis, n: u32) {
        self.add_to(0, span, ts, n);
    }

    /// Count in the window ending at `now`; forgets buckets that have left it.
    pub fn count(&mut self, span: Span, now: Millis) -> u64 {
        self.counts(span, now)[0]
    }

    /// Sum of buckets that overlap `(from, to]` without expiring anything.
    pub fn sum_range(&self, span: Span, from: Millis, to: Millis) -> u64 {
        let lo = span.bucket(from.saturating_add(1));
        let hi = span.bucket(to);
        self.buckets.iter().filter(|(b, _)| *b >= lo && *b <= hi).map(|(_, [c])| *c as u64).sum()
    }
}

/// Exact items with their event times, oldest first.
#[derive(Debug, Clone)]
pub struct TimedLog<T> {
    items: VecDeque<(Millis, T)>,
}

impl<T> Default for TimedLog<T> {
    fn default() -> Self {
        TimedLog { items: VecDeque::new() }
    }
}

impl<T> TimedLog<T> {
    /// Insert keeping time order (events arrive sorted except late ones).
    pub fn push(&mut self, ts: Millis, item: T) {
        if self.items.back().is_none_or(|(t, _)| *t <= ts) {
            self.items.push_back((ts, item));
        } else {
            let pos = self.items.partition_point(|(t, _)| *t <= ts);
            self.items.insert(pos, (ts, item));
        }
    }

    /// Drop items outside `(now − len, now]` on the old side.
    pub fn expire(&mut self, len_ms: i64, now: Millis) {
        let cutoff = now.saturating_sub(len_ms);
        while self.items.front().is_some_and(|(t, _)| *t <= cutoff) {
            self.items.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &(Millis, T)> {
        self.items.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut (Millis, T)> {
        self.items.iter_mut()
    }

    pub fn first_ts(&self) -> Option<Millis> {
        self.items.front().map(|(t, _)| *t)
    }

    pub fn retain(&mut self, f: impl FnMut(&(Millis, T)) -> bool) {
        self.items.retain(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    /// `next_expiry` is exactly the first time `counts` drops the oldest bucket.
    #[test]
    fn next_expiry_is_when_the_oldest_bucket_leaves() {
        for span in [Span::exact(5 * H), Span::new(24 * H, 24), Span::new(30 * 24 * H, 30)] {
            let mut c = Counter::default();
            assert_eq!(c.next_expiry(span), None);
            c.add(span, 7 * H + 123, 1);
            c.add(span, 7 * H + 123 + span.bucket_ms, 1);
            let t = c.next_expiry(span).unwrap();
            assert_eq!(c.clone().count(span, t - 1), 2, "{span:?}");
            assert_eq!(c.count(span, t), 1, "{span:?}");
        }
    }

    #[test]
    fn exact_counter_boundaries() {
        let span = Span::exact(7 * 24 * H);
        let mut c = Counter::default();
        c.add(span, 0, 1);
        c.add(span, 10, 2);
        assert_eq!(c.count(span, 7 * 24 * H - 1), 3);
        // (now − len, now]: the event at 0 leaves exactly when now reaches len.
        assert_eq!(c.count(span, 7 * 24 * H), 2);
        assert_eq!(c.count(span, 7 * 24 * H + 10), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn bucketed_counter_counts_whole_straddling_bucket() {
        let span = Span::new(24 * H, 24); // 1 h buckets
        let mut c = Counter::default();
        c.add(span, 30 * 60_000, 1); // 00:30, bucket 0
        c.add(span, 5 * H, 1);
        // At 24:15 the window starts 00:15: bucket 0 straddles it and is counted whole.
        assert_eq!(c.count(span, 24 * H + 15 * 60_000), 2);
        // At 25:00 bucket 0 is wholly out.
        assert_eq!(c.count(span, 25 * H), 1);
    }

    #[test]
    fn late_adds_land_in_their_bucket() {
        let span = Span::new(24 * H, 24);
        let mut c = Counter::default();
        c.add(span, 10 * H, 1);
        c.add(span, 3 * H, 4);
        c.add(span, 10 * H + 5, 1);
        assert_eq!(c.sum_range(span, 2 * H, 4 * H), 4);
        assert_eq!(c.count(span, 12 * H), 6);
    }

    #[test]
    fn series_share_buckets_and_expire_together() {
        let span = Span::new(24 * H, 24);
        let mut c: Counters<2> = Counters::default();
        c.add_to(0, span, H, 1);
        c.add_to(1, span, 3 * H, 2);
        c.add_to(0, span, 2 * H, 1); // late: lands between
        assert_eq!(c.counts(span, 10 * H), [2, 2]);
        // Hourly buckets 1, 2, 3: at 26:00 the window starts in bucket 2.
        assert_eq!(c.counts(span, 26 * H), [1, 2]);
        assert_eq!(c.counts(span, 28 * H), [0, 0]);
        assert!(c.is_empty());
    }

    #[test]
    fn timed_log_orders_and_expires() {
        let mut l = TimedLog::default();
        l.push(5, "b");
        l.push(1, "a");
        l.push(9, "c");
        assert_eq!(l.iter().map(|(_, x)| *x).collect::<Vec<_>>(), ["a", "b", "c"]);
        l.expire(5, 10); // keeps (5, 10]
        assert_eq!(l.iter().map(|(_, x)| *x).collect::<Vec<_>>(), ["c"]);
    }
}
