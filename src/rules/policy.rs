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
/// window". Emits the finding with the evidence every such alert carries.
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
    /// Small-sample guard for rules honest sellers also break now and then: with an honest rate
    /// `p` and a cut-off `α`, alert only when `flagged` or more of `total` would happen to an honest
    /// seller with probability below α (binomial tail). One unlucky week at a small shop does not alert.
    pub chance: Option<(f64, f64)>,
}

impl RatePolicy<'_> {
    /// Emits through `em` when the counts cross the policy and the seller's cooldown allows it.
    /// Most findings are suppressed by the cooldown, so the items (every flagged item in the
    /// window, read from the seller's state) and the trigger are built only after it said yes.
    #[allow(clippy::too_many_arguments)]
    pub fn emit(
        &self,
        em: &mut super::Emitter,
        seller: &mut super::SellerState,
        seller_id: &str,
        (flagged, total): (u64, u64),
        items: impl FnOnce(&super::SellerState) -> Vec<serde_json::Value>,
        trigger: impl FnOnce() -> String,
        now: crate::decode::Millis,
    ) {
        let Some(score) = count_and_ratio(flagged, total, self.min_count, self.min_ratio) else { return };
        let chance = match self.chance {
            Some((honest_rate, max_chance)) => {
                let p = binomial_tail(total, flagged, honest_rate);
                if p >= max_chance {
                    return;
                }
                Some((p, honest_rate, max_chance))
            }
            None => None,
        };
        let severity = self.scale.severity(score);
        if em.suppressed(seller, self.rule, now, severity) {
            return;
        }
        let ratio = flagged as f64 / total as f64;
        let mut evidence = serde_json::json!({
            "window_hours": self.window_hours,
            "flagged": flagged,
            "total": total,
            "ratio": round3(ratio),
            "thresholds": { "min_count": self.min_count, "min_ratio": self.min_ratio },
            "items": items(seller),
        });
        if let Some((p, honest_rate, max_chance)) = chance {
            evidence["chance_if_honest"] = serde_json::json!(p);
            evidence["thresholds"]["honest_rate"] = serde_json::json!(honest_rate);
            evidence["thresholds"]["max_chance"] = serde_json::json!(max_chance);
        }
        let message = format!(
            "Seller {seller_id}: {flagged} of {total} {} in the last {}h were {} ({:.0}%; policy ≥{} and ≥{:.0}%).",
            self.out_of,
            self.window_hours,
            self.flagged_as,
            ratio * 100.0,
            self.min_count,
            self.min_ratio * 100.0
        );
        let f =
            super::Finding { rule: self.rule, score, severity, trigger: trigger(), event_time: now, evidence, message };
        em.emit(seller_id, seller, f);
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p): summed upward from k in log space, so tiny tails stay exact.
pub fn binomial_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 || p >= 1.0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    let log_c: f64 = (1..=k).map(|j| ((n - k + j) as f64 / j as f64).ln()).sum();
    let mut log_t = log_c + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln();
    let step = (p / (1.0 - p)).ln();
    let (mut sum, mut i) = (0.0, k);
    loop {
        let t = log_t.exp();
        sum += t;
        // Past the mode the terms only shrink: stop once they no longer matter.
        if i == n || (i as f64 > n as f64 * p && t < sum * 1e-16) {
            return sum.min(1.0);
        }
        log_t += ((n - i) as f64 / (i + 1) as f64).ln() + step;
        i += 1;
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
    fn binomial_tail_matches_closed_forms() {
        // P(X ≥ 3), n = 3: p³.
        assert!((binomial_tail(3, 3, 0.03) - 2.7e-5).abs() < 1e-12);
        // P(X ≥ 1) = 1 − (1 − p)^n.
        assert!((binomial_tail(14, 1, 0.03) - (1.0 - 0.97f64.powi(14))).abs() < 1e-12);
        // P(X ≥ 3), n = 14, p = 0.03: 1 − P(0) − P(1) − P(2).
        let q = 0.97f64;
        let exact = 1.0 - q.powi(14) - 14.0 * 0.03 * q.powi(13) - 91.0 * 0.0009 * q.powi(12);
        assert!((binomial_tail(14, 3, 0.03) - exact).abs() < 1e-12, "{}", binomial_tail(14, 3, 0.03));
        assert_eq!(binomial_tail(10, 0, 0.5), 1.0);
        assert_eq!(binomial_tail(10, 11, 0.5), 0.0);
        // Large n without underflow: 400 late of 10 000 at 3 % is far in the tail, 250 is not.
        assert!(binomial_tail(10_000, 400, 0.03) < 1e-6);
        assert!(binomial_tail(10_000, 250, 0.03) > 0.99);
    }

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
