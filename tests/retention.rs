//! Retention shorter than what recovery needs: the service says what is lost, counts it and carries
//! on. tansu 0.6's sqlite engine does not implement DeleteRecords (it panics), so this runs on
//! librdkafka's mock cluster, whose partitions really drop their oldest messages past 5 MB — the
//! same thing size-based retention does on a broker. The service is a separate process. Messages
//! are stamped with their event time (CreateTime), as a marketplace producer does.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sellerguard::gen::GenConfig;

fn event_ms(line: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    // The generator writes both forms the contract allows: RFC 3339 text and epoch ms.
    match &v["ts"] {
        serde_json::Value::String(t) => chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis(),
        n => n.as_i64().unwrap(),
    }
}

async fn send(producer: &FutureProducer, part: &[(String, String)]) {
    for chunk in part.chunks(2_000) {
        let sends = chunk.iter().map(|(k, l)| {
            producer
                .send(FutureRecord::to("events-ret").key(k).payload(l).timestamp(event_ms(l)), Duration::from_secs(30))
        });
        for r in futures::future::join_all(sends).await {
            r.expect("produce to the mock cluster");
        }
    }
}

fn committed(probe: &BaseConsumer) -> i64 {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("events-ret", 0);
    match probe.committed_offsets(tpl, Duration::from_secs(5)).map(|c| c.elements()[0].offset()) {
        Ok(Offset::Offset(o)) => o,
        _ => -1,
    }
}

async fn wait_committed(probe: &BaseConsumer, want: i64, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed(probe) != want {
        assert!(Instant::now() < deadline, "committed {}, want {want}\n{}", committed(probe), log_tail(log, 40));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_history_and_unread_messages_are_counted_and_processing_goes_on() {
    let cluster = MockCluster::new(1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("events-ret", 1, 1).unwrap();
    cluster.create_topic("alerts-ret", 1, 1).unwrap();
    cluster.create_topic("dlq-ret", 1, 1).unwrap();
    let gen = GenConfig { seed: 3, sellers: 60, days: 10, ..GenConfig::default() };
    let Reference { dir, lines, .. } = replay_reference(&gen);
    let bytes: usize = lines.iter().map(|(k, l)| k.len() + l.len()).sum();
    assert!(bytes > 8 << 20, "enough traffic to overflow the mock's 5 MB partition: {bytes} bytes");
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let probe: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", "g-ret").create().unwrap();

    // A first run processes a small head of the stream and commits it.
    let first = 5_000;
    send(&producer, &lines[..first]).await;
    // A lookback reaching back past the generated history (it starts on 2026-01-05).
    let days_back = (sellerguard::telemetry::now_ms() - 1_767_225_600_000) / 86_400_000 + 30;
    let cfg = dir.path().join("ret.toml");
    let toml = format!(
        "[service]\nidle_flush_ms = 1000\n[state]\nrecovery_lookback_hours = {}\n[kafka]\nstanding_topic = \"\"\n",
        days_back * 24
    );
    std::fs::write(&cfg, toml).unwrap();
    let log = dir.path().join("service.log");
    let svc = start_service(&cfg, &bootstrap, "ret", "g-ret", &log);
    wait_committed(&probe, first as i64, &log).await;
    assert!(svc.stop().success());

    // While it is down the rest arrives, and the partition drops its oldest messages: the history
    // recovery wanted, and messages past the commit that were never processed.
    send(&producer, &lines[first..]).await;
    let (low, high) = probe.fetch_watermarks("events-ret", 0, Duration::from_secs(5)).unwrap();
    assert_eq!(high, lines.len() as i64);
    assert!(low > first as i64, "retention must have removed unprocessed messages: oldest retained {low}");

    let svc = start_service(&cfg, &bootstrap, "ret", "g-ret", &log);
    wait_committed(&probe, high, &log).await;
    let lost = svc.scrape("sellerguard_recovery_lost_messages_total").expect("lost messages counted");
    let truncated = svc.scrape("sellerguard_recovery_truncated_total").expect("truncated history counted");
    let consumed = svc.scrape("sellerguard_events_total").expect("events counted");
    assert!(svc.stop().success());
    assert_eq!(lost as i64, low - first as i64, "every unread deleted message is counted");
    assert_eq!(truncated, 1.0, "the cut-short history is counted");
    assert_eq!(consumed as i64, high - low, "everything retained after the gap is processed");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("deleted by retention before they were processed"), "a log line says what was lost");
    assert!(text.contains("retention is shorter than state.recovery_lookback_hours"), "and what history is gone");
}
