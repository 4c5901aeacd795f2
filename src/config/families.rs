//! Rule-family settings: thresholds, windows and severity scales. Each default's comment says
//! where the number comes from (the product spec's seller rules, or the reasoning behind it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::SeverityScale;
use crate::rules::tracking::{CarrierFormat, CarrierRegistry};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeShipmentConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "seven_days_hours")]
    pub window_hours: f64,
    #[serde(default = "default_fs_min_flagged")]
    pub min_flagged: u32,
    #[serde(default = "default_fs_min_ratio")]
    pub min_flagged_ratio: f64,
    #[serde(default = "default_fs_reuse_hours")]
    pub reuse_window_hours: f64,
    #[serde(default = "default_fs_scan_hours")]
    pub scan_deadline_hours: f64,
    #[serde(default = "default_fs_check_method")]
    pub check_shipping_method: bool,
    #[serde(default = "default_fs_severity")]
    pub severity: SeverityScale,
    #[serde(default = "CarrierRegistry::default_carriers")]
    pub carriers: BTreeMap<String, CarrierFormat>,
}

impl Default for FakeShipmentConfig {
    fn default() -> Self {
        toml::from_str("").expect("all fake_shipment keys have defaults")
    }
}

/// Every family is on unless switched off.
pub(super) fn enabled() -> bool {
    true
}
/// The product spec's seller-level windows are 7 days unless said otherwise.
fn seven_days_hours() -> f64 {
    7.0 * 24.0
}
/// Product spec: a seller alert needs ≥ 2 flagged shipments in the window…
fn default_fs_min_flagged() -> u32 {
    2
}
/// …that are ≥ 10 % of the seller's shipments, so one bad label at a big shop does not alert.
fn default_fs_min_ratio() -> f64 {
    0.10
}
/// Product spec: a tracking number reused on another order within 30 days.
fn default_fs_reuse_hours() -> f64 {
    30.0 * 24.0
}
/// Product spec: no carrier scan within 72 h of `order_shipped`.
fn default_fs_scan_hours() -> f64 {
    72.0
}
/// Seed rule: ship by the method the buyer chose.
fn default_fs_check_method() -> bool {
    true
}
/// Fake dispatch is a listed prohibition: every seller alert is at least medium.
fn default_fs_severity() -> SeverityScale {
    SeverityScale { medium: 1.0, high: 2.5, critical: 5.0 }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "default_rm_window_hours")]
    pub window_hours: f64,
    #[serde(default = "default_rm_min_five_star")]
    pub min_five_star: u32,
    #[serde(default = "default_rm_ratio")]
    pub min_suspicious_ratio: f64,
    #[serde(default = "default_rm_new_account_days")]
    pub new_account_days: f64,
    #[serde(default = "default_rm_burst_min")]
    pub burst_min_five_star: u32,
    #[serde(default = "default_rm_burst_factor")]
    pub burst_factor: f64,
    #[serde(default = "default_rm_baseline_days")]
    pub baseline_days: u32,
    #[serde(default = "default_rm_baseline_floor")]
    pub baseline_floor_per_day: f64,
    #[serde(default = "default_rm_delivery_days")]
    pub burst_delivery_days: u32,
    #[serde(default = "default_rm_per_delivery")]
    pub burst_per_delivery: f64,
    #[serde(default = "default_rm_ring_hours")]
    pub ring_window_hours: f64,
    #[serde(default = "default_rm_ring_buyers")]
    pub ring_min_buyers: u32,
    #[serde(default = "default_rm_ring_sellers")]
    pub ring_min_sellers: u32,
    #[serde(default = "default_rm_severity")]
    pub severity: SeverityScale,
    #[serde(default)]
    pub drip: DripConfig,
}

impl Default for RatingConfig {
    fn default() -> Self {
        toml::from_str("").expect("all rating_manipulation keys have defaults")
    }
}

/// Product spec: in any 24 h window…
fn default_rm_window_hours() -> f64 {
    24.0
}
/// …≥ 10 five-star reviews…
fn default_rm_min_five_star() -> u32 {
    10
}
/// …of which ≥ 50 % are from new accounts or for orders never delivered.
fn default_rm_ratio() -> f64 {
    0.5
}
/// Product spec: a buyer account younger than 7 days is new.
fn default_rm_new_account_days() -> f64 {
    7.0
}
/// A burst must be big enough to matter to the seller's rating: 15 five-star reviews in a day.
fn default_rm_burst_min() -> u32 {
    15
}
/// 5× the seller's own daily average: honest growth is far slower than that from one day to the next.
fn default_rm_burst_factor() -> f64 {
    5.0
}
/// Four weeks of history make the baseline (weekly seasonality averages out).
fn default_rm_baseline_days() -> u32 {
    28
}
/// A seller with no history still has a baseline of one review a day, so a first sale's reviews do not alert.
fn default_rm_baseline_floor() -> f64 {
    1.0
}
/// Reviews follow deliveries of the last week or so…
fn default_rm_delivery_days() -> u32 {
    7
}
/// …so a burst alerts only when five-star reviews outnumber those deliveries (one review per order at most).
fn default_rm_per_delivery() -> f64 {
    1.0
}
/// Review rings work over days, not hours ("within days"): two weeks of five-star reviews.
fn default_rm_ring_hours() -> f64 {
    14.0 * 24.0
}
/// A ring is at least 4 buyers… (3 relatives buying from the same 3 shops happen; 4 × 3 rarely)
fn default_rm_ring_buyers() -> u32 {
    4
}
/// …who all rated the same ≥ 3 sellers five stars.
fn default_rm_ring_sellers() -> u32 {
    3
}
fn default_rm_severity() -> SeverityScale {
    SeverityScale { medium: 1.0, high: 2.0, critical: 4.0 }
}

