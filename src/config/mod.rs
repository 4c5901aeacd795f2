//! Configuration: one TOML file (`config/default.toml` documents every key), serde with
//! `deny_unknown_fields`, each default a named fn that says where the number comes from, and one
//! [`Config::validate`] step whose errors name the key and the fix.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rules::tracking::CarrierRegistry;

mod alerts;
mod eval;
mod families;
mod fulfilment;
mod kafka;
mod standing;
pub use alerts::*;
pub use eval::*;
pub use families::*;
pub use fulfilment::*;
pub use kafka::*;
pub use standing::*;

/// The config embedded in the binary: `sellerguard demo` and tests run on it with no file at hand.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Configuration problems. None is retryable: the file or flags must change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config is not valid TOML or has an unknown/mistyped key: {0}")]
    Parse(String),
    #[error("config key `{key}`: {problem}; fix: {fix}")]
    Invalid { key: String, problem: String, fix: String },
}

fn invalid(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), problem: problem.into(), fix: fix.into() }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub service: ServiceConfig,
    #[serde(default)]
    pub input: InputConfig,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub fake_shipment: FakeShipmentConfig,
    #[serde(default)]
    pub rating_manipulation: RatingConfig,
    #[serde(default)]
    pub price_dumping: PriceDumpingConfig,
    #[serde(default)]
    pub shipping_fee_inflation: ShippingFeeConfig,
    #[serde(default)]
    pub false_transactions: FalseTransactionsConfig,
    #[serde(default)]
    pub phantom_listing: PhantomListingConfig,
    #[serde(default)]
    pub late_dispatch: LateDispatchConfig,
    #[serde(default)]
    pub small_parcel_restriction: SmallParcelConfig,
    #[serde(default)]
    pub slow_response: SlowResponseConfig,
    #[serde(default)]
    pub standing: StandingConfig,
    #[serde(default)]
    pub eval: EvalConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_toml(DEFAULT_TOML).expect("embedded config/default.toml is valid")
    }
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A short, stable name for this configuration (12 hex digits of a SHA-1 based UUID of its
    /// effective settings): the same settings always give the same version, comments and layout
    /// of the file do not count. Alerts carry it; `sellerguard_config_info` exports it.
    pub fn version(&self) -> String {
        const NS: uuid::Uuid = uuid::Uuid::from_u128(0x0c5e_7a61_23d4_4b8e_9f10_a2b3_c4d5_e6f7);
        let canonical = serde_json::to_vec(self).expect("configs always serialize");
        uuid::Uuid::new_v5(&NS, &canonical).simple().to_string()[..12].to_string()
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    /// The one validation step: every check names its key and how to fix it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let k = &self.kafka;
        for (key, v) in [
            ("kafka.brokers", &k.brokers),
            ("kafka.input_topic", &k.input_topic),
            ("kafka.alerts_topic", &k.alerts_topic),
            ("kafka.dlq_topic", &k.dlq_topic),
            ("kafka.group_id", &k.group_id),
        ] {
            if v.trim().is_empty() {
                return Err(invalid(key, "is empty", "set it (see config/default.toml)"));
            }
        }
        if k.input_topic == k.alerts_topic || k.input_topic == k.dlq_topic {
            return Err(invalid(
                "kafka.alerts_topic",
                "alerts or dead-letter topic equals the input topic",
                "use distinct topics so alerts are never re-consumed as events",
            ));
        }
        for (key, props) in [("kafka.consumer", &k.consumer), ("kafka.producer", &k.producer)] {
            for owned in ["enable.auto.offset.store", "bootstrap.servers", "group.id"] {
                if props.contains_key(owned) {
                    return Err(invalid(
                        &format!("{key}.\"{owned}\""),
                        "is managed by sellerguard",
                        "remove it (brokers and group come from kafka.brokers / kafka.group_id; offsets are stored only after alerts are acknowledged)",
                    ));
                }
            }
        }
        if k.exactly_once() && k.transactional_id.trim().is_empty() {
            return Err(invalid(
                "kafka.transactional_id",
                "is empty while kafka.delivery = \"exactly_once\"",
                "set a stable id per instance (e.g. the StatefulSet pod name), or use delivery = \"at_least_once\"",
            ));
        }
        for key in ["transactional.id", "enable.idempotence", "isolation.level", "enable.auto.commit"] {
            if k.producer.contains_key(key) || k.consumer.contains_key(key) || k.common.contains_key(key) {
                return Err(invalid(
                    &format!("kafka.*.\"{key}\""),
                    "is managed by sellerguard",
                    "remove it: kafka.delivery and kafka.transactional_id choose the delivery guarantee",
                ));
            }
        }
        positive("service.commit_interval_ms", self.service.commit_interval_ms as f64)?;
        self.service
            .metrics_addr
            .parse::<std::net::SocketAddr>()
            .map_err(|e| invalid("service.metrics_addr", e.to_string(), "use host:port, e.g. 127.0.0.1:9464"))?;
        positive("service.max_in_flight", self.service.max_in_flight as f64)?;
        positive("service.idle_flush_ms", self.service.idle_flush_ms as f64)?;

        let i = &self.input;
        positive("input.max_message_bytes", i.max_message_bytes as f64)?;
        positive("input.max_id_bytes", i.max_id_bytes as f64)?;
        positive("input.max_text_bytes", i.max_text_bytes as f64)?;
        non_negative("input.allowed_lateness_ms", i.allowed_lateness_ms as f64)?;
        positive("input.default_promised_dispatch_hours", i.default_promised_dispatch_hours as f64)?;
        positive("input.max_event_time_ahead_ms", i.max_event_time_ahead_ms as f64)?;
        positive("input.max_event_time_behind_ms", i.max_event_time_behind_ms as f64)?;
        for (cur, rate) in &i.currency_rates {
            if !(rate.is_finite() && *rate > 0.0) {
                return Err(invalid(
                    &format!("input.currency_rates.{cur}"),
                    format!("rate {rate} is not a positive number"),
                    "give USD per one unit of the currency, e.g. EUR = 1.08",
                ));
            }
        }
        positive("state.order_retention_hours", self.state.order_retention_hours)?;
        positive("state.listing_retention_hours", self.state.listing_retention_hours)?;
        positive("state.sweep_interval_minutes", self.state.sweep_interval_minutes)?;
        positive("state.max_sellers", self.state.max_sellers as f64)?;
        non_negative("state.recovery_lookback_hours", self.state.recovery_lookback_hours)?;
        self.alerts.validate()?;

        let f = &self.fake_shipment;
        positive("fake_shipment.window_hours", f.window_hours)?;
        positive("fake_shipment.min_flagged", f.min_flagged as f64)?;
        ratio("fake_shipment.min_flagged_ratio", f.min_flagged_ratio)?;
        positive("fake_shipment.reuse_window_hours", f.reuse_window_hours)?;
        positive("fake_shipment.scan_deadline_hours", f.scan_deadline_hours)?;
        f.severity.validate("fake_shipment.severity")?;
        CarrierRegistry::new(&f.carriers).map_err(|e| {
            invalid(&format!("fake_shipment.carriers.{}.pattern", e.carrier), e.message, "write a valid regex")
        })?;

        let r = &self.rating_manipulation;
        positive("rating_manipulation.window_hours", r.window_hours)?;
        positive("rating_manipulation.min_five_star", r.min_five_star as f64)?;
        ratio("rating_manipulation.min_suspicious_ratio", r.min_suspicious_ratio)?;
        positive("rating_manipulation.new_account_days", r.new_account_days)?;
        positive("rating_manipulation.burst_min_five_star", r.burst_min_five_star as f64)?;
        positive("rating_manipulation.burst_factor", r.burst_factor)?;
        positive("rating_manipulation.baseline_days", r.baseline_days as f64)?;
        positive("rating_manipulation.baseline_floor_per_day", r.baseline_floor_per_day)?;
        positive("rating_manipulation.burst_delivery_days", r.burst_delivery_days as f64)?;
        non_negative("rating_manipulation.burst_per_delivery", r.burst_per_delivery)?;
        positive("rating_manipulation.ring_window_hours", r.ring_window_hours)?;
        positive("rating_manipulation.ring_min_buyers", r.ring_min_buyers.max(1) as f64 - 1.0).map_err(|_| {
            invalid("rating_manipulation.ring_min_buyers", "must be at least 2", "a ring has several buyers")
        })?;
        positive("rating_manipulation.ring_min_sellers", r.ring_min_sellers.max(1) as f64 - 1.0).map_err(|_| {
            invalid("rating_manipulation.ring_min_sellers", "must be at least 2", "a ring spans several sellers")
        })?;
        r.severity.validate("rating_manipulation.severity")?;
        let d = &r.drip;
        positive("rating_manipulation.drip.window_days", d.window_days)?;
        positive("rating_manipulation.drip.min_suspicious", d.min_suspicious as f64)?;
        positive("rating_manipulation.drip.min_factor", d.min_factor)?;
        ratio("rating_manipulation.drip.max_chance", d.max_chance)?;
        positive("rating_manipulation.drip.min_distance", d.min_distance)?;
        positive("rating_manipulation.drip.median_min_reviews", d.median_min_reviews)?;
        positive("rating_manipulation.drip.min_platform_reviews", d.min_platform_reviews as f64)?;
        positive("rating_manipulation.drip.history_days", d.history_days)?;
        positive("rating_manipulation.drip.max_cited", d.max_cited as f64)?;

        let p = &self.price_dumping;
        positive("price_dumping.median_window_hours", p.median_window_hours)?;
        positive("price_dumping.min_samples", p.min_samples as f64)?;
        ratio("price_dumping.max_ratio_to_median", p.max_ratio_to_median)?;
        ratio("price_dumping.new_listing_max_ratio", p.new_listing_max_ratio)?;
        ratio("price_dumping.new_listing_max_quantile", p.new_listing_max_quantile)?;
        ratio("price_dumping.min_drop", p.min_drop)?;
        positive("price_dumping.raise_window_hours", p.raise_window_hours)?;
        ratio("price_dumping.restored_ratio", p.restored_ratio)?;
        positive("price_dumping.sketch_relative_accuracy", p.sketch_relative_accuracy)?;
        p.severity.validate("price_dumping.severity")?;

        let s = &self.shipping_fee_inflation;
        positive("shipping_fee_inflation.median_window_hours", s.median_window_hours)?;
        positive("shipping_fee_inflation.min_samples", s.min_samples as f64)?;
        positive("shipping_fee_inflation.max_ratio_to_median", s.max_ratio_to_median)?;
        ratio("shipping_fee_inflation.cheap_item_ratio", s.cheap_item_ratio)?;
        positive("shipping_fee_inflation.moved_fee_ratio", s.moved_fee_ratio)?;
        positive("shipping_fee_inflation.window_hours", s.window_hours)?;
        positive("shipping_fee_inflation.min_orders", s.min_orders as f64)?;
        if s.weight_bands_grams.windows(2).any(|w| w[0] >= w[1]) || s.weight_bands_grams.is_empty() {
            return Err(invalid(
                "shipping_fee_inflation.weight_bands_grams",
                "must be a non-empty, strictly increasing list",
                "list band upper bounds in grams, e.g. [250, 500, 1000]",
            ));
        }
        s.severity.validate("shipping_fee_inflation.severity")?;

        let t = &self.false_transactions;
        positive("false_transactions.brushing_window_minutes", t.brushing_window_minutes)?;
        positive("false_transactions.brushing_min_orders_per_buyer", t.brushing_min_orders_per_buyer as f64)?;
        positive("false_transactions.window_hours", t.window_hours)?;
        positive("false_transactions.repeat_min_orders", t.repeat_min_orders as f64)?;
        positive("false_transactions.repeat_min_buyers", t.repeat_min_buyers as f64)?;
        positive("false_transactions.scanless_min_orders", t.scanless_min_orders as f64)?;
        ratio("false_transactions.scanless_min_ratio", t.scanless_min_ratio)?;
        positive("false_transactions.cluster_min_buyers", t.cluster_min_buyers as f64)?;
        positive("false_transactions.new_account_days", t.new_account_days)?;
        t.severity.validate("false_transactions.severity")?;
        let p = &self.phantom_listing;
        rate_rule("phantom_listing", p.window_hours, ("min_orders", p.min_orders), p.min_ratio)?;
        chance("phantom_listing", p.honest_rate, p.max_chance)?;
        p.severity.validate("phantom_listing.severity")?;
        let l = &self.late_dispatch;
        rate_rule("late_dispatch", l.window_hours, ("min_late", l.min_late), l.min_ratio)?;
        chance("late_dispatch", l.honest_rate, l.max_chance)?;
        l.severity.validate("late_dispatch.severity")?;
        let sp = &self.small_parcel_restriction;
        positive("small_parcel_restriction.window_hours", sp.window_hours)?;
        positive("small_parcel_restriction.min_disputes", sp.min_disputes as f64)?;
        sp.severity.validate("small_parcel_restriction.severity")?;
        let r = &self.slow_response;
        positive("slow_response.reply_within_hours", r.reply_within_hours)?;
        rate_rule("slow_response", r.window_hours, ("min_unanswered", r.min_unanswered), r.min_ratio)?;
        chance("slow_response", r.honest_rate, r.max_chance)?;
        r.severity.validate("slow_response.severity")?;
        let st = &self.standing;
        positive("standing.window_days", st.window_days)?;
        if !(1..=5).contains(&st.positive_min_rating) {
            return Err(invalid("standing.positive_min_rating", "must be a rating 1–5", "4 counts 4 and 5 stars"));
        }
        ratio("standing.material_change", st.material_change)?;
        non_negative("standing.min_interval_minutes", st.min_interval_minutes)?;
        non_negative("standing.good_seller_min_age_days", st.good_seller_min_age_days)?;
        ratio("standing.good_seller_min_positive", st.good_seller_min_positive)?;
        ratio("eval.min_recall", self.eval.min_recall)?;
        if !(0.0..=1.0).contains(&self.eval.max_honest_flagged) {
            return Err(invalid("eval.max_honest_flagged", "is not in [0, 1]", "give a fraction, e.g. 0.01 for 1 %"));
        }
        Ok(())
    }

    /// Config as TOML with secrets (librdkafka `*password*`, `*secret*`, `sasl.*`) masked, for logs.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        for props in [&mut c.kafka.consumer, &mut c.kafka.producer, &mut c.kafka.common] {
            for (k, v) in props.iter_mut() {
                if is_secret(k) {
                    *v = "***".into();
                }
            }
        }
        toml::to_string(&c).unwrap_or_default()
    }
}

