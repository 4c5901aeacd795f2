//! Source: the Kafka consumer. Group membership and rebalances are forwarded to the service loop
//! as [`PartitionChange`]s; librdkafka statistics feed the consumer-lag gauge; offsets are stored
//! by hand (`enable.auto.offset.store=false`) through [`offsets::OffsetTracker`], only after the
//! alerts a message caused are acknowledged — rust-rdkafka's `at_least_once.rs` pattern.

pub mod offsets;

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::KafkaConfig;
use crate::telemetry::{Metrics, RateLimitedLog};

/// A change in the partitions this instance reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionChange {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub struct SourceContext {
    topic: String,
    changes: UnboundedSender<PartitionChange>,
    metrics: Metrics,
    errors: Mutex<RateLimitedLog>,
}

impl ClientContext for SourceContext {
    fn stats(&self, stats: Statistics) {
        if let Some(t) = stats.topics.get(&self.topic) {
            for (p, part) in &t.partitions {
                // -1 is librdkafka's "unknown" (the internal UA partition, or before the first fetch).
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics.consumer_lag.with_label_values(&[&p.to_string()]).set(part.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End of partition is information (the watermark uses it), not an error.
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        self.metrics.kafka_errors.inc();
        if let Some(held) = self.errors.lock().ok().and_then(|mut l| l.allow("consumer")) {
            tracing::warn!(%error, reason, held_back = held, "kafka consumer error (librdkafka retries)");
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            tracing::debug!(fac, msg, "librdkafka");
        }
    }
}

fn partitions_of(tpl: &rdkafka::TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.metrics.rebalances.with_label_values(&["revoke"]).inc();
            let _ = self.changes.send(PartitionChange::Revoked(partitions_of(tpl, &self.topic)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                let parts = partitions_of(tpl, &self.topic);
                tracing::info!(?parts, "partitions assigned");
                let _ = self.changes.send(PartitionChange::Assigned(parts));
            }
            Rebalance::Error(e) => {
                self.metrics.kafka_errors.inc();
                tracing::warn!(error = %e, "rebalance error");
            }
            Rebalance::Revoke(_) => {}
        }
    }
}

pub type Consumer = StreamConsumer<SourceContext>;

/// librdkafka settings that at-least-once depends on; user properties cannot override them.
pub fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    // Sensible defaults first, user pass-through next, then what correctness requires.
    c.set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("statistics.interval.ms", "5000");
    for (key, v) in k.common.iter().chain(k.consumer.iter()) {
        c.set(key, v);
    }
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("enable.auto.offset.store", "false")
        // End of partition tells the watermark that a partition is caught up.
        .set("enable.partition.eof", "true");
    c
}

pub fn create_consumer(
    k: &KafkaConfig,
    metrics: &Metrics,
    changes: UnboundedSender<PartitionChange>,
) -> Result<Consumer, KafkaError> {
    let ctx = SourceContext {
        topic: k.input_topic.clone(),
        changes,
        metrics: metrics.clone(),
        errors: Mutex::new(RateLimitedLog::new(std::time::Duration::from_secs(5))),
    };
    consumer_config(k).set_log_level(RDKafkaLogLevel::Warning).create_with_context(ctx)
}
