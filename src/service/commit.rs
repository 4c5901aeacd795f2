//! Committing input offsets, the two delivery guarantees (`kafka.delivery`):
//!
//! * **at_least_once**: offsets whose alerts are acknowledged are committed by the group member
//!   (and synchronously when partitions are revoked). A crash re-reads at most the uncommitted
//!   tail; the alerts it repeats carry the same `alert_id`.
//! * **exactly_once**: one Kafka transaction is open at a time; every interval its records are
//!   awaited, the input offsets are added (`send_offsets_to_transaction`, with the group's
//!   metadata so a zombie is fenced) and it commits. A failed transaction is aborted and the input
//!   since the last commit re-read: `read_committed` readers see each alert once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::blocking;
use super::pipeline::Pipeline;
use crate::config::Config;
use crate::source::Membership;
use crate::telemetry::Metrics;

pub enum Committer {
    AtLeastOnce { topic: String, committable: Arc<Mutex<HashMap<i32, i64>>>, metrics: Metrics },
    Transactions { topic: String, producer: FutureProducer, metrics: Metrics },
}

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl Committer {
    pub fn new(
        cfg: &Config,
        producer: FutureProducer,
        committable: Arc<Mutex<HashMap<i32, i64>>>,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let topic = cfg.kafka.input_topic.clone();
        if !cfg.kafka.exactly_once() {
            return Ok(Committer::AtLeastOnce { topic, committable, metrics: metrics.clone() });
        }
        blocking(|| producer.init_transactions(TXN_TIMEOUT).and_then(|_| producer.begin_transaction())).map_err(|e| {
            anyhow::anyhow!(
                "kafka.delivery = \"exactly_once\": cannot start a transaction on {} ({e}); the broker may not support transactions: use delivery = \"at_least_once\"",
                cfg.kafka.brokers
            )
        })?;
        Ok(Committer::Transactions { topic, producer, metrics: metrics.clone() })
    }

    /// Commits the offsets that are done. Returns `Ok(false)` when a transaction was aborted: the
    /// caller must re-read from the last commit (it rebuilds state). `final_` waits for the commit.
    pub async fn commit(&mut self, lp: &mut Pipeline, membership: &Membership, final_: bool) -> anyhow::Result<bool> {
        match self {
            Committer::AtLeastOnce { topic, committable, metrics } => {
                let ready = lp.take_storable();
                let tpl = {
                    let mut map = committable.lock().map_err(|_| anyhow::anyhow!("commit map poisoned"))?;
                    for (p, o) in &ready {
                        map.insert(*p, o + 1);
                    }
                    map.retain(|p, _| lp.owns(*p));
                    if ready.is_empty() && !final_ || map.is_empty() {
                        return Ok(true);
                    }
                    offsets_list(topic, map.iter().map(|(p, o)| (*p, *o)))
                };
                let mode = if final_ { CommitMode::Sync } else { CommitMode::Async };
                if let Err(e) = blocking(|| membership.commit(&tpl, mode)) {
                    metrics.kafka_errors.inc();
                    if let Some(held) = metrics.allow_log("commit") {
                        tracing::warn!(error = %e, similar_held_back = held, "offset commit failed; retried at the next interval");
                    }
                }
                Ok(true)
            }
            Committer::Transactions { topic, producer, metrics } => {
                // Every record of the transaction must be acknowledged before it commits.
                lp.drain(TXN_TIMEOUT).await;
                let failed = lp.take_delivery_failed() || !lp.inflight.is_empty();
                let ready = lp.take_storable();
                let produced = lp.take_produced();
                if !failed && ready.is_empty() && !produced {
                    return Ok(true);
                }
                let result = if failed {
                    Err(Ok(anyhow::anyhow!("a record of the transaction was not delivered")))
                } else {
                    let tpl = offsets_list(topic, ready.iter().filter(|(p, _)| lp.owns(*p)).map(|(p, o)| (*p, o + 1)));
                    let gm = membership
                        .group_metadata()
                        .ok_or_else(|| anyhow::anyhow!("no consumer group metadata (not in a group yet)"))?;
                    // Err(Ok(_)): abort and re-read; Err(Err(_)): stop the service.
                    blocking(|| {
                        if tpl.count() > 0 {
                            producer.send_offsets_to_transaction(&tpl, &gm, TXN_TIMEOUT)?;
                        }
                        producer.commit_transaction(TXN_TIMEOUT)
                    })
                    .map_err(check_fatal)
                };
                match result {
                    Ok(()) => {
                        metrics.transactions.with_label_values(&["committed"]).inc();
                        blocking(|| producer.begin_transaction())?;
                        Ok(true)
                    }
                    Err(Err(fatal)) => Err(fatal),
                    Err(Ok(e)) => {
                        metrics.transactions.with_label_values(&["aborted"]).inc();
                        tracing::warn!(error = %e, "transaction aborted: its input is re-read from the last commit");
                        blocking(|| producer.abort_transaction(TXN_TIMEOUT).and_then(|_| producer.begin_transaction()))
                            .map_err(|e| anyhow::anyhow!("cannot abort the transaction: {e}"))?;
                        Ok(false)
                    }
                }
            }
        }
    }
}

/// A fatal transactional error (fenced by a newer instance with the same `transactional.id`):
/// this instance must stop.
#[derive(Debug, thiserror::Error)]
#[error("fatal transaction error (another instance uses kafka.transactional_id?): {0}")]
struct Fatal(KafkaError);

fn check_fatal(e: KafkaError) -> Result<anyhow::Error, anyhow::Error> {
    if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::UnsupportedFeature) {
        // tansu 0.6, for one, accepts InitProducerId but not EndTxn.
        return Err(anyhow::anyhow!(
            "kafka.delivery = \"exactly_once\": the broker does not support transactions ({e}); use delivery = \"at_least_once\""
        ));
    }
    let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
    if fatal {
        Err(Fatal(e).into())
    } else {
        Ok(e.into())
    }
}

fn offsets_list(topic: &str, offsets: impl Iterator<Item = (i32, i64)>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        let _ = tpl.add_partition_offset(topic, p, Offset::Offset(o));
    }
    tpl
}