/// `rating_manipulation.drip`: a steady drip of reviews from fresh accounts at the extreme far from
/// the seller's own mean, judged against the platform's base share of the same kind of review.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DripConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "default_drip_window_days")]
    pub window_days: f64,
    #[serde(default = "default_drip_min_suspicious")]
    pub min_suspicious: u32,
    #[serde(default = "default_drip_min_factor")]
    pub min_factor: f64,
    #[serde(default = "default_drip_max_chance")]
    pub max_chance: f64,
    #[serde(default = "default_drip_min_distance")]
    pub min_distance: f64,
    #[serde(default = "default_drip_median_min_reviews")]
    pub median_min_reviews: f64,
    #[serde(default = "default_drip_min_platform_reviews")]
    pub min_platform_reviews: u32,
    #[serde(default = "default_drip_history_days")]
    pub history_days: f64,
    #[serde(default = "default_drip_max_cited")]
    pub max_cited: u32,
}

impl Default for DripConfig {
    fn default() -> Self {
        toml::from_str("").expect("all rating_manipulation.drip keys have defaults")
    }
}

/// A drip is spread thin: a month of reviews shows it (a few a day reach the count within a week).
fn default_drip_window_days() -> f64 {
    30.0
}
/// At least five suspicious reviews: fewer is an anecdote an analyst cannot act on.
fn default_drip_min_suspicious() -> u32 {
    5
}
/// The seller's share of suspicious reviews at least 3× the platform's: on the labelled review
/// benchmark the issue cites, first-review extreme far-from-mean reviews were spam 2.8× as often
/// as the average review, so a seller at 3× the base is past what honest traffic of that kind shows.
fn default_drip_min_factor() -> f64 {
    3.0
}
/// …and that share (or more) would come to an honest seller by chance less than once in a million
/// (binomial tail at the platform's base share): thousands of sellers are judged every day.
fn default_drip_max_chance() -> f64 {
    1e-6
}
/// A review ≥ 1.5 stars from the seller's running centre is "far" (the benchmark's cut, taken
/// from the mean there; here from the median star of the seller's established reviewers).
fn default_drip_min_distance() -> f64 {
    1.5
}
/// A seller's running median counts once it rests on 5 established reviews (weighted by age);
/// before that the platform's established reviewers' median stands in.
fn default_drip_median_min_reviews() -> f64 {
    5.0
}
/// The platform's base share needs at least 200 reviews in the window before anyone is judged
/// (a share from fewer moves by several points with each review).
fn default_drip_min_platform_reviews() -> u32 {
    200
}
/// "First review on the platform" looks back a year: Olist's buyers come back months apart.
fn default_drip_history_days() -> f64 {
    365.0
}
/// Evidence quotes at most the 20 latest suspicious reviews (the counts cover all of them).
fn default_drip_max_cited() -> u32 {
    20
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceDumpingConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "seven_days_hours")]
    pub median_window_hours: f64,
    #[serde(default = "default_pd_min_samples")]
    pub min_samples: u32,
    #[serde(default = "default_pd_max_ratio")]
    pub max_ratio_to_median: f64,
    #[serde(default = "default_pd_new_ratio")]
    pub new_listing_max_ratio: f64,
    #[serde(default = "default_pd_new_quantile")]
    pub new_listing_max_quantile: f64,
    #[serde(default = "default_pd_min_drop")]
    pub min_drop: f64,
    #[serde(default = "seven_days_hours")]
    pub raise_window_hours: f64,
    #[serde(default = "default_pd_restored")]
    pub restored_ratio: f64,
    #[serde(default = "default_sketch_accuracy")]
    pub sketch_relative_accuracy: f64,
    #[serde(default = "default_pd_severity")]
    pub severity: SeverityScale,
}

impl Default for PriceDumpingConfig {
    fn default() -> Self {
        toml::from_str("").expect("all price_dumping keys have defaults")
    }
}

