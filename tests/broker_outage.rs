//! Broker trouble: the broker (tansu) goes down for 30 s in the middle of the stream and comes back
//! on the same port with the same data. The service waits (healthy, memory flat), resumes, and the
//! alerts topic ends up with exactly the alert ids `replay` computes: nothing lost (duplicates are
//! allowed by at-least-once, and carry the same ids).
//!
//! Before the outage every partition has caught up and stopped holding the watermark; after it,
//! the partitions deliver a moment apart, hours of event time here. The service must not let the
//! first one carry event time past the others' unread events (`source::idle`).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use sellerguard::alert::Alert;
use sellerguard::gen::GenConfig;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_30_seconds_and_back_loses_nothing() {
    let mut broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let (input, alerts_topic) = ("events-outage", "alerts-outage");
    for (t, n) in [(input, 3), (alerts_topic, 1), ("dlq-outage", 1)] {
        create_topic(&bootstrap, t, n).await;
    }

    let gen = GenConfig { seed: 11, sellers: 40, days: 6, fraud_share: 0.25, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected, .. } = replay_reference(&gen);
    assert!(expected.len() > 10, "traffic must produce alerts");

    // First half in, service running.
    let half = lines.len() / 2;
    let records = as_records(&lines);
    produce(&bootstrap, input, &records[..half]).await;
    let cfg = dir.path().join("sellerguard.toml");
    // The idle flush outlasts the outage, so the outage itself releases nothing early. The generated
    // stream packs 6 days into seconds (~25 s of event time per message): after the restart the
    // three partitions' fetches resume a moment apart, which here is hours of event time, in a live
    // stream seconds. A 6 h lateness keeps that ratio realistic, so nothing is processed late.
    std::fs::write(
        &cfg,
        "[service]\nidle_flush_ms = 45000\n[input]\nallowed_lateness_ms = 21600000\n[kafka]\nstanding_topic = \"\"\n",
    )
    .unwrap();
    let group = unique_group("sellerguard-outage");
    let log = dir.path().join("service.log");
    let svc = start_service(&cfg, &bootstrap, "outage", &group, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    while svc.scrape("sellerguard_events_total").unwrap_or(0.0) < half as f64 {
        assert!(Instant::now() < deadline, "the first half was not consumed\n{}", log_tail(&log, 40));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every partition caught up and idle: the state the outage used to break.
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.scrape("sellerguard_partition_idle_transitions_total{to=\"idle\"}").unwrap_or(0.0) < 3.0 {
        assert!(Instant::now() < deadline, "the partitions never went idle\n{}", log_tail(&log, 40));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Outage: the service stays up and healthy, and its memory does not grow while it waits.
    let mut child = svc;
    broker.stop();
    let rss_before = rss_kib(child.child.id());
    let outage = Instant::now();
    let mut rss_max = rss_before;
    while outage.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss_max = rss_max.max(rss_kib(child.child.id()));
        assert!(child.child.try_wait().unwrap().is_none(), "the service must wait for the broker, not exit");
    }
    let health = http_get(&child.metrics, "/healthz");
    assert!(matches!(health, Some((200, _))), "still healthy while waiting: {health:?}");
    assert!(rss_max < rss_before + 64 * 1024, "memory grew from {rss_before} KiB to {rss_max} KiB during the outage");
    let held = child.scrape("sellerguard_partition_idle_transitions_total{to=\"hold\"}");
    assert!(held.unwrap_or(0.0) >= 3.0, "the dropped connection made the idle partitions hold: {held:?}");

    // Back: the rest of the stream. Done when every input offset is committed (each only after
    // the alerts it caused were acknowledged) with nothing buffered: the alerts topic is complete.
    broker.restart();
    produce(&bootstrap, input, &records[half..]).await;
    wait_caught_up(&child, &bootstrap, &group, input, Duration::from_secs(300)).await;
    let late = child.scrape("sellerguard_events_late_total");
    let got = tokio::task::spawn_blocking({
        let b = bootstrap.clone();
        move || consume_to_end(&b, alerts_topic, Duration::from_secs(120))
    })
    .await
    .unwrap();
    let ids: BTreeSet<String> =
        got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let status = child.stop();
    let missing: Vec<_> = expected.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?} (late events: {late:?})\n{}",
        log_tail(&log, 60)
    );
    assert!(status.success(), "{}", log_tail(&log, 30));
}
