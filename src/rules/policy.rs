//! Decision shapes shared by rule families.

/// "At least `min_count` items that are at least `min_ratio` of all": the small-sample guard used by
/// every seller-level rate rule (one unlucky order at a big shop, or at a tiny one, must not alert).
/// Returns the score: 1.0 exactly at both thresholds, the geometric mean of how far each is exceeded.
pub fn count_and_ratio(count: u64, total: u64, min_count: u32, min_ratio: f64) -> Option<f64> {
    if count == 0 || total == 0 || count < min_count as u64 {
        return None;
    }
    let ratio = count as f64 / total as f64;
    if ratio < min_ratio {
        return None;
    }
    Some(((count as f64 / min_count.max(1) as f64) * (ratio / min_ratio)).sqrt())
}

/// A seller-level rate rule: "≥ `min_count` flagged items that are ≥ `min_ratio` of all, in the
/// window". Builds the finding with the evidence every such alert carries.
pub struct RatePolicy<'a> {
    pub rule: &'static str,
    pub window_hours: f64,
    pub min_count: u32,
    pub min_ratio: f64,
    pub scale: &'a crate::alert::SeverityScale,
    /// What the flagged items are and what they are counted out of, for the message:
    /// ("late", "orders that fell due").
    pub flagged_as: &'static str,
    pub out_of: &'static str,
}

impl RatePolicy<'_> {
    pub fn finding(
        &self,
        seller_id: &str,
        (flagged, total): (u64, u64),
        items: Vec<serde_json::Value>,
        trigger: String,
        now: crate::decode::Millis,
    ) -> Option<super::Finding> {
        let score = count_and_ratio(flagged, total, self.min_count, self.min_ratio)?;
        let ratio = flagged as f64 / total as f64;
        let evidence = serde_json::json!({
            "window_hours": self.window_hours,
            "flagged": flagged,
            "total": total,
            "ratio": round3(ratio),
            "thresholds": { "min_count": self.min_count, "min_ratio": self.min_ratio },
            "items": items,
        });
        let message = format!(
            "Seller {seller_id}: {flagged} of {total} {} in the last {}h were {} ({:.0}%; policy ≥{} and ≥{:.0}%).",
            self.out_of,
            self.window_hours,
            self.flagged_as,
            ratio * 100.0,
            self.min_count,
            self.min_ratio * 100.0
        );
        Some(super::Finding {
            rule: self.rule,
            score,
            severity: self.scale.severity(score),
            trigger,
            event_time: now,
            evidence,
            message,
        })
    }
}

/// How far `value` exceeds `threshold` (1.0 at the threshold).
pub fn excess(value: f64, threshold: f64) -> f64 {
    if threshold > 0.0 {
        value / threshold
    } else {
        1.0
    }
}

/// Figures in evidence and messages: cents for money…
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// …and three decimals for ratios.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_ratio_boundaries() {
        assert_eq!(count_and_ratio(1, 5, 2, 0.1), None, "below the count");
        assert_eq!(count_and_ratio(2, 21, 2, 0.1), None, "2/21 is below 10 %");
        assert_eq!(count_and_ratio(2, 20, 2, 0.1), Some(1.0), "exactly at both thresholds");
        let s = count_and_ratio(8, 20, 2, 0.1).unwrap();
        assert!((s - (4.0f64 * 4.0).sqrt()).abs() < 1e-9);
        assert_eq!(count_and_ratio(0, 0, 0, 0.1), None);
    }
}
