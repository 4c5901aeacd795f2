//! Trailing-window median from mergeable quantile sketches (DDSketch): one sketch per time bucket,
//! merged on demand. Memory is bounded by buckets × sketch bins whatever the sample count, and the
//! relative error is a config value (1 % by default), far inside the 20–25 % thresholds it feeds.

use std::collections::VecDeque;

use sketches_ddsketch::{Config as SketchConfig, DDSketch};

use super::sliding::Span;
use crate::decode::Millis;

/// Buckets per window: 7 days in 8 buckets means the window edge moves in 21 h steps at worst
/// one bucket early; the median of a week barely moves in a day.
pub const BUCKETS_PER_WINDOW: i64 = 8;

#[derive(Clone)]
pub struct WindowedMedian {
    span: Span,
    sketch_config: SketchConfig,
    buckets: VecDeque<(i64, DDSketch)>,
    /// Merged median and the sample count it was computed at; recomputed once the count has moved
    /// by more than 1/64 (or a bucket expired), so a query is O(1) on the hot path.
    cached: Option<(u64, f64)>,
    count: u64,
}

impl std::fmt::Debug for WindowedMedian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowedMedian").field("span", &self.span).field("count", &self.count).finish()
    }
}

impl WindowedMedian {
    pub fn new(window_ms: i64, relative_accuracy: f64) -> Self {
        WindowedMedian {
            span: Span::new(window_ms, BUCKETS_PER_WINDOW),
            // 2048 bins cover values from 1e-9 to 1e9 at 1 %; money never needs more.
            sketch_config: SketchConfig::new(relative_accuracy, 2048, 1e-9),
            buckets: VecDeque::new(),
            cached: None,
            count: 0,
        }
    }

    pub fn insert(&mut self, ts: Millis, value: f64) {
        if !(value.is_finite() && value > 0.0) {
            return;
        }
        let b = ts.div_euclid(self.span.bucket_ms);
        let pos = self.buckets.partition_point(|(k, _)| *k < b);
        match self.buckets.get_mut(pos) {
            Some((k, s)) if *k == b => s.add(value),
            _ => {
                let mut s = DDSketch::new(self.sketch_config);
                s.add(value);
                self.buckets.insert(pos, (b, s));
            }
        }
        self.count += 1;
    }

    /// Samples in the window ending at `now` (after expiring old buckets).
    pub fn samples(&mut self, now: Millis) -> u64 {
        self.expire(now);
        self.count
    }

    /// Median of the window ending at `now`, if it holds at least `min_samples` values.
    pub fn median(&mut self, now: Millis, min_samples: u64) -> Option<f64> {
        self.expire(now);
        if self.count < min_samples.max(1) {
            return None;
        }
        if let Some((at, m)) = self.cached {
            if self.count.abs_diff(at) <= at / 64 {
                return Some(m);
            }
        }
        let mut merged = DDSketch::new(self.sketch_config);
        for (_, s) in &self.buckets {
            // Same config on both sides: merge cannot fail.
            let _ = merged.merge(s);
        }
        let m = merged.quantile(0.5).ok().flatten()?;
        self.cached = Some((self.count, m));
        Some(m)
    }

    /// Any quantile of the window ending at `now` (merged on demand: for rare checks, not the hot path).
    pub fn quantile(&mut self, now: Millis, q: f64, min_samples: u64) -> Option<f64> {
        self.expire(now);
        if self.count < min_samples.max(1) {
            return None;
        }
        let mut merged = DDSketch::new(self.sketch_config);
        for (_, s) in &self.buckets {
            let _ = merged.merge(s);
        }
        merged.quantile(q.clamp(0.0, 1.0)).ok().flatten()
    }

    fn expire(&mut self, now: Millis) {
        let first = now.saturating_sub(self.span.len_ms).saturating_add(1).div_euclid(self.span.bucket_ms);
        while let Some((b, s)) = self.buckets.front() {
            if *b >= first {
                break;
            }
            self.count -= s.count() as u64;
            self.buckets.pop_front();
            self.cached = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn median_within_relative_accuracy_and_needs_min_samples() {
        let mut m = WindowedMedian::new(7 * DAY, 0.01);
        for i in 1..=29 {
            m.insert(i * 1000, i as f64);
        }
        assert_eq!(m.median(30_000, 30), None, "29 samples are not enough");
        m.insert(30_000, 30.0);
        m.insert(30_001, 31.0);
        let med = m.median(31_000, 30).unwrap();
        assert!((med - 16.0).abs() / 16.0 <= 0.02, "median {med}");
    }

    #[test]
    fn old_buckets_leave_the_window() {
        let mut m = WindowedMedian::new(7 * DAY, 0.01);
        for i in 0..50 {
            m.insert(i, 100.0);
        }
        for i in 0..50 {
            m.insert(6 * DAY + i, 10.0);
        }
        let both = m.median(6 * DAY + 100, 30).unwrap();
        assert!((9.9..=100.5).contains(&both));
        // Eight days on, only the later values remain.
        let later = m.median(8 * DAY, 30).unwrap();
        assert!((later - 10.0).abs() < 0.2, "{later}");
        assert_eq!(m.samples(8 * DAY), 50);
        assert_eq!(m.samples(14 * DAY), 0);
    }

    #[test]
    fn ignores_non_positive_values() {
        let mut m = WindowedMedian::new(DAY, 0.01);
        m.insert(0, 0.0);
        m.insert(0, f64::NAN);
        m.insert(0, -1.0);
        assert_eq!(m.samples(1), 0);
    }
}
