//! `[kafka]`: brokers, topics, the group, the delivery guarantee and librdkafka pass-through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    #[serde(default = "default_brokers")]
    pub brokers: String,
    #[serde(default = "default_input_topic")]
    pub input_topic: String,
    #[serde(default = "default_alerts_topic")]
    pub alerts_topic: String,
    #[serde(default = "default_dlq_topic")]
    pub dlq_topic: String,
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Compacted topic of seller standing records (key = seller id); empty disables publishing.
    #[serde(default = "default_standing_topic")]
    pub standing_topic: String,
    /// Where alerts of rules in shadow mode (`alerts.shadow`) go; empty: nowhere (counted only).
    #[serde(default)]
    pub shadow_topic: String,
    /// `at_least_once` or `exactly_once` (Kafka transactions).
    #[serde(default = "default_delivery")]
    pub delivery: Delivery,
    /// librdkafka `transactional.id` for `exactly_once`: stable per instance.
    #[serde(default)]
    pub transactional_id: String,
    /// librdkafka properties for both clients (security.protocol, ssl.*, sasl.* …), passed through.
    #[serde(default)]
    pub common: BTreeMap<String, String>,
    /// librdkafka consumer properties, passed through (override `common`).
    #[serde(default)]
    pub consumer: BTreeMap<String, String>,
    /// librdkafka producer properties, passed through (override `common`).
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
}

/// How alerts reach the alerts topic relative to the input offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Offsets are committed after the alerts are acknowledged: a crash can repeat alerts (same
    /// `alert_id`), never lose one. Any Kafka-protocol broker.
    AtLeastOnce,
    /// Alerts, dead letters, standing records and input offsets commit in one Kafka transaction:
    /// `read_committed` consumers see each alert once. Needs a broker with transactions.
    ExactlyOnce,
}

impl KafkaConfig {
    pub fn exactly_once(&self) -> bool {
        self.delivery == Delivery::ExactlyOnce
    }
}

/// At-least-once works on every Kafka-protocol broker (tansu 0.6 has no transactions).
fn default_delivery() -> Delivery {
    Delivery::AtLeastOnce
}

impl Default for KafkaConfig {
    fn default() -> Self {
        toml::from_str("").expect("all kafka keys have defaults")
    }
}

/// A local single broker: the usual development set-up.
fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
/// Topic names follow the `<system>-<purpose>` convention of the marketplace's event bus.
fn default_input_topic() -> String {
    "marketplace-events".into()
}
fn default_alerts_topic() -> String {
    "sellerguard-alerts".into()
}
fn default_dlq_topic() -> String {
    "sellerguard-dead-letter".into()
}
fn default_group_id() -> String {
    "sellerguard".into()
}
fn default_standing_topic() -> String {
    "sellerguard-seller-standing".into()
}