/// librdkafka properties whose values must never reach a log: passwords, SASL settings (OAUTHBEARER
/// configs hold tokens), private keys given inline.
pub fn is_secret(property: &str) -> bool {
    property.contains("password")
        || property.contains("secret")
        || property.starts_with("sasl.")
        || property.starts_with("ssl.key")
        || property.starts_with("ssl.keystore")
}

/// The "≥ N and ≥ r % in a window" rules share the same three checks.
fn rate_rule(
    family: &str,
    window_hours: f64,
    (count_key, min_count): (&str, u32),
    min_ratio: f64,
) -> Result<(), ConfigError> {
    positive(&format!("{family}.window_hours"), window_hours)?;
    positive(&format!("{family}.{count_key}"), min_count as f64)?;
    ratio(&format!("{family}.min_ratio"), min_ratio)
}

/// The small-sample guard's honest rate and cut-off are both probabilities.
fn chance(family: &str, honest_rate: f64, max_chance: f64) -> Result<(), ConfigError> {
    ratio(&format!("{family}.honest_rate"), honest_rate)?;
    ratio(&format!("{family}.max_chance"), max_chance)
}

fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(invalid(key, format!("{v} is not > 0"), "set a positive number"))
    }
}

fn non_negative(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(key, format!("{v} is negative"), "set 0 or more"))
    }
}

