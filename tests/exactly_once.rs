//! `kafka.delivery = "exactly_once"`: alerts and input offsets commit in Kafka transactions.
//!
//! * librdkafka's mock cluster (it speaks the transaction protocol: InitProducerId, AddPartitions-
//!   and AddOffsetsToTxn, TxnOffsetCommit, EndTxn): the service, a separate process, runs the
//!   stream to its end in transactions; every alert id equals replay's, none appears twice, and the
//!   consumer never commits outside a transaction.
//! * tansu 0.6 has no transactions (it grants a transactional producer id but rejects EndTxn): the
//!   service stops at its first commit, naming the key and the fix, instead of silently running
//!   with a weaker guarantee.
//!
//! The mock cluster does not filter aborted records for `read_committed` readers (its Fetch reports
//! no aborted transactions), so a kill -9 under transactions cannot be verified here: that needs a
//! broker with full transaction support (README, "Delivery guarantees").

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::Offset;
use sellerguard::alert::Alert;
use sellerguard::gen::GenConfig;

async fn produce_mock(producer: &FutureProducer, part: &[(String, String)]) {
    let sends =
        part.iter().map(|(k, l)| producer.send(FutureRecord::to("events-eos").key(k).payload(l), Timeout::Never));
    for r in futures::future::join_all(sends).await {
        r.expect("produce to the mock cluster");
    }
}

fn eos_config(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("eos.toml");
    std::fs::write(
        &cfg,
        "[service]\nidle_flush_ms = 1000\ncommit_interval_ms = 300\n[kafka]\nstanding_topic = \"\"\ndelivery = \"exactly_once\"\ntransactional_id = \"sellerguard-eos-test-0\"\n",
    )
    .unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_alerts_and_offsets_together_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("events-eos", 3, 1).unwrap();
    cluster.create_topic("alerts-eos", 1, 1).unwrap();
    cluster.create_topic("dlq-eos", 1, 1).unwrap();

    let gen = GenConfig { seed: 21, sellers: 30, days: 6, fraud_share: 0.3, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected, .. } = replay_reference(&gen);
    assert!(expected.len() > 10, "traffic must produce alerts: {}", expected.len());
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    // Half the traffic first; the rest only once a transaction has committed, so that the run
    // needs more than one however fast the engine gets through a half.
    let (first, second) = lines.split_at(lines.len() / 2);
    produce_mock(&producer, first).await;

    let cfg = eos_config(dir.path());
    let log = dir.path().join("service.log");
    let group = unique_group("sellerguard-eos");
    let svc = start_service(&cfg, &bootstrap, "eos", &group, &log);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while svc.scrape("sellerguard_transactions_total").unwrap_or(0.0) < 1.0 {
        assert!(std::time::Instant::now() < deadline, "no transaction committed\n{}", log_tail(&log, 40));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    produce_mock(&producer, second).await;
    producer.flush(Duration::from_secs(10)).unwrap();

    // Everything read and processed, and nothing held. (No consumer commits to wait for: offsets
    // travel in transactions, which the mock cluster does not store.)
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (events, buffered, inflight) = (
            svc.scrape("sellerguard_events_total"),
            svc.scrape("sellerguard_buffered_events"),
            svc.scrape("sellerguard_inflight_batches"),
        );
        if events == Some(lines.len() as f64) && buffered == Some(0.0) && inflight == Some(0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events {events:?} of {}, buffered {buffered:?}, in flight {inflight:?}\n{}",
            lines.len(),
            log_tail(&log, 40)
        );
        assert!(!svc.exited(), "the service exited\n{}", log_tail(&log, 40));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Offsets travel only inside transactions (TxnOffsetCommit), never by a consumer commit. The
    // mock cluster accepts TxnOffsetCommit but does not store it, so the group shows none.
    let probe: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", &group).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition("events-eos", p);
    }
    let committed = probe.committed_offsets(tpl, Duration::from_secs(5)).unwrap();
    assert!(
        committed.elements().iter().all(|e| !matches!(e.offset(), Offset::Offset(_))),
        "no consumer commit: {committed:?}"
    );
    let committed_txns = svc.scrape("sellerguard_transactions_total").expect("transactions counted");
    // A clean stop commits the open transaction: the alerts topic is then complete.
    assert!(svc.stop().success(), "clean stop");
    let got = tokio::task::spawn_blocking({
        let b = bootstrap.clone();
        move || consume_to_end(&b, "alerts-eos", Duration::from_secs(60))
    })
    .await
    .unwrap();

    let ids: Vec<String> = got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique, expected, "alert ids equal replay's\n{}", log_tail(&log, 40));
    assert_eq!(ids.len(), unique.len(), "no alert twice");
    assert!(committed_txns >= 2.0, "alerts and offsets went through transactions: {committed_txns}");
    eprintln!("exactly_once on the mock cluster: {} alerts, {committed_txns} transactions", ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_transactions_is_refused_with_the_key_to_change() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    for t in ["events-eos", "alerts-eos", "dlq-eos"] {
        create_topic(&bootstrap, t, 1).await;
    }
    let line = r#"{"event_id":"e1","type":"order_delivered","seller_id":"s","ts":1767607200000,"order_id":"o"}"#;
    produce(&bootstrap, "events-eos", &[("s".to_string(), line.as_bytes().to_vec())]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = eos_config(dir.path());
    let log = dir.path().join("refused.log");
    let mut child = Command::new(sellerguard_bin())
        .args(["run", "--config", cfg.to_str().unwrap(), "--brokers", &bootstrap])
        .args(["--input-topic", "events-eos", "--alerts-topic", "alerts-eos", "--dlq-topic", "dlq-eos"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after 90 s\n{}", log_tail(&log, 40));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "must not run without transactions");
    let last = err.lines().find(|l| l.starts_with("Error:")).unwrap_or_default();
    assert!(
        last.contains("exactly_once")
            && last.contains("at_least_once")
            && last.contains("does not support transactions"),
        "names the key and the fix: {last}\n{}",
        log_tail(&log, 40)
    );
}
