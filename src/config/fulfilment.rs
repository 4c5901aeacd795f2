//! Settings of the fulfilment and service rule families: phantom listings, late dispatch, the
//! small-parcel restriction and slow responses. Each default's comment says where it comes from.

use serde::{Deserialize, Serialize};

use super::families::enabled;
use crate::alert::SeverityScale;

fn seven_days_hours() -> f64 {
    7.0 * 24.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhantomListingConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "seven_days_hours")]
    pub window_hours: f64,
    #[serde(default = "default_pl_min")]
    pub min_orders: u32,
    #[serde(default = "default_pl_ratio")]
    pub min_ratio: f64,
    #[serde(default = "default_pl_reason")]
    pub out_of_stock_reason: String,
    #[serde(default = "default_pl_honest_rate")]
    pub honest_rate: f64,
    #[serde(default = "default_max_chance")]
    pub max_chance: f64,
    #[serde(default = "default_medium_scale")]
    pub severity: SeverityScale,
}

impl Default for PhantomListingConfig {
    fn default() -> Self {
        toml::from_str("").expect("all phantom_listing keys have defaults")
    }
}

/// Product spec: ≥ 3 out-of-stock cancellations (or sales of a listing whose stock is 0) in 7 days…
fn default_pl_min() -> u32 {
    3
}
/// …that are ≥ 10 % of the seller's orders in that window.
fn default_pl_ratio() -> f64 {
    0.10
}
/// Event contract v1: the cancellation reason that means "could not sell it".
fn default_pl_reason() -> String {
    "out_of_stock".into()
}
/// Listed prohibitions start at medium.
fn default_medium_scale() -> SeverityScale {
    SeverityScale { medium: 1.0, high: 2.0, critical: 4.0 }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateDispatchConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "seven_days_hours")]
    pub window_hours: f64,
    #[serde(default = "default_ld_min")]
    pub min_late: u32,
    #[serde(default = "default_ld_ratio")]
    pub min_ratio: f64,
    #[serde(default = "default_ld_honest_rate")]
    pub honest_rate: f64,
    #[serde(default = "default_max_chance")]
    pub max_chance: f64,
    #[serde(default = "default_low_scale")]
    pub severity: SeverityScale,
}

impl Default for LateDispatchConfig {
    fn default() -> Self {
        toml::from_str("").expect("all late_dispatch keys have defaults")
    }
}

/// Product spec: ≥ 3 orders not shipped within their promised dispatch time…
fn default_ld_min() -> u32 {
    3
}
/// …and ≥ 15 % of the orders that fell due in 7 days (one unlucky week at a small shop must not alert).
fn default_ld_ratio() -> f64 {
    0.15
}
/// Lateness is a service-quality problem before it is fraud: low at the threshold, rising with it.
fn default_low_scale() -> SeverityScale {
    SeverityScale { medium: 1.5, high: 3.0, critical: 6.0 }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmallParcelConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "default_sp_window")]
    pub window_hours: f64,
    #[serde(default = "default_sp_min")]
    pub min_disputes: u32,
    #[serde(default = "default_sp_severity")]
    pub severity: SeverityScale,
}

impl Default for SmallParcelConfig {
    fn default() -> Self {
        toml::from_str("").expect("all small_parcel_restriction keys have defaults")
    }
}

/// Seed rule, exact: disputes "in the last month" (30 days)…
fn default_sp_window() -> f64 {
    30.0 * 24.0
}
/// …"two or more" for an expiring protection period.
fn default_sp_min() -> u32 {
    2
}
/// The restriction is a platform sanction: high at the threshold.
fn default_sp_severity() -> SeverityScale {
    SeverityScale { medium: 0.5, high: 1.0, critical: 3.0 }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowResponseConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "default_sr_reply_hours")]
    pub reply_within_hours: f64,
    #[serde(default = "seven_days_hours")]
    pub window_hours: f64,
    #[serde(default = "default_ld_min")]
    pub min_unanswered: u32,
    #[serde(default = "default_sr_ratio")]
    pub min_ratio: f64,
    #[serde(default = "default_sr_honest_rate")]
    pub honest_rate: f64,
    #[serde(default = "default_max_chance")]
    pub max_chance: f64,
    #[serde(default = "default_low_scale")]
    pub severity: SeverityScale,
}

impl Default for SlowResponseConfig {
    fn default() -> Self {
        toml::from_str("").expect("all slow_response keys have defaults")
    }
}

/// Seed rule: respond to buyer messages within 24 hours.
fn default_sr_reply_hours() -> f64 {
    24.0
}
/// Product spec: ≥ 3 unanswered (default of `min_unanswered`, as late_dispatch) and ≥ 20 % of conversations.
fn default_sr_ratio() -> f64 {
    0.20
}

/// Honest shops misjudge stock now and then: 2 % of orders.
fn default_pl_honest_rate() -> f64 {
    0.02
}

/// An honest shop ships about 3 % of orders late (carrier pick-up missed, holidays).
fn default_ld_honest_rate() -> f64 {
    0.03
}

/// An honest shop misses about 5 % of 24-hour reply deadlines (weekends, time zones).
fn default_sr_honest_rate() -> f64 {
    0.05
}

/// Alert only when an honest seller would see that many failures with probability below 0.1 %.
fn default_max_chance() -> f64 {
    0.001
}
