//! Broker trouble: the broker (tansu) goes down for 30 s in the middle of the stream and comes back
//! on the same port with the same data. The service waits (healthy, memory flat), resumes, and the
//! alerts topic ends up with exactly the alert ids `replay` computes: nothing lost (duplicates are
//! allowed by at-least-once, and carry the same ids).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
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

fn get(addr: &str, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

fn events_seen(metrics_addr: &str) -> f64 {
    get(metrics_addr, "/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("sellerguard_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_30_seconds_and_back_loses_nothing() {
    let mut broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let (input, alerts_topic, dlq) = ("events-outage", "alerts-outage", "dlq-outage");
    create_topic(&bootstrap, input, 3).await;
    create_topic(&bootstrap, alerts_topic, 1).await;
    create_topic(&bootstrap, dlq, 1).await;

    let gen = GenConfig { seed: 11, sellers: 40, days: 6, fraud_share: 0.25, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected, .. } = replay_reference(&gen);
    assert!(expected.len() > 10, "traffic must produce alerts");

    // First half in, service running.
    let half = lines.len() / 2;
    let records: Vec<(String, Vec<u8>)> = lines.iter().map(|(k, l)| (k.clone(), l.as_bytes().to_vec())).collect();
    produce(&bootstrap, input, &records[..half]).await;
    let metrics_addr =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
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
    let mut child = Command::new(sellerguard_bin())
        .args(["run", "--config", cfg.to_str().unwrap(), "--brokers", &bootstrap, "--input-topic", input])
        .args([
            "--alerts-topic",
            alerts_topic,
            "--dlq-topic",
            dlq,
            "--group-id",
            &group,
            "--metrics-addr",
            &metrics_addr,
        ])
        .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while events_seen(&metrics_addr) < half as f64 {
        assert!(Instant::now() < deadline, "the first half was not consumed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Outage: the service stays up and healthy, and its memory does not grow while it waits.
    broker.stop();
    let rss_before = rss_kib(child.id());
    let outage = Instant::now();
    let mut rss_max = rss_before;
    while outage.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss_max = rss_max.max(rss_kib(child.id()));
        assert!(child.try_wait().unwrap().is_none(), "the service must wait for the broker, not exit");
    }
    let health = get(&metrics_addr, "/healthz").unwrap_or_default();
    assert!(health.starts_with("HTTP/1.1 200"), "still healthy while waiting: {health}");
    assert!(rss_max < rss_before + 64 * 1024, "memory grew from {rss_before} KiB to {rss_max} KiB during the outage");

    // Back: the rest of the stream, then every alert replay computes.
    broker.restart();
    produce(&bootstrap, input, &records[half..]).await;
    let got = tokio::task::spawn_blocking({
        let (b, n) = (bootstrap.clone(), expected.len());
        move || consume_all(&b, alerts_topic, n, Duration::from_secs(10), Duration::from_secs(180))
    })
    .await
    .unwrap();
    let ids: BTreeSet<String> =
        got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let missing: Vec<_> = expected.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&expected).collect();
    let log: String =
        log.lines().filter(|l| !l.contains("rejected input") && !l.contains("progress")).collect::<Vec<_>>().join("\n");
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}\n{log}");
    assert!(status.success(), "{log}");
}
