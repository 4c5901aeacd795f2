//! "Flagged items out of all items in a trailing window": the shape of every seller-level rate
//! rule (fake shipments of shipments, late orders of orders due, unanswered of conversations…).
//! Flagged items are kept exactly (they are the alert's evidence); the total is a bucketed count.

use super::sliding::{Counter, Span, TimedLog};
use crate::decode::Millis;

#[derive(Debug, Clone)]
pub struct RateWindow<T> {
    pub flagged: TimedLog<T>,
    total: Counter,
}

impl<T> Default for RateWindow<T> {
    fn default() -> Self {
        RateWindow { flagged: TimedLog::default(), total: Counter::default() }
    }
}

impl<T> RateWindow<T> {
    /// Hourly buckets for the total across a window of `len_ms`.
    pub fn span(len_ms: i64) -> Span {
        Span::new(len_ms, (len_ms / 3_600_000).max(1))
    }

    pub fn count_total(&mut self, span: Span, ts: Millis) {
        self.total.add(span, ts, 1);
    }

    pub fn flag(&mut self, ts: Millis, item: T) {
        self.flagged.push(ts, item);
    }

    /// `(flagged, total)` in the window ending at `now`. An item flagged late (a timer) may have
    /// been counted before the window: the total never falls below the flagged count.
    pub fn counts(&mut self, span: Span, now: Millis) -> (u64, u64) {
        self.flagged.expire(span.len_ms, now);
        let flagged = self.flagged.len() as u64;
        (flagged, self.total.count(span, now).max(flagged))
    }

    /// Expires old entries; true when empty.
    pub fn sweep(&mut self, span: Span, now: Millis) -> bool {
        self.flagged.expire(span.len_ms, now);
        self.total.expire(span, now);
        self.flagged.is_empty() && self.total.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expire_together_and_total_covers_flagged() {
        let span = RateWindow::<()>::span(7 * 86_400_000);
        let mut w = RateWindow::default();
        for h in 0..10 {
            w.count_total(span, h * 3_600_000);
        }
        w.flag(5 * 3_600_000, "a");
        assert_eq!(w.counts(span, 20 * 3_600_000), (1, 10));
        // A flag for an item whose count has left the window still counts in the total.
        w.flag(8 * 86_400_000, "late");
        assert_eq!(w.counts(span, 8 * 86_400_000), (1, 1));
        assert!(w.sweep(span, 30 * 86_400_000));
    }
}
