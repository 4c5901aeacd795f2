//! Seller standing settings (Good Seller standards). Each default says where it comes from.

use serde::{Deserialize, Serialize};

use super::families::enabled;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandingConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "default_window_days")]
    pub window_days: f64,
    #[serde(default = "default_positive_rating")]
    pub positive_min_rating: u8,
    #[serde(default = "default_material_change")]
    pub material_change: f64,
    #[serde(default = "default_min_interval")]
    pub min_interval_minutes: f64,
    #[serde(default = "default_min_age")]
    pub good_seller_min_age_days: f64,
    #[serde(default = "default_min_reviews")]
    pub good_seller_min_reviews: u32,
    #[serde(default = "default_min_positive")]
    pub good_seller_min_positive: f64,
}

impl Default for StandingConfig {
    fn default() -> Self {
        toml::from_str("").expect("all standing keys have defaults")
    }
}

/// Product spec: each seller's 30-day standing.
fn default_window_days() -> f64 {
    30.0
}
/// Marketplace convention: 4 and 5 stars are positive feedback.
fn default_positive_rating() -> u8 {
    4
}
/// A rate moving by 2 percentage points is news to a ranking system; less is noise.
fn default_material_change() -> f64 {
    0.02
}
/// At most one update per seller an event-time hour unless nothing material changed.
fn default_min_interval() -> f64 {
    60.0
}
/// Good Seller standards: account age ≥ 6 months where known (here: first seen by sellerguard).
fn default_min_age() -> f64 {
    182.0
}
/// Feedback is judged on at least 10 reviews.
fn default_min_reviews() -> u32 {
    10
}
/// Good Seller standards: positive feedback above 95 %.
fn default_min_positive() -> f64 {
    0.95
}