fn ratio(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err(invalid(key, format!("{v} is not in (0, 1]"), "give a fraction, e.g. 0.25 for 25 %"))
    }
}

// ---------------------------------------------------------------- kafka / service

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default = "default_metrics_addr")]
    pub metrics_addr: String,
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_idle_flush_ms")]
    pub idle_flush_ms: u64,
    #[serde(default = "default_idle_partition_ms")]
    pub idle_partition_ms: u64,
    #[serde(default = "default_error_log_interval_ms")]
    pub error_log_interval_ms: u64,
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// How often `run` re-reads the config (and snooze) file for a hot reload; SIGHUP reloads at once.
    #[serde(default = "default_config_poll_ms")]
    pub config_poll_ms: u64,
}

/// A Kubernetes ConfigMap reaches the pod within about a minute; two seconds adds little to that
/// and costs two small file reads.
fn default_config_poll_ms() -> u64 {
    2000
}

impl Default for ServiceConfig {
    fn default() -> Self {
        toml::from_str("").expect("all service keys have defaults")
    }
}

/// librdkafka's `auto.commit.interval.ms` order of magnitude (5 s) made shorter: after a crash at
/// most about a second of input is re-read. With transactions it is the transaction length, so it
/// is also how late alerts become visible to `read_committed` readers.
fn default_commit_interval_ms() -> u64 {
    1000
}

