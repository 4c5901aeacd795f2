//! Source: two Kafka consumers with separate jobs.
//!
//! * The **group member** ([`Membership`]) joins the consumer group and fetches nothing: it says
//!   which partitions this instance *owns* (judges the sellers of, commits offsets for) and carries
//!   the commits. Rebalances reach the service loop as [`PartitionChange`]s.
//! * The **reader** ([`Reader`]) is assigned *every* partition of the input topic. Events of owned
//!   partitions go through the rules; the others only feed the cross-seller views (category and fee
//!   baselines, tracking numbers, review rings), so those views are the same in every instance as
//!   in a single one — Kafka Streams' global-table pattern. The price: each instance reads the whole
//!   topic (decoding is a third of the engine's cost); per-seller state and rules scale out.
//!
//! Where the reader starts each partition after an ownership change is [`plan`]ned here: from
//! `state.recovery_lookback_hours` before now (by message timestamp) when the group has a commit,
//! so that windows and timers are rebuilt; owned partitions are marked recovering up to their
//! committed offset (alerts already delivered). Offsets are committed by hand, only after the alerts
//! a message caused are acknowledged — rust-rdkafka's `at_least_once.rs` pattern.

pub mod idle;
pub mod offsets;
pub mod plan;

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

pub use plan::{plan, PartitionPlan, Positions};

use crate::config::KafkaConfig;
use crate::telemetry::{Metrics, RateLimitedLog};

/// A change in the partitions this instance owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionChange {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

fn log_error(metrics: &Metrics, errors: &Mutex<RateLimitedLog>, who: &'static str, error: KafkaError, reason: &str) {
    // End of partition is information (the watermark uses it), not an error.
    if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
        return;
    }
    metrics.kafka_errors.inc();
    if let Some(held) = errors.lock().ok().and_then(|mut l| l.allow(who)) {
        tracing::warn!(%error, reason, client = who, held_back = held, "kafka client error (librdkafka retries)");
    }
}

fn librdkafka_log(level: RDKafkaLogLevel, fac: &str, msg: &str) {
    if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
        tracing::debug!(fac, msg, "librdkafka");
    }
}

pub struct GroupContext {
    topic: String,
    /// Offsets (next to read) that are safe to commit, kept current by the service loop: committed
    /// synchronously when partitions are revoked, before another instance takes them over.
    committable: Arc<Mutex<HashMap<i32, i64>>>,
    /// With transactions, offsets are committed inside them, never by the consumer.
    commits_offsets: bool,
    changes: UnboundedSender<PartitionChange>,
    metrics: Metrics,
    errors: Mutex<RateLimitedLog>,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log_error(&self.metrics, &self.errors, "group", error, reason);
    }
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        librdkafka_log(level, fac, msg)
    }
}

impl ConsumerContext for GroupContext {
    /// Eager rebalancing, as librdkafka's default does. The member's assignment is taken and paused
    /// at once: the reader fetches; this client only holds ownership and commits.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                if let Err(e) = consumer.assign(tpl).and_then(|_| consumer.pause(tpl)) {
                    self.metrics.kafka_errors.inc();
                    tracing::error!(error = %e, "assign failed");
                }
                let parts = partitions_of(tpl, &self.topic);
                tracing::info!(?parts, "partitions assigned to this instance");
                let _ = self.changes.send(PartitionChange::Assigned(parts));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["revoke"]).inc();
                let parts = partitions_of(tpl, &self.topic);
                if self.commits_offsets {
                    self.commit_before_revoke(consumer, &parts);
                }
                let _ = self.changes.send(PartitionChange::Revoked(parts));
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

impl GroupContext {
    /// Last chance to commit what is done before another instance re-reads from the commit.
    fn commit_before_revoke(&self, consumer: &BaseConsumer<Self>, parts: &[i32]) {
        let Ok(ready) = self.committable.lock().map(|m| m.clone()) else { return };
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            if let Some(o) = ready.get(p) {
                let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(error = %e, "commit on revoke failed; the new owner re-reads from the last commit");
            }
        }
    }
}

