//! Graceful shutdown on a real broker (tansu): SIGTERM mid-stream while batches are in flight, and
//! SIGTERM while the broker is down with alerts that cannot be delivered. Each time the service
//! exits 0 in bounded time; after a restart the alerts topic holds exactly the alert ids `replay`
//! computes — what was in flight was either delivered and committed, or is re-read.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use sellerguard::alert::Alert;
use sellerguard::gen::GenConfig;

const INPUT: &str = "events-term";

fn committed_total(bootstrap: &str, group: &str) -> i64 {
    committed_offsets(bootstrap, group, INPUT).iter().map(|(_, o)| (*o).max(0)).sum()
}

/// Waits until `svc` has `metric` at `at_least` or more.
async fn wait_metric(svc: &Service, metric: &str, at_least: f64, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while svc.scrape(metric).unwrap_or(0.0) < at_least {
        assert!(Instant::now() < deadline, "{metric} never reached {at_least}\n{}", log_tail(log, 40));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_batches_in_flight_and_with_the_broker_down_loses_nothing() {
    let mut broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    for (t, n) in [(INPUT, 3), ("alerts-term", 1), ("dlq-term", 1)] {
        create_topic(&bootstrap, t, n).await;
    }
    // Enough traffic that a debug build is still working through it when the signal comes.
    let gen = GenConfig { seed: 23, sellers: 150, days: 20, fraud_share: 0.25, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected, .. } = replay_reference(&gen);
    assert!(expected.len() > 50, "traffic must produce alerts: {}", expected.len());
    let records = as_records(&lines);
    produce(&bootstrap, INPUT, &records).await;
    let total = records.len() as i64;

    let cfg = dir.path().join("sellerguard.toml");
    std::fs::write(
        &cfg,
        "[service]\nidle_flush_ms = 2000\n[kafka]\nstanding_topic = \"\"\n[kafka.consumer]\n\"session.timeout.ms\" = \"6000\"\n",
    )
    .unwrap();
    let group = unique_group("sellerguard-term");
    let log = dir.path().join("service.log");

    // 1. SIGTERM as soon as alerts flow: batches are being produced and acknowledged.
    let svc = start_service(&cfg, &bootstrap, "term", &group, &log);
    wait_metric(&svc, "sellerguard_alerts_total", 1.0, &log).await;
    let inflight = svc.scrape("sellerguard_inflight_batches");
    let status = svc.stop();
    assert!(status.success(), "SIGTERM mid-stream exits 0: {status:?}\n{}", log_tail(&log, 30));
    let after_first = committed_total(&bootstrap, &group);
    eprintln!("first stop: {inflight:?} batches in flight at the signal, {after_first}/{total} committed");
    assert!(after_first < total, "stopped mid-stream");

    // 2. Restarted, the broker dies under it while it works through the rest: its alerts cannot be
    //    delivered, batches stay in flight. SIGTERM then: still exit 0, in bounded time.
    //    Alerts flowing (state rebuilt, live events released) and most of the stream still ahead,
    //    much of it already fetched into librdkafka's queue: processing goes on without the broker.
    let svc = start_service(&cfg, &bootstrap, "term", &group, &log);
    wait_metric(&svc, "sellerguard_alerts_total", 1.0, &log).await;
    broker.stop();
    wait_metric(&svc, "sellerguard_inflight_batches", 1.0, &log).await;
    let signalled = Instant::now();
    let status = svc.stop();
    assert!(status.success(), "SIGTERM with the broker down exits 0: {status:?}\n{}", log_tail(&log, 30));
    eprintln!("second stop took {:?} with the broker down", signalled.elapsed());

    // 3. Broker back, a last run finishes the stream: exactly replay's ids on the alerts topic.
    broker.restart();
    let svc = start_service(&cfg, &bootstrap, "term", &group, &log);
    wait_caught_up(&svc, &bootstrap, &group, INPUT, Duration::from_secs(300)).await;
    let got = tokio::task::spawn_blocking({
        let b = bootstrap.clone();
        move || consume_to_end(&b, "alerts-term", Duration::from_secs(120))
    })
    .await
    .unwrap();
    assert!(svc.stop().success());
    let ids: BTreeSet<String> =
        got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let missing: Vec<_> = expected.difference(&ids).collect();
    let mut extra_by_rule = std::collections::BTreeMap::<String, usize>::new();
    for r in &got {
        let a: Alert = serde_json::from_slice(&r.payload).unwrap();
        if !expected.contains(&a.alert_id) {
            *extra_by_rule.entry(a.rule).or_default() += 1;
        }
    }
    assert!(
        missing.is_empty() && extra_by_rule.is_empty(),
        "{} of {} missing (first {:?}); extra by rule {extra_by_rule:?}\n{}",
        missing.len(),
        expected.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        log_tail(&log, 60)
    );
    eprintln!("shutdown: {} alert records for {} ids == replay's", got.len(), ids.len());
}