/// The OpenTelemetry/Prometheus exporter convention port; loopback so nothing is exposed by default.
fn default_metrics_addr() -> String {
    "127.0.0.1:9464".into()
}
/// Outstanding produce requests before the consumer pauses: bounds memory under broker trouble.
fn default_max_in_flight() -> usize {
    10_000
}
/// With every partition caught up and no input for this long, buffered events are released as if
/// the stream had ended (paused reading, by backpressure or an outage, does not count).
/// A live marketplace stream is never quiet for 30 s; a quiet one gets its alerts 30 s late at worst.
fn default_idle_flush_ms() -> u64 {
    30_000
}
/// A partition known to be at its end keeps holding the watermark this long before it counts as idle
/// (`source::idle`): producers pause between batches, and a partition that caught up for a moment
/// should not make the others' events late.
fn default_idle_partition_ms() -> u64 {
    3_000
}
/// At most one log line per reject reason per second; the counters carry the rest.
fn default_error_log_interval_ms() -> u64 {
    1_000
}

// ---------------------------------------------------------------- input and state

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    #[serde(default = "default_max_id_bytes")]
    pub max_id_bytes: usize,
    #[serde(default = "default_max_text_bytes")]
    pub max_text_bytes: usize,
    #[serde(default = "default_allowed_lateness_ms")]
    pub allowed_lateness_ms: i64,
    #[serde(default = "default_promised_dispatch_hours")]
    pub default_promised_dispatch_hours: u32,
    #[serde(default = "default_max_ahead_ms")]
    pub max_event_time_ahead_ms: i64,
    #[serde(default = "default_max_behind_ms")]
    pub max_event_time_behind_ms: i64,
    /// USD per one unit of each accepted non-USD currency.
    #[serde(default)]
    pub currency_rates: BTreeMap<String, f64>,
}

