//! Sink: alerts and dead letters to Kafka. Records are built here (pure functions, tested without
//! a broker); [`deliver`] sends one and retries until the broker acknowledges it, because an input
//! offset is committed only after its alerts are acknowledged (at-least-once).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::alert::Alert;
use crate::config::KafkaConfig;
use crate::decode::DecodeError;
use crate::telemetry::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Alerts,
    /// Alerts of rules in shadow mode (`kafka.shadow_topic`): never the feed.
    Shadow,
    DeadLetter,
    Standing,
}

impl Destination {
    /// Every destination (metrics pre-create a series per label).
    pub const ALL: [Destination; 4] =
        [Destination::Alerts, Destination::Shadow, Destination::DeadLetter, Destination::Standing];

    pub fn label(self) -> &'static str {
        match self {
            Destination::Alerts => "alerts",
            Destination::Shadow => "shadow",
            Destination::DeadLetter => "dead_letter",
            Destination::Standing => "standing",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Record {
    pub destination: Destination,
    pub key: Option<Vec<u8>>,
    /// `None`: no value (a dead-lettered tombstone stays a tombstone).
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// Alert contract v1 as JSON, keyed by seller; rule and severity also as headers for routing.
pub fn alert_record(a: &Alert) -> Record {
    Record {
        destination: if a.shadow { Destination::Shadow } else { Destination::Alerts },
        key: Some(a.seller_id.as_bytes().to_vec()),
        payload: Some(serde_json::to_vec(a).expect("alerts always serialize")),
        headers: vec![
            ("rule", a.rule.as_bytes().to_vec()),
            ("severity", a.severity.as_str().as_bytes().to_vec()),
            ("alert_id", a.alert_id.as_bytes().to_vec()),
        ],
    }
}

/// A seller's standing, keyed by seller for a compacted topic: the latest record is the standing.
pub fn standing_record(s: &crate::rules::standing::Standing) -> Record {
    Record {
        destination: Destination::Standing,
        key: Some(s.seller_id.as_bytes().to_vec()),
        payload: Some(serde_json::to_vec(s).expect("standing records always serialize")),
        headers: vec![("version", s.version.to_string().into_bytes())],
    }
}

/// The raw bytes as received, with why and where from in headers: nothing about a bad message is
/// lost, and it can be replayed once fixed.
pub fn dead_letter_record(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    err: &DecodeError,
    source_topic: &str,
    partition: i32,
    offset: i64,
) -> Record {
    Record {
        destination: Destination::DeadLetter,
        key: key.map(<[u8]>::to_vec),
        payload: payload.map(<[u8]>::to_vec),
        headers: vec![
            ("reason", err.reason.as_str().as_bytes().to_vec()),
            ("error", err.detail.as_bytes().to_vec()),
            ("source_topic", source_topic.as_bytes().to_vec()),
            ("source_partition", partition.to_string().into_bytes()),
            ("source_offset", offset.to_string().into_bytes()),
        ],
    }
}

pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    // Alerts must survive a broker failure once acknowledged; batching a few ms costs little latency.
    c.set("acks", "all").set("linger.ms", "2").set("message.timeout.ms", "30000");
    for (key, v) in k.common.iter().chain(k.producer.iter()) {
        c.set(key, v);
    }
    c.set("bootstrap.servers", &k.brokers);
    if k.exactly_once() {
        c.set("transactional.id", &k.transactional_id).set("enable.idempotence", "true");
    }
    c
}

pub fn create_producer(k: &KafkaConfig) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    producer_config(k).create()
}

/// Sends `rec` to `topic`. At-least-once retries with back-off until acknowledged (the input offset
/// waits); inside a transaction a failure is final for the transaction (it is aborted and its
/// input re-read), so it returns false at once. Every failed attempt is counted; logs are limited
/// to one per back-off step.
pub async fn deliver(producer: &FutureProducer, topic: &str, rec: &Record, metrics: &Metrics, retry: bool) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut headers = OwnedHeaders::new_with_capacity(rec.headers.len());
        for (k, v) in &rec.headers {
            headers = headers.insert(Header { key: k, value: Some(v) });
        }
        let mut fr = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
        if let Some(p) = &rec.payload {
            fr = fr.payload(p);
        }
        if let Some(k) = &rec.key {
            fr = fr.key(k);
        }
        match producer.send(fr, Timeout::Never).await {
            Ok(_) => return true,
            Err((e, _)) => {
                metrics.produce_errors.with_label_values(&[rec.destination.label()]).inc();
                if !retry {
                    tracing::warn!(error = %e, topic, "produce failed inside a transaction: it will be aborted");
                    return false;
                }
                if let Some(held) = metrics.allow_log("produce") {
                    tracing::warn!(error = %e, topic, retry_in_ms = backoff.as_millis() as u64, similar_held_back = held, "produce failed; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RejectReason;

    #[test]
    fn dead_letter_keeps_bytes_reason_and_source() {
        let err = DecodeError { reason: RejectReason::OutOfRange, detail: "field `rating` is 7".into() };
        let r = dead_letter_record(Some(b"s1"), Some(b"\xff raw"), &err, "events", 2, 41);
        assert_eq!(r.payload.as_deref(), Some(&b"\xff raw"[..]));
        let tombstone = dead_letter_record(Some(b"s1"), None, &err, "events", 2, 42);
        assert_eq!(tombstone.payload, None, "a tombstone stays a tombstone");
        let h: std::collections::HashMap<_, _> = r.headers.iter().cloned().collect();
        assert_eq!(h["reason"], b"out_of_range");
        assert_eq!(h["source_partition"], b"2");
        assert_eq!(h["source_offset"], b"41");
        assert_eq!(h["source_topic"], b"events");
    }

    #[test]
    fn alert_record_is_contract_json_keyed_by_seller() {
        let a = Alert {
            alert_id: "id".into(),
            rule: "price_dumping".into(),
            seller_id: "s9".into(),
            severity: crate::alert::Severity::High,
            score: 2.5,
            event_time: "2026-01-05T10:00:00.000Z".into(),
            detected_at: "2026-01-05T10:00:01.000Z".into(),
            evidence: serde_json::json!({"listing_id": "l"}),
            message: "m".into(),
            config_version: "0123456789ab".into(),
            shadow: false,
        };
        let r = alert_record(&a);
        assert_eq!(r.key.as_deref(), Some(&b"s9"[..]));
        let back: Alert = serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
        assert_eq!(back, a);
        let v: serde_json::Value = serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
        for field in
            ["alert_id", "rule", "seller_id", "severity", "score", "event_time", "detected_at", "evidence", "message"]
        {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["severity"], "high");
    }
}
