//! Crash recovery, proven on a real broker (tansu): the service is killed with SIGKILL at several
//! points of a stream and restarted each time; an independent reader of the alerts topic must find
//! exactly the alert ids `replay` computes over the same input — nothing lost (windows and timers
//! come back by re-reading), duplicates only of the same ids (at-least-once).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sellerguard::alert::Alert;
use sellerguard::gen::GenConfig;

fn scrape(addr: &str, metric: &str) -> f64 {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return 0.0 };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.lines()
        .filter(|l| l.starts_with(metric) && matches!(l.as_bytes().get(metric.len()), Some(b'{' | b' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Service {
    child: Child,
    metrics: String,
}

fn start(cfg: &std::path::Path, bootstrap: &str, group: &str, log: &std::path::Path) -> Service {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics = format!("127.0.0.1:{port}");
    let child = Command::new(sellerguard_bin())
        .args(["run", "--config", cfg.to_str().unwrap(), "--brokers", bootstrap, "--input-topic", "events-crash"])
        .args([
            "--alerts-topic",
            "alerts-crash",
            "--dlq-topic",
            "dlq-crash",
            "--group-id",
            group,
            "--metrics-addr",
            &metrics,
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
        .spawn()
        .unwrap();
    Service { child, metrics }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_service_delivers_exactly_replays_alert_ids() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "events-crash", 3).await;
    create_topic(&bootstrap, "alerts-crash", 1).await;
    create_topic(&bootstrap, "dlq-crash", 1).await;

    let gen = GenConfig { seed: 5, sellers: 50, days: 8, fraud_share: 0.25, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected } = replay_reference(&gen);
    assert!(expected.len() > 20, "traffic must produce alerts: {}", expected.len());

    let records: Vec<(String, Vec<u8>)> = lines.iter().map(|(k, l)| (k.clone(), l.as_bytes().to_vec())).collect();
    produce(&bootstrap, "events-crash", &records).await;
    let cfg = dir.path().join("sellerguard.toml");
    // A short session lets the group notice a killed member in seconds, not 45.
    std::fs::write(
        &cfg,
        "[service]\nidle_flush_ms = 2000\n[kafka]\nstanding_topic = \"\"\n[kafka.consumer]\n\"session.timeout.ms\" = \"6000\"\n",
    )
    .unwrap();
    let group = unique_group("sellerguard-crash");

    // Kill -9 once a quarter, then over half, of the input is committed; the third run finishes.
    let mut recovered = 0.0;
    let log = dir.path().join("service.log");
    for share in [0.25, 0.55] {
        let mut svc = start(&cfg, &bootstrap, &group, &log);
        let deadline = Instant::now() + Duration::from_secs(120);
        // Kill once enough alerts are out *and* some progress is committed, so the restart resumes
        // mid-stream with state to rebuild.
        let committed =
            |b: &str| -> i64 { committed_offsets(b, &group, "events-crash").iter().map(|(_, o)| (*o).max(0)).sum() };
        while (committed(&bootstrap) as f64) < share * records.len() as f64 {
            assert!(Instant::now() < deadline, "no progress before the kill at {share}");
            assert!(svc.child.try_wait().unwrap().is_none(), "service exited early");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        recovered += scrape(&svc.metrics, "sellerguard_recovery_events_total");
        svc.child.kill().unwrap(); // SIGKILL: no shutdown path runs
        svc.child.wait().unwrap();
    }
    let mut last = start(&cfg, &bootstrap, &group, &log);
    let got = tokio::task::spawn_blocking({
        let (b, n) = (bootstrap.clone(), expected.len());
        move || consume_all(&b, "alerts-crash", n, Duration::from_secs(8), Duration::from_secs(240))
    })
    .await
    .unwrap();
    recovered += scrape(&last.metrics, "sellerguard_recovery_events_total");
    let _ = Command::new("kill").args(["-TERM", &last.child.id().to_string()]).status();
    last.child.wait().unwrap();

    let ids: BTreeSet<String> =
        got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let missing: Vec<_> = expected.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&expected).collect();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let log: String = log.lines().filter(|l| !l.contains("rejected input")).take(60).collect::<Vec<_>>().join("\n");
    assert!(missing.is_empty(), "lost {} of {} alerts: {missing:?}\n{log}", missing.len(), expected.len());
    assert!(extra.is_empty(), "alerts replay does not compute: {extra:?}");
    assert!(recovered > 0.0, "restarts re-read history to rebuild state");
    eprintln!(
        "crash recovery: {} alert records for {} ids ({} duplicates), {recovered} messages re-read",
        got.len(),
        ids.len(),
        got.len() - ids.len()
    );
}
