//! `sellerguard check-config`: validates a config and builds the Kafka clients from it without
//! sending anything, so that TLS/SASL settings and other librdkafka properties are checked before a
//! deploy. The report it prints has every secret masked.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::BaseProducer;

use crate::config::{is_secret, Config};
use crate::{sink, source};

#[derive(Debug, thiserror::Error)]
#[error("{client} settings rejected by librdkafka: {reason} (check [kafka.common] / [kafka.{client}] in the config)")]
pub struct ClientConfigError {
    pub client: &'static str,
    pub reason: String,
}

impl ClientConfigError {
    /// A rejected property is a deploy-time mistake: retrying cannot help.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

fn properties(c: &ClientConfig) -> String {
    let map = c.config_map();
    let mut props: Vec<(&&str, &&str)> = map.iter().collect();
    props.sort();
    props.into_iter().map(|(k, v)| format!("  {k} = {}\n", if is_secret(k) { "***" } else { v })).collect()
}

/// Builds both clients (librdkafka checks every property, including security ones, at creation)
/// and returns a report of the effective settings, secrets masked.
pub fn check(cfg: &Config) -> Result<String, ClientConfigError> {
    cfg.validate().map_err(|e| ClientConfigError { client: "sellerguard", reason: e.to_string() })?;
    let consumer = source::consumer_config(&cfg.kafka);
    consumer.create::<BaseConsumer>().map_err(|e| ClientConfigError { client: "consumer", reason: e.to_string() })?;
    let producer = sink::producer_config(&cfg.kafka);
    producer.create::<BaseProducer>().map_err(|e| ClientConfigError { client: "producer", reason: e.to_string() })?;
    Ok(format!(
        "config OK\n\n# effective configuration (secrets masked)\n{}\n# librdkafka consumer properties\n{}\n# librdkafka producer properties\n{}",
        cfg.redacted_toml(),
        properties(&consumer),
        properties(&producer)
    ))
}