impl Default for InputConfig {
    fn default() -> Self {
        toml::from_str("").expect("all input keys have defaults")
    }
}

/// Event contract v1 events are a few hundred bytes; 64 KiB leaves room and stops abuse.
fn default_max_message_bytes() -> usize {
    64 * 1024
}
/// Event contract v1: ids are 1–128 bytes.
fn default_max_id_bytes() -> usize {
    128
}
/// Free-text fields (cancel reasons) are short; longer text is treated as abuse.
fn default_max_text_bytes() -> usize {
    1024
}
/// Event contract v1: events may arrive out of order by up to 5 minutes.
fn default_allowed_lateness_ms() -> i64 {
    5 * 60 * 1000
}
/// An event stamped more than an hour ahead of the stream is a broken clock or an attack: it must not
/// move event time for everyone and fire every pending timer at once.
fn default_max_ahead_ms() -> i64 {
    3_600_000
}
/// Older than the longest state we keep (orders: 60 days) an event can only be misapplied.
fn default_max_behind_ms() -> i64 {
    60 * 24 * 3_600_000
}
/// Event contract v1: `promised_dispatch_hours` defaults to 72.
fn default_promised_dispatch_hours() -> u32 {
    72
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    #[serde(default = "default_order_retention_hours")]
    pub order_retention_hours: f64,
    #[serde(default = "default_listing_retention_hours")]
    pub listing_retention_hours: f64,
    #[serde(default = "default_sweep_interval_minutes")]
    pub sweep_interval_minutes: f64,
    #[serde(default = "default_max_sellers")]
    pub max_sellers: usize,
    #[serde(default = "default_recovery_lookback_hours")]
    pub recovery_lookback_hours: f64,
}

