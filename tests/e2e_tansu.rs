//! End to end through a real Kafka-protocol broker (tansu on loopback): generated traffic with
//! fraud of every family and malformed messages goes in; the service's alerts topic must hold
//! exactly the alerts `replay` computes from the same lines (same ids, same evidence), every
//! malformed message must be on the dead-letter topic with its reason, `/metrics` must agree with
//! what went in and pass `promtool check metrics`, offsets must be committed, and SIGTERM must
//! stop the service cleanly. Each dead letter's headers are checked against the true source of its
//! record (partition and offset as the broker placed it) and an independent decode of its bytes,
//! including a tombstone (no payload) and a key that is not UTF-8.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sellerguard::alert::Alert;
use sellerguard::decode::{decode, DecodeLimits};
use sellerguard::gen::{generate, GenConfig};

const MALFORMED: [(&str, &str); 4] = [
    ("not json at all", "invalid_json"),
    (
        r#"{"event_id":"m1","type":"review","seller_id":"s-bad","ts":1767607200000,"order_id":"o","buyer_id":"b","rating":7}"#,
        "out_of_range",
    ),
    (r#"{"event_id":"m2","type":"teleport","seller_id":"s-bad","ts":1767607200000}"#, "unknown_type"),
    (
        r#"{"event_id":"m3","type":"order_delivered","seller_id":"s-bad","ts":"yesterday","order_id":"o"}"#,
        "invalid_timestamp",
    ),
];

/// Produced as raw records after the traffic: a tombstone (no payload at all) and a malformed event
/// whose key is not UTF-8.
const RAW: [RawRecord; 2] = [
    (b"s-tomb", None, "invalid_json"),
    (
        &[0xff, 0xfe, 0x00, 0x41],
        Some(br#"{"event_id":"m5","type":"listing","seller_id":"s-bin","ts":1767607200000}"#),
        "missing_field",
    ),
];

/// Key, payload (none: a tombstone), reason.
type RawRecord = (&'static [u8], Option<&'static [u8]>, &'static str);

/// A malformed input record as produced: what its dead letter must say.
#[derive(Debug)]
struct Bad {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    partition: i32,
    offset: i64,
    reason: &'static str,
}

/// Sum of a metric family's samples in a Prometheus text exposition (optionally one label value).
fn metric_sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l.as_bytes().get(name.len()) == Some(&b'{') || l.as_bytes().get(name.len()) == Some(&b' '))
        })
        .filter(|l| label.is_none_or(|lv| l.contains(lv)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What may differ between the service and `replay`: the detection time, and the config version
/// (the service's file sets topics and timings, so its version is its own; checked separately).
fn without_wall_clock(mut a: Alert) -> Alert {
    a.detected_at.clear();
    a.config_version.clear();
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_through_tansu_matches_replay() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let (input, alerts_topic, dlq, standing) = ("events-e2e", "alerts-e2e", "dlq-e2e", "standing-e2e");
    create_topic(&bootstrap, input, 3).await;
    create_topic(&bootstrap, alerts_topic, 1).await;
    create_topic(&bootstrap, dlq, 1).await;
    create_topic(&bootstrap, standing, 1).await;

    // Traffic: every family's fraud, honest sellers, events out of order within the bound.
    let gen = GenConfig { seed: 7, sellers: 60, days: 9, fraud_share: 0.2, ..GenConfig::default() };
    let mut lines: Vec<(String, String)> = Vec::new();
    let summary = generate(&gen, &mut |k, l| lines.push((k.to_string(), l.to_string()))).unwrap();
    let families: BTreeSet<_> = summary.labels.iter().map(|l| l.family.clone()).collect();
    assert_eq!(families.len(), 9, "generator labels all nine families: {families:?}");
    for (i, (bad, _)) in MALFORMED.iter().enumerate() {
        lines.insert((i + 1) * lines.len() / 5, ("s-bad".into(), bad.to_string()));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.iter().map(|(_, l)| format!("{l}\n")).collect::<String>()).unwrap();

    // Replay: the reference.
    let standing_file = dir.path().join("standing.jsonl");
    let out = Command::new(sellerguard_bin())
        .args(["replay", file.to_str().unwrap(), "--standing", standing_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    let expected: Vec<Alert> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected_families: BTreeSet<_> = expected.iter().map(|a| a.family().to_string()).collect();
    for family in sellerguard::eval::FAMILIES {
        assert!(expected_families.contains(family), "replay alerts in {family}: {expected_families:?}");
    }

    // The service, on the broker: the traffic, then the raw records.
    let records = as_records(&lines);
    let placed = produce(&bootstrap, input, &records).await;
    let raw: Vec<OutgoingRaw> =
        RAW.iter().map(|(k, p, _)| OutgoingRaw { key: Some(k), payload: *p, headers: &[], timestamp: None }).collect();
    let placed_raw = produce_raw(&bootstrap, input, &raw).await;
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in placed.iter().chain(&placed_raw) {
        let e = ends.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    // Every malformed record with where the broker put it.
    let mut bad: Vec<Bad> = Vec::new();
    for ((key, line), (p, o)) in lines.iter().zip(&placed) {
        if let Some((_, reason)) = MALFORMED.iter().find(|(m, _)| *m == line.as_str()) {
            let (key, payload) = (Some(key.as_bytes().to_vec()), Some(line.as_bytes().to_vec()));
            bad.push(Bad { key, payload, partition: *p, offset: *o, reason });
        }
    }
    for ((k, payload, reason), (p, o)) in RAW.iter().zip(&placed_raw) {
        bad.push(Bad {
            key: Some(k.to_vec()),
            payload: payload.map(<[u8]>::to_vec),
            partition: *p,
            offset: *o,
            reason,
        });
    }
    assert_eq!(bad.len(), MALFORMED.len() + RAW.len());

    let group = unique_group("sellerguard-e2e");
    let cfg = dir.path().join("sellerguard.toml");
    std::fs::write(&cfg, format!("[service]\nidle_flush_ms = 1000\n[kafka]\nstanding_topic = \"{standing}\"\n"))
        .unwrap();
    let log = dir.path().join("service.log");
    let svc = start_service(&cfg, &bootstrap, "e2e", &group, &log);
    let metrics_addr = svc.metrics.clone();

    // Every input offset committed (each only once its alerts, standing records and dead letters
    // are acknowledged) and nothing held: the output topics are complete.
    wait_caught_up(&svc, &bootstrap, &group, input, Duration::from_secs(180)).await;
    let read = |topic: &'static str| {
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || consume_to_end(&b, topic, Duration::from_secs(60)))
    };
    let got = read(alerts_topic).await.unwrap();
    let got: Vec<Alert> = got.iter().map(|r| serde_json::from_slice(&r.payload).unwrap()).collect();

    // Every alert names the config in force, as /metrics does.
    let (_, text) = http_get(&metrics_addr, "/metrics").expect("metrics endpoint answers");
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("sellerguard_config_info{version=\"")?.split('"').next())
        .expect("sellerguard_config_info is exported")
        .to_string();
    assert_eq!(version.len(), 12, "{version}");
    assert!(got.iter().all(|a| a.config_version == version), "alerts carry version {version}");
    assert!(expected.iter().all(|a| a.config_version.len() == 12 && a.config_version != version));

    // Same ids, and the same alerts apart from the wall-clock detection time.
    let ids = |v: &[Alert]| v.iter().map(|a| a.alert_id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(got.len(), expected.len(), "no duplicates or losses on the alerts topic");
    assert_eq!(ids(&got), ids(&expected));
    let by_id =
        |v: Vec<Alert>| v.into_iter().map(|a| (a.alert_id.clone(), without_wall_clock(a))).collect::<BTreeMap<_, _>>();
    assert_eq!(by_id(got), by_id(expected.clone()));

    // Seller standing: the compacted topic holds exactly replay's records, keyed by seller.
    let want_standing: BTreeSet<String> =
        std::fs::read_to_string(&standing_file).unwrap().lines().map(String::from).collect();
    assert!(want_standing.len() > 60, "standing records for the sellers: {}", want_standing.len());
    let got_standing = read(standing).await.unwrap();
    for r in &got_standing {
        let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(r.key.as_deref(), v["seller_id"].as_str());
    }
    let got_standing: BTreeSet<String> =
        got_standing.iter().map(|r| String::from_utf8(r.payload.clone()).unwrap()).collect();
    assert_eq!(got_standing, want_standing);

    // Dead letters: the raw bytes and key as received, the reason and error an independent decode
    // of those bytes gives, and the true source of each record.
    let dead = read(dlq).await.unwrap();
    assert_eq!(dead.len(), bad.len(), "one dead letter per malformed record: {dead:?}");
    let limits = DecodeLimits::from_config(&sellerguard::config::Config::default().input);
    for b in &bad {
        let bytes = b.payload.as_deref().unwrap_or_default();
        let err = decode(bytes, &limits).expect_err("the record is malformed");
        assert_eq!(err.reason.as_str(), b.reason, "the test's reason for {b:?}");
        assert!(!err.detail.is_empty());
        let d = dead
            .iter()
            .find(|d| {
                let h: BTreeMap<_, _> = d.headers.iter().cloned().collect();
                d.payload == bytes && h.get("source_offset") == Some(&b.offset.to_string().into_bytes())
            })
            .unwrap_or_else(|| panic!("no dead letter for {b:?} in {dead:?}"));
        let h: BTreeMap<String, Vec<u8>> = d.headers.iter().cloned().collect();
        assert_eq!(h.len(), d.headers.len(), "no header twice: {d:?}");
        let text =
            |k: &str| String::from_utf8_lossy(h.get(k).unwrap_or_else(|| panic!("no {k} header: {d:?}"))).into_owned();
        assert_eq!(text("reason"), b.reason, "{d:?}");
        assert_eq!(text("error"), err.detail, "the decode error of these bytes: {d:?}");
        assert_eq!(text("source_topic"), input, "{d:?}");
        assert_eq!(text("source_partition"), b.partition.to_string(), "{b:?}: {d:?}");
        assert_eq!(text("source_offset"), b.offset.to_string(), "{b:?}: {d:?}");
        assert_eq!(d.key_bytes, b.key, "the key's bytes exactly: {d:?}");
        assert_eq!(d.payload, bytes, "the payload's bytes exactly: {d:?}");
        assert_eq!(d.null_payload, b.payload.is_none(), "a tombstone's dead letter is a tombstone: {d:?}");
    }

    // Metrics agree with the input and are valid exposition format.
    let (status, health) = http_get(&metrics_addr, "/healthz").expect("healthz answers");
    assert_eq!(status, 200, "{health}");
    let (status, text) = http_get(&metrics_addr, "/metrics").expect("metrics answer");
    assert_eq!(status, 200);
    let valid = (lines.len() - MALFORMED.len()) as f64;
    assert_eq!(metric_sum(&text, "sellerguard_events_total", None), valid);
    assert_eq!(metric_sum(&text, "sellerguard_events_rejected_total", None), bad.len() as f64);
    let mut by_reason = BTreeMap::<&str, usize>::new();
    for b in &bad {
        *by_reason.entry(b.reason).or_default() += 1;
    }
    for (reason, n) in by_reason {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(metric_sum(&text, "sellerguard_events_rejected_total", Some(&label)), n as f64, "{reason}");
    }
    assert_eq!(metric_sum(&text, "sellerguard_alerts_total", None), expected.len() as f64);
    assert_eq!(metric_sum(&text, "sellerguard_dead_letters_total", None), bad.len() as f64);
    assert!(!text.contains("seller_id="), "seller ids never become labels");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`) is installed; .ci/run installs it");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let check = promtool.wait_with_output().unwrap();
    assert!(
        check.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // At-least-once: every input offset is committed once its alerts are acknowledged (the
    // wait above compared with the broker's end offsets; these are the producer's own).
    let committed: BTreeMap<_, _> = committed_offsets(&bootstrap, &group, input).into_iter().collect();
    assert!(ends.iter().all(|(p, end)| committed.get(p) == Some(end)), "committed {committed:?}, ends {ends:?}");

    // Gauges: consumer lag from librdkafka statistics (every 5 s) reaches 0 on every partition.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, text) = http_get(&metrics_addr, "/metrics").expect("metrics answer");
        let lags: Vec<f64> = (0..3)
            .map(|p| metric_sum(&text, "sellerguard_consumer_lag_messages", Some(&format!("partition=\"{p}\""))))
            .collect();
        let present = (0..3).all(|p| text.contains(&format!("sellerguard_consumer_lag_messages{{partition=\"{p}\"}}")));
        if present && lags.iter().all(|l| *l == 0.0) {
            assert!(metric_sum(&text, "sellerguard_sellers_tracked", None) >= gen.sellers as f64);
            assert_eq!(metric_sum(&text, "sellerguard_buffered_events", None), 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "consumer lag never reported 0 on all partitions:\n{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Graceful stop on SIGTERM.
    let status = svc.stop();
    let log = log_text(&log);
    assert!(status.success(), "exit {status:?}\n{log}\nbroker log:\n{}", broker.log());
    assert!(log.contains("SIGTERM"), "{log}");
}
