//! Alert contract v1: what analysts read. Ids are deterministic so that a replay, a restart or a
//! duplicate delivery yields the same `alert_id` and downstream can deduplicate.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One step up, for aggravating evidence (dump-and-raise).
    pub fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            _ => Severity::Critical,
        }
    }
}

/// Score cut-offs for a rule family. A rule's score is 1.0 exactly at its threshold and grows with
/// the evidence; below `medium` an alert is `low`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityScale {
    pub medium: f64,
    pub high: f64,
    pub critical: f64,
}

impl SeverityScale {
    pub fn severity(&self, score: f64) -> Severity {
        if score >= self.critical {
            Severity::Critical
        } else if score >= self.high {
            Severity::High
        } else if score >= self.medium {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    pub fn validate(&self, key: &str) -> Result<(), crate::config::ConfigError> {
        let ok = [self.medium, self.high, self.critical].iter().all(|v| v.is_finite() && *v >= 0.0)
            && self.medium <= self.high
            && self.high <= self.critical;
        if ok {
            Ok(())
        } else {
            Err(crate::config::ConfigError::Invalid {
                key: key.into(),
                problem: format!("{self:?} is not 0 ≤ medium ≤ high ≤ critical"),
                fix: "order the cut-offs, e.g. { medium = 1.0, high = 2.0, critical = 4.0 }".into(),
            })
        }
    }
}

/// One alert (alert contract v1): JSON on the alerts topic, key = `seller_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "sellerguard alert contract v1")]
pub struct Alert {
    #[schemars(extend("format" = "uuid"))]
    pub alert_id: String,
    pub rule: String,
    pub seller_id: String,
    pub severity: Severity,
    pub score: f64,
    /// RFC 3339 event time of the event (or timer) that completed the evidence.
    #[schemars(extend("format" = "date-time"))]
    pub event_time: String,
    /// RFC 3339 time of detection: the wall clock in the service; in `replay`, `eval` and `backtest`
    /// (time from the data) the newest event time seen.
    #[schemars(extend("format" = "date-time"))]
    pub detected_at: String,
    pub evidence: serde_json::Value,
    pub message: String,
    /// The config in force when it was raised ([`crate::config::Config::version`]): which
    /// thresholds an analyst is looking at, across hot reloads.
    #[schemars(
        description = "Version of the config in force when the alert was raised (as in sellerguard_config_info): which thresholds decided it, across hot reloads."
    )]
    #[serde(default)]
    pub config_version: String,
    /// Raised by a rule in shadow mode (`alerts.shadow`): evaluated and counted, not part of the feed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

impl Alert {
    /// The family part of `rule` (`fake_shipment` of `fake_shipment.no_scan`): a bounded metric label.
    pub fn family(&self) -> &str {
        self.rule.split('.').next().unwrap_or(&self.rule)
    }
}

/// Namespace for v5 alert ids (a fixed random UUID: changing it would change every id).
const ALERT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b1f_3c2e_8d4a_4f5b_9a7c_2e1d_0f3b_5a68);

/// Deterministic id: the same rule, seller and completing event always give the same id.
pub fn alert_id(rule: &str, seller_id: &str, trigger: &str) -> String {
    let mut name = Vec::with_capacity(rule.len() + seller_id.len() + trigger.len() + 2);
    name.extend_from_slice(rule.as_bytes());
    name.push(0);
    name.extend_from_slice(seller_id.as_bytes());
    name.push(0);
    name.extend_from_slice(trigger.as_bytes());
    uuid::Uuid::new_v5(&ALERT_NAMESPACE, &name).to_string()
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = alert_id("fake_shipment", "s1", "e9");
        assert_eq!(a, alert_id("fake_shipment", "s1", "e9"));
        assert_ne!(a, alert_id("fake_shipment", "s1", "e8"));
        assert_ne!(a, alert_id("price_dumping", "s1", "e9"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(alert_id("r", "ab", "c"), alert_id("r", "a", "bc"));
    }

    #[test]
    fn severity_scale_boundaries() {
        let s = SeverityScale { medium: 1.0, high: 2.0, critical: 4.0 };
        assert_eq!(s.severity(0.99), Severity::Low);
        assert_eq!(s.severity(1.0), Severity::Medium);
        assert_eq!(s.severity(2.0), Severity::High);
        assert_eq!(s.severity(4.0), Severity::Critical);
        assert!(Severity::High > Severity::Medium);
    }

    #[test]
    fn rfc3339_millis() {
        assert_eq!(rfc3339(1_767_607_200_123), "2026-01-05T10:00:00.123Z");
    }
}