impl Default for StateConfig {
    fn default() -> Self {
        toml::from_str("").expect("all state keys have defaults")
    }
}

/// Orders are needed until reviews and disputes stop arriving: the platform's 60-day buyer protection.
fn default_order_retention_hours() -> f64 {
    60.0 * 24.0
}
/// A listing's previous price matters for the dump-and-raise window (7 days) and sales; 30 days covers both.
fn default_listing_retention_hours() -> f64 {
    30.0 * 24.0
}
/// A flood of unique seller ids must not exhaust memory: past this many tracked sellers the least
/// recently active are evicted (sized for the 1 M sellers the platform plans for).
fn default_max_sellers() -> usize {
    1_000_000
}
/// After a restart (or a partition moving here) its messages of the last 30 days are re-read to
/// rebuild windows and timers: the longest seller-level windows (standing, tracking reuse) are 30 days.
fn default_recovery_lookback_hours() -> f64 {
    30.0 * 24.0
}
/// Expired state is swept once an event-time hour: cheap, and memory never holds more than an hour's excess.
fn default_sweep_interval_minutes() -> f64 {
    60.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid_and_matches_serde_defaults() {
        let from_file = Config::from_toml(DEFAULT_TOML).unwrap();
        let from_nothing: Config = toml::from_str("").unwrap();
        // config/default.toml documents every key with its default value: the two must agree.
        assert_eq!(
            toml::to_string(&from_file).unwrap(),
            toml::to_string(&from_nothing).unwrap(),
            "config/default.toml drifted from the defaults in src/config.rs"
        );
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = Config::from_toml("[fake_shipment]\nmin_flaged = 3\n").unwrap_err().to_string();
        assert!(err.contains("min_flaged"), "{err}");
    }

    #[test]
    fn invalid_values_name_key_and_fix() {
        let err = Config::from_toml("[price_dumping]\nmax_ratio_to_median = 1.5\n").unwrap_err().to_string();
        assert!(err.contains("price_dumping.max_ratio_to_median") && err.contains("fix:"), "{err}");
        let err =
            Config::from_toml("[kafka.consumer]\n\"enable.auto.offset.store\" = \"true\"\n").unwrap_err().to_string();
        assert!(err.contains("enable.auto.offset.store"), "{err}");
        let err = Config::from_toml("[fake_shipment.carriers.acme]\npattern = \"[A-\"\n").unwrap_err().to_string();
        assert!(err.contains("fake_shipment.carriers.acme.pattern"), "{err}");
        let err = Config::from_toml("[input.currency_rates]\nEUR = -1.0\n").unwrap_err().to_string();
        assert!(err.contains("input.currency_rates.EUR"), "{err}");
    }

    #[test]
    fn secrets_are_redacted() {
        let cfg = Config::from_toml("[kafka.common]\n\"sasl.password\" = \"hunter2\"\n").unwrap();
        let dump = cfg.redacted_toml();
        assert!(!dump.contains("hunter2") && dump.contains("***"), "{dump}");
    }
}
