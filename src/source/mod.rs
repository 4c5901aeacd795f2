//! Source: the Kafka consumer. Group membership and rebalances are forwarded to the service loop
//! as [`PartitionChange`]s; librdkafka statistics feed the consumer-lag gauge; offsets are stored
//! by hand (`enable.auto.offset.store=false`) through [`offsets::OffsetTracker`], only after the
//! alerts a message caused are acknowledged — rust-rdkafka's `at_least_once.rs` pattern.

pub mod offsets;

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::KafkaConfig;
use crate::telemetry::{Metrics, RateLimitedLog};

/// A change in the partitions this instance reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionChange {
    /// Newly assigned partitions, with `(partition, committed offset)` for those that are re-read
    /// from further back to rebuild their window state: messages below the committed offset were
    /// already processed (their alerts delivered) and only restore state.
    Assigned(Vec<i32>, Vec<(i32, i64)>),
    Revoked(Vec<i32>),
}

pub struct SourceContext {
    topic: String,
    /// How far back (wall clock, against message timestamps) a newly assigned partition is re-read.
    recovery_lookback_ms: i64,
    /// Partitions this process has owned: their sellers' state is still in memory, so re-reading
    /// them would count their events twice (a broker restart reassigns every partition).
    owned_before: Mutex<std::collections::HashSet<i32>>,
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

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

impl SourceContext {
    /// Where each assigned partition starts: `lookback` before now (by message timestamp) when the
    /// group has a committed offset past that point, so that windows and timers are rebuilt.
    fn recovery_plan(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) -> Vec<(i32, i64, i64)> {
        if self.recovery_lookback_ms <= 0 {
            return Vec::new();
        }
        let timeout = std::time::Duration::from_secs(10);
        let Ok(committed) = consumer.committed_offsets(tpl.clone(), timeout) else { return Vec::new() };
        let since = crate::telemetry::now_ms() - self.recovery_lookback_ms;
        let mut probe = TopicPartitionList::new();
        for e in committed.elements_for_topic(&self.topic) {
            let _ = probe.add_partition_offset(&self.topic, e.partition(), Offset::Offset(since));
        }
        let Ok(starts) = consumer.offsets_for_times(probe, timeout) else { return Vec::new() };
        let mut plan = Vec::new();
        let owned = self.owned_before.lock().map(|o| o.clone()).unwrap_or_default();
        for e in committed.elements_for_topic(&self.topic) {
            let Offset::Offset(c) = e.offset() else { continue };
            if owned.contains(&e.partition()) {
                continue;
            }
            let start = starts
                .find_partition(&self.topic, e.partition())
                .and_then(|s| match s.offset() {
                    Offset::Offset(o) => Some(o),
                    Offset::Beginning => Some(0),
                    _ => None,
                })
                .unwrap_or(c);
            if start < c {
                plan.push((e.partition(), start, c));
            }
        }
        plan
    }
}

impl ConsumerContext for SourceContext {
    /// Eager rebalancing, as librdkafka's default does, plus recovery: a newly assigned partition is
    /// re-read from `lookback` before its committed offset so that its sellers' windows and pending
    /// timers come back (restart after a crash, or a partition moved from another instance).
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                let parts = partitions_of(tpl, &self.topic);
                let plan = self.recovery_plan(consumer, tpl);
                let assignment = tpl.clone();
                for (p, start, _) in &plan {
                    if let Some(mut e) = assignment.find_partition(&self.topic, *p) {
                        let _ = e.set_offset(Offset::Offset(*start));
                    }
                }
                if let Err(e) = consumer.assign(&assignment) {
                    self.metrics.kafka_errors.inc();
                    tracing::error!(error = %e, "assign failed");
                }
                tracing::info!(?parts, recovering = ?plan, "partitions assigned");
                if let Ok(mut o) = self.owned_before.lock() {
                    o.extend(parts.iter().copied());
                }
                let recovering = plan.into_iter().map(|(p, _, c)| (p, c)).collect();
                let _ = self.changes.send(PartitionChange::Assigned(parts, recovering));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["revoke"]).inc();
                let _ = self.changes.send(PartitionChange::Revoked(partitions_of(tpl, &self.topic)));
                let _ = consumer.unassign();
            }
            other => {
                self.metrics.kafka_errors.inc();
                tracing::warn!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
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
    recovery_lookback_ms: i64,
    metrics: &Metrics,
    changes: UnboundedSender<PartitionChange>,
) -> Result<Consumer, KafkaError> {
    let ctx = SourceContext {
        topic: k.input_topic.clone(),
        recovery_lookback_ms,
        owned_before: Mutex::new(Default::default()),
        changes,
        metrics: metrics.clone(),
        errors: Mutex::new(RateLimitedLog::new(std::time::Duration::from_secs(5))),
    };
    consumer_config(k).set_log_level(RDKafkaLogLevel::Warning).create_with_context(ctx)
}
