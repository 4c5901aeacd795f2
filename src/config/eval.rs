//! `[eval]`: the targets `sellerguard eval` holds every rule family to on labelled traffic.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default = "default_min_recall")]
    pub min_recall: f64,
    #[serde(default = "default_max_honest_flagged")]
    pub max_honest_flagged: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        toml::from_str("").expect("all eval keys have defaults")
    }
}

/// Issue 3 acceptance: each family flags ≥ 95 % of the sellers labelled with it.
fn default_min_recall() -> f64 {
    0.95
}
/// Product spec: honest traffic triggers a family for at most 1 % of honest sellers (what a policy
/// legitimately flags in honest behaviour).
fn default_max_honest_flagged() -> f64 {
    0.01
}
