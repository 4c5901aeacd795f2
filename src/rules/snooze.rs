//! Snoozes: an analyst suppresses alerts of a (seller, rule) pair until a time — a known case under
//! investigation, a seller whose explanation was accepted. Read from the JSON-lines file named by
//! `alerts.snooze_file`, one object per line:
//!
//! `{"seller_id": "s-1", "rule": "price_dumping", "until": "2026-12-01T00:00:00Z", "reason": "case 4711"}`
//!
//! `rule` may name a family (all its rules). An alert is snoozed while its event time is before
//! `until`. The engine applies snoozes after detection, so cooldowns and standing are unchanged:
//! a snooze hides alerts from the feed, it does not change what the seller did.

use std::collections::HashMap;

use serde::Deserialize;

use crate::alert::Alert;
use crate::config::names_rule;
use crate::decode::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct Snooze {
    pub rule: String,
    pub until: Millis,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seller_id: String,
    rule: String,
    until: String,
    #[serde(default)]
    reason: String,
}

/// The snoozes in force, by seller.
#[derive(Debug, Clone, Default)]
pub struct Snoozes {
    by_seller: HashMap<String, Vec<Snooze>>,
}

/// A snooze file that cannot be used; names the line. Not retryable: the file must change.
#[derive(Debug, thiserror::Error)]
#[error("snooze file {path}, line {line}: {problem}")]
pub struct SnoozeError {
    pub path: String,
    pub line: usize,
    pub problem: String,
}

impl Snoozes {
    /// The snoozes `cfg` names (`alerts.snooze_file`; none when empty), read from disk: the
    /// callers of the engine do this, the engine does no I/O.
    pub fn for_config(cfg: &crate::config::Config) -> Result<Self, crate::config::ConfigError> {
        if cfg.alerts.snooze_file.is_empty() {
            return Ok(Snoozes::default());
        }
        Snoozes::load(&cfg.alerts.snooze_file).map_err(|e| crate::config::ConfigError::Invalid {
            key: "alerts.snooze_file".into(),
            problem: e.to_string(),
            fix: "correct that line (one JSON object per line: seller_id, rule, until, reason)".into(),
        })
    }

    pub fn load(path: &str) -> Result<Self, SnoozeError> {
        let text = std::fs::read_to_string(path).map_err(|e| SnoozeError {
            path: path.into(),
            line: 0,
            problem: e.to_string(),
        })?;
        Self::parse(&text).map_err(|(line, problem)| SnoozeError { path: path.into(), line, problem })
    }

    /// Every line must be valid (blank lines and `#` comments aside): a half-read file would
    /// silently let alerts through that an analyst meant to hold.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut by_seller: HashMap<String, Vec<Snooze>> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let l: Line = serde_json::from_str(raw).map_err(|e| (i + 1, e.to_string()))?;
            if !crate::telemetry::RULES.contains(&l.rule.as_str()) && !crate::rules::FAMILIES.contains(&l.rule.as_str())
            {
                return Err((i + 1, format!("`{}` is neither a rule nor a family", l.rule)));
            }
            let until = chrono::DateTime::parse_from_rfc3339(&l.until)
                .map_err(|e| (i + 1, format!("`until` {:?} is not RFC 3339: {e}", l.until)))?
                .timestamp_millis();
            by_seller.entry(l.seller_id).or_default().push(Snooze { rule: l.rule, until, reason: l.reason });
        }
        Ok(Snoozes { by_seller })
    }

    pub fn len(&self) -> usize {
        self.by_seller.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seller.is_empty()
    }

    /// The snooze holding back this alert, if any (`event_time` is the alert's, in ms).
    pub fn matching(&self, alert: &Alert, event_time: Millis) -> Option<&Snooze> {
        self.by_seller.get(&alert.seller_id)?.iter().find(|s| names_rule(&s.rule, &alert.rule) && event_time < s.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snooze_holds_its_seller_and_rule_until_its_time() {
        let s = Snoozes::parse(
            "# case 4711\n{\"seller_id\":\"s1\",\"rule\":\"price_dumping\",\"until\":\"2026-01-10T00:00:00Z\",\"reason\":\"r\"}\n\n",
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        let until = chrono::DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z").unwrap().timestamp_millis();
        let alert = |seller: &str, rule: &str| Alert {
            alert_id: String::new(),
            rule: rule.into(),
            seller_id: seller.into(),
            severity: crate::alert::Severity::Low,
            score: 1.0,
            event_time: String::new(),
            detected_at: String::new(),
            evidence: serde_json::Value::Null,
            message: String::new(),
            config_version: String::new(),
            shadow: false,
        };
        assert!(s.matching(&alert("s1", "price_dumping"), until - 1).is_some());
        assert!(
            s.matching(&alert("s1", "price_dumping.dump_and_raise"), until - 1).is_some(),
            "a family covers its rules"
        );
        assert!(s.matching(&alert("s1", "price_dumping"), until).is_none(), "until is exclusive");
        assert!(s.matching(&alert("s2", "price_dumping"), until - 1).is_none(), "other sellers");
        assert!(s.matching(&alert("s1", "late_dispatch"), until - 1).is_none(), "other rules");
        assert!(s.matching(&alert("s1", "price_dumpingX"), until - 1).is_none(), "a prefix is not a family");
    }

    #[test]
    fn a_bad_line_names_itself() {
        let ok = r#"{"seller_id":"s1","rule":"late_dispatch","until":"2026-01-10T00:00:00Z"}"#;
        for (bad, needle) in [
            (r#"{"seller_id":"s1","rule":"nope","until":"2026-01-10T00:00:00Z"}"#, "neither a rule"),
            (r#"{"seller_id":"s1","rule":"late_dispatch","until":"tomorrow"}"#, "RFC 3339"),
            (r#"{"seller_id":"s1","rule":"late_dispatch"}"#, "until"),
            (r#"{"seller_id":"s1","rule":"late_dispatch","until":"2026-01-10T00:00:00Z","x":1}"#, "unknown field"),
        ] {
            let (line, problem) = Snoozes::parse(&format!("{ok}\n{bad}\n")).unwrap_err();
            assert_eq!(line, 2, "{bad}");
            assert!(problem.contains(needle), "{bad}: {problem}");
        }
    }
}
