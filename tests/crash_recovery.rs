//! Crash recovery, proven on a real broker (tansu): the service is killed with SIGKILL at random
//! points of a stream and restarted each time; an independent reader of the alerts topic must find
//! exactly the alert ids `replay` computes over the same input — nothing lost (windows and timers
//! come back by re-reading), duplicates only of the same ids (at-least-once).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use sellerguard::alert::Alert;
use sellerguard::gen::GenConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_service_delivers_exactly_replays_alert_ids() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "events-crash", 3).await;
    create_topic(&bootstrap, "alerts-crash", 1).await;
    create_topic(&bootstrap, "dlq-crash", 1).await;

    let gen = GenConfig { seed: 5, sellers: 50, days: 8, fraud_share: 0.25, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected, .. } = replay_reference(&gen);
    assert!(expected.len() > 20, "traffic must produce alerts: {}", expected.len());

    let records = as_records(&lines);
    produce(&bootstrap, "events-crash", &records).await;
    let cfg = dir.path().join("sellerguard.toml");
    // A short session lets the group notice a killed member in seconds, not 45.
    std::fs::write(
        &cfg,
        "[service]\nidle_flush_ms = 2000\n[kafka]\nstanding_topic = \"\"\n[kafka.consumer]\n\"session.timeout.ms\" = \"6000\"\n",
    )
    .unwrap();
    let group = unique_group("sellerguard-crash");

    // Kill -9 at random points (shares of the input committed); the last run finishes.
    // SELLERGUARD_CRASH_KILLS (default 3; the long run uses 10+) and SELLERGUARD_CRASH_SEED reproduce a run.
    let kills: usize = std::env::var("SELLERGUARD_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let seed: u64 = std::env::var("SELLERGUARD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
    // One random point in each of `kills` equal bands of 10–90 %: every run makes some progress.
    let band = 0.8 / kills as f64;
    let points: Vec<f64> =
        (0..kills).map(|i| 0.1 + band * (i as f64 + rand::Rng::random_range(&mut rng, 0.0..1.0))).collect();
    eprintln!("crash points (SELLERGUARD_CRASH_SEED={seed}): {points:.2?}");
    let mut recovered = 0.0;
    let log = dir.path().join("service.log");
    for share in points {
        let mut svc = start_service(&cfg, &bootstrap, "crash", &group, &log);
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
        recovered += svc.scrape("sellerguard_recovery_events_total").expect("recovery counter exported");
        svc.kill(); // SIGKILL: no shutdown path runs
    }
    let last = start_service(&cfg, &bootstrap, "crash", &group, &log);
    // Every input offset committed (each only after the alerts it caused are acknowledged) and
    // nothing held: the alerts topic is complete.
    wait_caught_up(&last, &bootstrap, &group, "events-crash", Duration::from_secs(300)).await;
    recovered += last.scrape("sellerguard_recovery_events_total").expect("recovery counter exported");
    let got = tokio::task::spawn_blocking({
        let b = bootstrap.clone();
        move || consume_to_end(&b, "alerts-crash", Duration::from_secs(120))
    })
    .await
    .unwrap();
    assert!(last.stop().success(), "the last run stops cleanly");

    let ids: BTreeSet<String> =
        got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let missing: Vec<_> = expected.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&expected).collect();
    let log = log_text(&log);
    let log: String = log.lines().filter(|l| !l.contains("rejected input")).take(60).collect::<Vec<_>>().join("\n");
    assert!(
        missing.is_empty(),
        "lost {} of {} alerts (seed {seed}): {missing:?}\n{log}",
        missing.len(),
        expected.len()
    );
    assert!(extra.is_empty(), "alerts replay does not compute: {extra:?}");
    assert!(recovered > 0.0, "restarts re-read history to rebuild state");
    eprintln!(
        "crash recovery: {} alert records for {} ids ({} duplicates), {recovered} messages re-read",
        got.len(),
        ids.len(),
        got.len() - ids.len()
    );
}