pub struct ReaderContext {
    topic: String,
    /// Bumped when a connection to a broker drops (see [`idle`]).
    disconnects: Arc<AtomicU64>,
    /// Each broker's `disconnects` count in the last statistics: a drop whose error report
    /// librdkafka suppressed (it reports an identical error once per 30 s) still shows there.
    broker_disconnects: Mutex<HashMap<String, i64>>,
    /// Partitions this instance owns: lag is reported for those only, so that summing the gauge
    /// over instances counts each partition once.
    owned: Arc<Mutex<std::collections::HashSet<i32>>>,
    metrics: Metrics,
    errors: Mutex<RateLimitedLog>,
}

impl ClientContext for ReaderContext {
    /// Lag = last stable offset − the next offset handed to the service. (librdkafka's own
    /// `consumer_lag` counts from the reader's commits, and the reader never commits.)
    fn stats(&self, stats: Statistics) {
        if let Ok(mut seen) = self.broker_disconnects.lock() {
            for (name, b) in &stats.brokers {
                let now = b.disconnects.unwrap_or(0);
                if seen.insert(name.clone(), now).is_some_and(|before| now > before) {
                    self.disconnects.fetch_add(1, AtomicOrdering::SeqCst);
                }
            }
        }
        let Some(t) = stats.topics.get(&self.topic) else { return };
        let Ok(owned) = self.owned.lock() else { return };
        for (p, part) in &t.partitions {
            let label = p.to_string();
            // -1 is librdkafka's "unknown" (the internal UA partition, or before the first fetch).
            if owned.contains(p) && part.app_offset >= 0 && part.ls_offset >= 0 {
                self.metrics.consumer_lag.with_label_values(&[&label]).set((part.ls_offset - part.app_offset).max(0));
            } else if *p >= 0 && !owned.contains(p) {
                let _ = self.metrics.consumer_lag.remove_label_values(&[&label]);
            }
        }
    }
    fn error(&self, error: KafkaError, reason: &str) {
        if is_disconnect(&error) {
            self.disconnects.fetch_add(1, AtomicOrdering::SeqCst);
        }
        log_error(&self.metrics, &self.errors, "reader", error, reason);
    }
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        librdkafka_log(level, fac, msg)
    }
}
impl ConsumerContext for ReaderContext {}

pub type Membership = StreamConsumer<GroupContext>;
pub type Reader = StreamConsumer<ReaderContext>;

fn base_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    // Sensible defaults first, user pass-through next, then what correctness requires.
    c.set("auto.offset.reset", "earliest");
    for (key, v) in k.common.iter().chain(k.consumer.iter()) {
        c.set(key, v);
    }
    c.set("bootstrap.servers", &k.brokers)
        // Offsets are committed explicitly, and only once the alerts they caused are acknowledged.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    c
}

/// The group member: joins `kafka.group_id`, fetches nothing.
pub fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = base_config(k);
    c.set("group.id", &k.group_id);
    c
}

/// The reader: every partition by explicit assignment; its group id is never joined or committed
/// (librdkafka wants one on a consumer).
pub fn reader_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = base_config(k);
    c.set("group.id", format!("{}.reader", k.group_id))
        // Statistics feed the lag gauge.
        .set("statistics.interval.ms", "5000")
        // Transactional alerts are only seen by downstream readers once committed; the input
        // itself may be written transactionally by the platform.
        .set("isolation.level", "read_committed")
        // End of partition tells the watermark that a partition is caught up.
        .set("enable.partition.eof", "true");
    c
}

pub fn create_membership(
    k: &KafkaConfig,
    metrics: &Metrics,
    committable: Arc<Mutex<HashMap<i32, i64>>>,
    changes: UnboundedSender<PartitionChange>,
) -> Result<Membership, KafkaError> {
    let ctx = GroupContext {
        topic: k.input_topic.clone(),
        committable,
        commits_offsets: !k.exactly_once(),
        changes,
        metrics: metrics.clone(),
        errors: Mutex::new(RateLimitedLog::new(Duration::from_secs(5))),
    };
    consumer_config(k).set_log_level(RDKafkaLogLevel::Warning).create_with_context(ctx)
}