/// Product spec: a median needs ≥ 30 samples to be trusted.
fn default_pd_min_samples() -> u32 {
    30
}
/// Product spec: below 25 % of the category median…
fn default_pd_max_ratio() -> f64 {
    0.25
}
/// …or a new listing below 20 % of it.
fn default_pd_new_ratio() -> f64 {
    0.20
}
/// …and below the category's 2nd-percentile price: in a broad category where honest listings sit
/// that low (real Olist data: 8.6 % of listings under 20 % of their category median), a low price
/// alone says nothing.
fn default_pd_new_quantile() -> f64 {
    0.02
}
/// Product spec: and a drop of ≥ 50 % from the listing's previous price (sales are −20…−40 %).
fn default_pd_min_drop() -> f64 {
    0.5
}
/// Restored to 80 % of the pre-dump price counts as "raised back".
fn default_pd_restored() -> f64 {
    0.8
}
/// DDSketch relative accuracy: a 1 % error on a median is far inside the 25 % threshold.
fn default_sketch_accuracy() -> f64 {
    0.01
}
fn default_pd_severity() -> SeverityScale {
    SeverityScale { medium: 1.0, high: 2.0, critical: 4.0 }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingFeeConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "seven_days_hours")]
    pub median_window_hours: f64,
    #[serde(default = "default_sf_min_samples")]
    pub min_samples: u32,
    #[serde(default = "default_sf_max_ratio")]
    pub max_ratio_to_median: f64,
    #[serde(default = "default_sf_cheap_item")]
    pub cheap_item_ratio: f64,
    #[serde(default = "default_sf_moved_fee")]
    pub moved_fee_ratio: f64,
    #[serde(default = "default_sf_bands")]
    pub weight_bands_grams: Vec<u32>,
    #[serde(default = "seven_days_hours")]
    pub window_hours: f64,
    #[serde(default = "default_sf_min_orders")]
    pub min_orders: u32,
    #[serde(default = "default_sf_severity")]
    pub severity: SeverityScale,
}

impl Default for ShippingFeeConfig {
    fn default() -> Self {
        toml::from_str("").expect("all shipping_fee_inflation keys have defaults")
    }
}

/// Product spec: ≥ 20 non-zero fee samples per method and weight band.
fn default_sf_min_samples() -> u32 {
    20
}
/// Product spec: a fee above 3× the peer median.
fn default_sf_max_ratio() -> f64 {
    3.0
}
/// Product spec: item price below 25 % of the category median…
fn default_sf_cheap_item() -> f64 {
    0.25
}
/// …with a fee above 1.5× the peer median: price moved into shipping.
fn default_sf_moved_fee() -> f64 {
    1.5
}
/// Postal tariff steps (small packet ≤ 2 kg, then parcel bands).
fn default_sf_bands() -> Vec<u32> {
    vec![250, 500, 1000, 2000, 5000, 10000, 30000]
}
/// Product spec: a seller alert when ≥ 2 such orders fall in 7 days.
fn default_sf_min_orders() -> u32 {
    2
}
fn default_sf_severity() -> SeverityScale {
    SeverityScale { medium: 1.0, high: 2.5, critical: 5.0 }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FalseTransactionsConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default = "default_ft_brushing_minutes")]
    pub brushing_window_minutes: f64,
    #[serde(default = "default_ft_brushing_ratio")]
    pub brushing_min_orders_per_buyer: u32,
    #[serde(default = "seven_days_hours")]
    pub window_hours: f64,
    #[serde(default = "default_ft_repeat_orders")]
    pub repeat_min_orders: u32,
    #[serde(default = "default_ft_repeat_buyers")]
    pub repeat_min_buyers: u32,
    #[serde(default = "default_ft_scanless_min")]
    pub scanless_min_orders: u32,
    #[serde(default = "default_ft_scanless_ratio")]
    pub scanless_min_ratio: f64,
    #[serde(default = "default_ft_cluster_min")]
    pub cluster_min_buyers: u32,
    #[serde(default = "default_ft_new_account_days")]
    pub new_account_days: f64,
    #[serde(default = "default_ft_severity")]
    pub severity: SeverityScale,
}

impl Default for FalseTransactionsConfig {
    fn default() -> Self {
        toml::from_str("").expect("all false_transactions keys have defaults")
    }
}

/// Shopee's public 2020 order-brushing definition: any 1-hour interval [t, t+1h]…
fn default_ft_brushing_minutes() -> f64 {
    60.0
}
/// …with orders ÷ unique buyers ≥ 3.
fn default_ft_brushing_ratio() -> u32 {
    3
}
/// Product spec: a buyer placing ≥ 3 orders with the same seller in 7 days…
fn default_ft_repeat_orders() -> u32 {
    3
}
/// …and several such buyers (one loyal customer is not a pattern).
fn default_ft_repeat_buyers() -> u32 {
    3
}
/// Orders confirmed delivered that no carrier ever scanned: ≥ 3 in the window…
fn default_ft_scanless_min() -> u32 {
    3
}
/// …and ≥ 10 % of the seller's deliveries (the fake_shipment bar).
fn default_ft_scanless_ratio() -> f64 {
    0.10
}
/// New accounts buying the seller's cheapest item and reviewing it five stars: 5 make a cluster.
fn default_ft_cluster_min() -> u32 {
    5
}
/// As rating_manipulation: an account younger than 7 days is new.
fn default_ft_new_account_days() -> f64 {
    7.0
}
/// Fake transactions are a listed prohibition: every alert at least medium.
fn default_ft_severity() -> SeverityScale {
    SeverityScale { medium: 1.0, high: 2.0, critical: 4.0 }
}
