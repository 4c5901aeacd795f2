//! `[alerts]`: what happens to a finding on its way to the feed — cooldowns, shadow mode, snoozes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{invalid, non_negative, ConfigError};
use crate::rules::FAMILIES;
use crate::telemetry::RULES;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default = "default_cooldown_hours")]
    pub cooldown_hours: f64,
    /// Per-rule overrides of `cooldown_hours`, by rule name (`late_dispatch`, `price_dumping.dump_and_raise`…).
    #[serde(default)]
    pub cooldown_hours_by_rule: BTreeMap<String, f64>,
    /// Rules (or whole families) in shadow mode: evaluated and counted, their alerts marked
    /// `"shadow": true` and sent to `kafka.shadow_topic` (nowhere when it is empty), never to the
    /// feed, and they do not count against a seller's standing. Empty by default: every rule is live.
    #[serde(default)]
    pub shadow: Vec<String>,
    /// A JSON-lines file of snoozes (`{"seller_id", "rule", "until", "reason"}`): an analyst
    /// suppresses a (seller, rule) pair until a time. Re-read with the config (SIGHUP, file
    /// change). Empty: none.
    #[serde(default)]
    pub snooze_file: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        toml::from_str("").expect("all alerts keys have defaults")
    }
}

/// One alert per seller and rule a day is what an analyst queue can absorb; a rise in severity still goes out.
fn default_cooldown_hours() -> f64 {
    24.0
}

/// `rule` is a rule name or a family (all of its rules).
pub fn names_rule(entry: &str, rule: &str) -> bool {
    rule == entry || rule.strip_prefix(entry).is_some_and(|rest| rest.starts_with('.'))
}

fn known(entry: &str) -> bool {
    RULES.contains(&entry) || FAMILIES.contains(&entry)
}

impl AlertsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        non_negative("alerts.cooldown_hours", self.cooldown_hours)?;
        for (rule, h) in &self.cooldown_hours_by_rule {
            if !RULES.contains(&rule.as_str()) {
                return Err(invalid(
                    &format!("alerts.cooldown_hours_by_rule.\"{rule}\""),
                    "is not a rule name",
                    format!("use one of {}", RULES.join(", ")),
                ));
            }
            non_negative(&format!("alerts.cooldown_hours_by_rule.\"{rule}\""), *h)?;
        }
        for (i, entry) in self.shadow.iter().enumerate() {
            if !known(entry) {
                return Err(invalid(
                    &format!("alerts.shadow[{i}]"),
                    format!("`{entry}` is neither a rule nor a family"),
                    format!("use a family ({}) or a rule ({})", FAMILIES.join(", "), RULES.join(", ")),
                ));
            }
        }
        Ok(())
    }
}
