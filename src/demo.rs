//! `sellerguard demo`: zero set-up. Starts librdkafka's in-process mock Kafka cluster, produces
//! generated marketplace traffic with injected fraud of every family (and a few malformed
//! messages), runs the real consumer → engine → producer service against it, reads the alerts topic
//! back and prints alerts and a per-family summary.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::alert::Alert;
use crate::config::Config;
use crate::gen::{generate, GenConfig, Label};
use crate::service::{self, Progress};
use crate::telemetry::Metrics;

pub struct DemoOptions {
    pub gen: GenConfig,
    /// Alerts printed per family.
    pub show: usize,
    pub timeout: Duration,
}

/// Malformed messages mixed into the demo stream, to show the dead-letter path.
const MALFORMED: [&str; 3] = [
    "this is not json",
    r#"{"event_id":"bad-1","type":"review","seller_id":"s-x","ts":"2026-01-05T10:00:00Z","order_id":"o","buyer_id":"b","rating":7}"#,
    r#"{"event_id":"bad-2","type":"listing","seller_id":"s-x","ts":"2026-01-05T10:00:00Z","listing_id":"l","category":"c","price":-5,"shipping_fee":0}"#,
];

pub struct DemoReport {
    pub alerts: Vec<Alert>,
    pub labels: Vec<Label>,
    pub produced: u64,
    pub dead_letters: u64,
}

pub async fn run(base: &Config, opts: DemoOptions) -> anyhow::Result<DemoReport> {
    let cluster = MockCluster::new(1).context("starting the mock Kafka cluster")?;
    let mut cfg = base.clone();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.group_id = "sellerguard-demo".into();
    // A mock cluster is instant: release buffered events soon after input stops.
    cfg.service.idle_flush_ms = 500;

    // 1. Traffic.
    let mut records: Vec<(String, String)> = Vec::new();
    let summary = generate(&opts.gen, &mut |key, line| records.push((key.to_string(), line.to_string())))
        .map_err(|e| anyhow::anyhow!("generator: {e}"))?;
    for (i, bad) in MALFORMED.iter().enumerate() {
        records.insert((i + 1) * records.len() / 4, ("s-x".into(), bad.to_string()));
    }
    cluster.create_topic(&cfg.kafka.input_topic, 3, 1)?;
    cluster.create_topic(&cfg.kafka.alerts_topic, 1, 1)?;
    cluster.create_topic(&cfg.kafka.dlq_topic, 1, 1)?;
    eprintln!(
        "demo: generated {} events from {} sellers ({} labelled fraudulent) + {} malformed",
        summary.events,
        opts.gen.sellers,
        summary.labels.len(),
        MALFORMED.len(),
    );

    // 2. The real service, fed as a live stream.
    let progress = Arc::new(Progress::default());
    let (trigger, shutdown) = crate::shutdown::channel();
    let started = Instant::now();
    let task = tokio::spawn(service::run(cfg.clone(), Metrics::new(), shutdown, progress.clone()));
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &cfg.kafka.brokers).set("linger.ms", "5").create()?;
    let consumed = || progress.consumed.load(std::sync::atomic::Ordering::SeqCst) as usize;
    let mut sent = 0usize;
    for chunk in records.chunks(2_000) {
        // The mock cluster keeps only ~5 MB per partition and drops older data: stay close to the
        // consumer instead of writing everything up front.
        while sent > consumed() + 6_000 {
            anyhow::ensure!(!task.is_finished() && started.elapsed() < opts.timeout, "service stopped consuming");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sends = chunk
            .iter()
            .map(|(k, v)| producer.send(FutureRecord::to(&cfg.kafka.input_topic).key(k).payload(v), Timeout::Never));
        for r in futures::future::join_all(sends).await {
            r.map_err(|(e, _)| e).context("producing demo traffic")?;
        }
        sent += chunk.len();
    }
    let produced = records.len() as u64;

    while !progress.caught_up(produced) {
        if started.elapsed() > opts.timeout || task.is_finished() {
            trigger.fire();
            let res = task.await;
            anyhow::bail!(
                "service did not catch up within {:?}: {:?} ({:?})",
                opts.timeout,
                progress,
                res.map(|r| r.err())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("demo: service processed {produced} messages in {:.1}s", started.elapsed().as_secs_f64());
    trigger.fire();
    task.await??;

    // 3. Read the alerts topic back.
    let want = progress.alerts_delivered.load(std::sync::atomic::Ordering::SeqCst) as usize;
    let alerts = read_alerts(&cfg, want, opts.timeout).await?;
    Ok(DemoReport {
        alerts,
        labels: summary.labels,
        produced,
        dead_letters: progress.dead_letters.load(std::sync::atomic::Ordering::SeqCst),
    })
}

async fn read_alerts(cfg: &Config, want: usize, timeout: Duration) -> anyhow::Result<Vec<Alert>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", "sellerguard-demo-reader")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&cfg.kafka.alerts_topic])?;
    let mut alerts = Vec::with_capacity(want);
    let deadline = Instant::now() + timeout;
    while alerts.len() < want && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            Ok(Ok(m)) => alerts.push(serde_json::from_slice(m.payload().unwrap_or(&[]))?),
            Ok(Err(e)) => anyhow::bail!("reading alerts: {e}"),
            Err(_) => {}
        }
    }
    anyhow::ensure!(alerts.len() == want, "read {} of {want} alerts back", alerts.len());
    Ok(alerts)
}

/// Human-readable report: sample alerts per family, then a table against the generator's labels.
pub fn render(report: &DemoReport, show: usize) -> String {
    let mut by_family: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
    for a in &report.alerts {
        by_family.entry(a.family()).or_default().push(a);
    }
    let mut out = String::new();
    for (family, alerts) in &by_family {
        out += &format!("\n== {family}: {} alerts\n", alerts.len());
        for a in alerts.iter().take(show) {
            out += &format!("  [{}] {} {}\n      {}\n", a.severity.as_str(), a.event_time, a.rule, a.message);
        }
    }
    let labelled: BTreeMap<&str, BTreeSet<&str>> = report.labels.iter().fold(BTreeMap::new(), |mut m, l| {
        m.entry(l.family.as_str()).or_default().insert(l.seller_id.as_str());
        m
    });
    let fraud: BTreeSet<&str> = report.labels.iter().map(|l| l.seller_id.as_str()).collect();
    out += "\nfamily                    alerts  sellers  labelled  caught  honest-flagged\n";
    for family in crate::eval::FAMILIES {
        let alerts = by_family.get(family).map_or(&[][..], |v| v.as_slice());
        let flagged: BTreeSet<&str> = alerts.iter().map(|a| a.seller_id.as_str()).collect();
        let want = labelled.get(family).cloned().unwrap_or_default();
        let caught = want.iter().filter(|s| flagged.contains(*s)).count();
        let honest = flagged.iter().filter(|s| !fraud.contains(*s)).count();
        out += &format!(
            "{family:<25} {:>6}  {:>7}  {:>8}  {:>6}  {:>14}\n",
            alerts.len(),
            flagged.len(),
            want.len(),
            caught,
            honest
        );
    }
    out += &format!(
        "\n{} messages in, {} alerts out, {} malformed messages dead-lettered.\n",
        report.produced,
        report.alerts.len(),
        report.dead_letters
    );
    out
}