pub fn create_reader(
    k: &KafkaConfig,
    metrics: &Metrics,
    owned: Arc<Mutex<std::collections::HashSet<i32>>>,
    disconnects: Arc<AtomicU64>,
) -> Result<Reader, KafkaError> {
    let ctx = ReaderContext {
        topic: k.input_topic.clone(),
        disconnects,
        broker_disconnects: Mutex::new(HashMap::new()),
        owned,
        metrics: metrics.clone(),
        errors: Mutex::new(RateLimitedLog::new(Duration::from_secs(5))),
    };
    reader_config(k).set_log_level(RDKafkaLogLevel::Warning).create_with_context(ctx)
}

/// A lost connection to a broker (reported by the reader's poll or its error callback).
pub fn is_disconnect(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown))
}

/// The high watermark of `partition` that librdkafka kept from the last fetch answer covering it
/// (no request is sent; `None` before any). rust-rdkafka does not wrap this call.
pub fn fetched_high_watermark(reader: &Reader, topic: &CStr, partition: i32) -> Option<i64> {
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the handle lives as long as `reader`; `topic` is NUL-terminated; librdkafka writes
    // the two offsets under the partition's lock and keeps no pointer to them.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            reader.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// What the service loop needs besides the reader to know when a partition is caught up.
#[derive(Clone)]
pub struct Probe {
    pub prober: Arc<Prober>,
    /// Connection drops the reader reported ([`ReaderContext`]).
    pub disconnects: Arc<AtomicU64>,
    /// The input topic, for librdkafka's C API.
    pub topic: std::ffi::CString,
}

/// A client that only asks the brokers for partitions' end offsets, off the service loop (an
/// answer can take up to its timeout while a broker is down).
pub type Prober = BaseConsumer;

pub fn create_prober(k: &KafkaConfig) -> Result<Prober, KafkaError> {
    let mut c = base_config(k);
    c.set("group.id", format!("{}.prober", k.group_id)).set("isolation.level", "read_committed");
    c.set_log_level(RDKafkaLogLevel::Error).create()
}

/// Each partition's end offset as the broker reports it now (`None`: no answer in time).
pub fn end_offsets(prober: &Prober, topic: &str, partitions: &[i32], timeout: Duration) -> Vec<(i32, Option<i64>)> {
    partitions.iter().map(|p| (*p, prober.fetch_watermarks(topic, *p, timeout).ok().map(|(_, high)| high))).collect()
}

/// Reads what [`plan`] needs from the brokers: partitions, the group's commits, retention bounds
/// and the offsets at the lookback time. Blocking (metadata requests).
pub fn positions(
    membership: &Membership,
    reader: &Reader,
    topic: &str,
    lookback_ms: i64,
    now_ms: i64,
) -> Result<Positions, KafkaError> {
    let timeout = Duration::from_secs(10);
    let md = reader.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> =
        md.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut all = TopicPartitionList::new();
    for p in &partitions {
        all.add_partition(topic, *p);
    }
    let mut committed = HashMap::new();
    for e in membership.committed_offsets(all.clone(), timeout)?.elements_for_topic(topic) {
        if let Offset::Offset(o) = e.offset() {
            committed.insert(e.partition(), o);
        }
    }
    let mut retained = HashMap::new();
    for p in &partitions {
        retained.insert(*p, reader.fetch_watermarks(topic, *p, timeout)?);
    }
    let since = now_ms - lookback_ms;
    let mut at_lookback = HashMap::new();
    if lookback_ms > 0 && !committed.is_empty() {
        let mut probe = TopicPartitionList::new();
        for p in &partitions {
            let _ = probe.add_partition_offset(topic, *p, Offset::Offset(since));
        }
        // Brokers without timestamp lookup (librdkafka's mock cluster): the plan falls back to the
        // oldest retained offset, which re-reads more but misses nothing.
        match reader.offsets_for_times(probe, timeout) {
            Ok(found) => {
                for e in found.elements_for_topic(topic) {
                    let o = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        Offset::Beginning => Some(0),
                        // No message at or after `since`: nothing in the lookback.
                        Offset::End => Some(i64::MAX),
                        _ => None,
                    };
                    if let Some(o) = o {
                        at_lookback.insert(e.partition(), o);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "offsets_for_times failed: recovery re-reads from the oldest retained offset")
            }
        }
    }
    Ok(Positions { partitions, committed, retained, at_lookback, since })
}
