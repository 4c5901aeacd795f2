//! The rule lifecycle on a running service (tansu on loopback): the first half of the traffic runs
//! under one config; the config file then changes — one family into shadow mode, one seller's rule
//! snoozed — and the service reloads it without a restart; the second half runs under it; a broken
//! file sent with SIGHUP is refused. What reaches the alerts topic must be exactly `replay`'s alerts
//! for the whole traffic under the first config, minus the shadow family's and the snoozed pair's
//! alerts of the second half: so the reload kept every window (a lost window would lose or add
//! alerts of the other families), and shadow and snooze hold back exactly what they name.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sellerguard::alert::Alert;
use sellerguard::decode::{decode, DecodeLimits};
use sellerguard::gen::{generate, GenConfig};

fn event_ms(a: &Alert) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&a.event_time).unwrap().timestamp_millis()
}

/// The version label of `sellerguard_config_info` (there is exactly one).
fn version(addr: &str) -> String {
    let text = metrics_text(addr);
    let found: Vec<String> = text
        .lines()
        .filter_map(|l| Some(l.strip_prefix("sellerguard_config_info{version=\"")?.split('"').next()?.to_string()))
        .collect();
    assert_eq!(found.len(), 1, "one config version exported: {found:?}");
    found[0].clone()
}

/// `sellerguard_config_reloads_total{result}`: `None` when the series is missing or the endpoint
/// does not answer (every result's series is created at start, at 0).
fn reloads(addr: &str, result: &str) -> Option<f64> {
    let text = metrics_text(addr);
    let prefix = format!("sellerguard_config_reloads_total{{result=\"{result}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

/// Waits until `sellerguard_config_reloads_total{result}` reaches `n` (at most 30 s), and returns
/// it (it may have gone past `n`: the caller checks).
async fn wait_reloads(addr: &str, result: &str, n: f64, log: &std::path::Path) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = reloads(addr, result).unwrap_or(0.0);
        if got >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{result} reloads: {got}, want {n}\n{}", log_tail(log, 30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The service's log lines containing `what` (`config reloaded`, `config reload rejected`),
/// ANSI-free, once there are at least `n` (a reload counts before it logs; at most 10 s).
async fn reload_lines(log: &std::path::Path, what: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = log_text(log).lines().filter(|l| l.contains(what)).map(String::from).collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_shadow_and_snoozes_reload_on_a_running_service() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    // One input partition: with two, one caught up with the producer for `idle_partition_ms`
    // stops holding the watermark and the other's next events arrive late, which would make the
    // comparison with `replay` about lateness instead of reloads (scale-out has its own tests).
    create_topic(&bootstrap, "events-lc", 1).await;
    for t in ["alerts-lc", "dlq-lc", "shadow-lc"] {
        create_topic(&bootstrap, t, 1).await;
    }

    // Traffic, split at its median event time: the first half strictly before the second.
    let gen = GenConfig { seed: 11, sellers: 60, days: 9, fraud_share: 0.2, ..GenConfig::default() };
    let mut lines: Vec<(String, String, i64)> = Vec::new();
    let limits = DecodeLimits::default();
    generate(&gen, &mut |k, l| {
        let ts = decode(l.as_bytes(), &limits).expect("generated events are valid").ts;
        lines.push((k.to_string(), l.to_string(), ts));
    })
    .unwrap();
    let mut times: Vec<i64> = lines.iter().map(|(_, _, t)| *t).collect();
    times.sort_unstable();
    let cut = times[times.len() / 2];
    let (first, second): (Vec<_>, Vec<_>) = lines.iter().partition(|(_, _, t)| *t <= cut);

    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("sellerguard.toml");
    let base = "[service]\nidle_flush_ms = 500\nconfig_poll_ms = 200\n\
                [kafka]\nstanding_topic = \"\"\nshadow_topic = \"shadow-lc\"\n";
    write_atomic(&cfg_path, base);

    // The reference: replay of all the traffic under the first config.
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.iter().map(|(_, l, _)| format!("{l}\n")).collect::<String>()).unwrap();
    let out = Command::new(sellerguard_bin())
        .args(["replay", file.to_str().unwrap(), "--config", cfg_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference: Vec<Alert> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let later: Vec<&Alert> = reference.iter().filter(|a| event_ms(a) > cut).collect();
    // The shadow family: the one with most alerts in the second half; the snoozed pair: a seller
    // of another family alerted in the second half.
    let mut by_family = std::collections::BTreeMap::<&str, usize>::new();
    for a in &later {
        *by_family.entry(a.family()).or_default() += 1;
    }
    let shadow_family = by_family.iter().max_by_key(|(_, n)| **n).map(|(f, _)| f.to_string()).unwrap();
    let snoozed = later.iter().find(|a| a.family() != shadow_family).expect("another family alerts later");
    let (snooze_seller, snooze_family) = (snoozed.seller_id.clone(), snoozed.family().to_string());
    let held = |a: &Alert| event_ms(a) > cut && a.seller_id == snooze_seller && a.family() == snooze_family;
    let shadowed = |a: &Alert| event_ms(a) > cut && a.family() == shadow_family;
    let expected_live: BTreeSet<&str> =
        reference.iter().filter(|a| !held(a) && !shadowed(a)).map(|a| a.alert_id.as_str()).collect();
    eprintln!(
        "cut {cut}: {} + {} events, {} reference alerts; shadow {shadow_family}; snooze {snooze_seller}/{snooze_family}",
        first.len(),
        second.len(),
        reference.len()
    );

    let log = dir.path().join("service.log");
    let group = unique_group("sellerguard-lc");
    let svc = start_service(&cfg_path, &bootstrap, "lc", &group, &log);
    let records = |v: &[&(String, String, i64)]| -> Vec<(String, Vec<u8>)> {
        v.iter().map(|(k, l, _)| (k.clone(), l.as_bytes().to_vec())).collect()
    };
    produce(&bootstrap, "events-lc", &records(&first)).await;
    wait_caught_up(&svc, &bootstrap, &group, "events-lc", Duration::from_secs(120)).await;
    assert_eq!(svc.scrape("sellerguard_events_total"), Some(first.len() as f64), "every event of the first half");
    let v1 = version(&svc.metrics);
    assert_eq!(reloads(&svc.metrics, "applied"), Some(0.0), "nothing reloaded yet");

    // Edit the file: a family into shadow mode, one snooze. Picked up by polling, no signal. Each
    // file is replaced whole (a poll never reads one half-written); the snooze file first, as the
    // config that names it is not watched for it until it names it.
    let snoozes = dir.path().join("snoozes.jsonl");
    write_atomic(
        &snoozes,
        &format!(
            "{{\"seller_id\":\"{snooze_seller}\",\"rule\":\"{snooze_family}\",\"until\":\"2099-01-01T00:00:00Z\",\"reason\":\"case 7\"}}\n"
        ),
    );
    let reloaded = format!("{base}[alerts]\nshadow = [\"{shadow_family}\"]\nsnooze_file = \"{}\"\n", snoozes.display());
    write_atomic(&cfg_path, &reloaded);
    assert_eq!(wait_reloads(&svc.metrics, "applied", 1.0, &log).await, 1.0, "one change, one reload");
    let v2 = version(&svc.metrics);
    assert_ne!(v1, v2);
    let applied = reload_lines(&log, "config reloaded", 1).await;
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(
        applied[0].contains(r#"trigger="file change""#) && applied[0].contains(r#"result="applied""#),
        "the file change, seen by polling, applied it: {applied:?}"
    );
    assert_eq!(svc.scrape("sellerguard_config_restart_pending"), Some(0.0), "CLI overrides are not changes");
    assert_eq!(reloads(&svc.metrics, "rejected"), Some(0.0));

    produce(&bootstrap, "events-lc", &records(&second)).await;
    wait_caught_up(&svc, &bootstrap, &group, "events-lc", Duration::from_secs(120)).await;
    assert_eq!(svc.scrape("sellerguard_events_total"), Some(lines.len() as f64), "every event");

    // A broken file: refused when the poll sees it, refused again on SIGHUP, the running config
    // stays, and it is not retried each poll. The signal is sent only once the poll's rejection is
    // counted, so each rejection has one known trigger.
    write_atomic(&cfg_path, &format!("{reloaded}\n[price_dumping]\nmin_drop = 7.0\n"));
    assert_eq!(wait_reloads(&svc.metrics, "rejected", 1.0, &log).await, 1.0, "refused once when seen");
    let rejected = reload_lines(&log, "config reload rejected", 1).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].contains(r#"trigger="file change""#), "{rejected:?}");
    Command::new("kill").args(["-HUP", &svc.child.id().to_string()]).status().unwrap();
    assert_eq!(wait_reloads(&svc.metrics, "rejected", 2.0, &log).await, 2.0, "SIGHUP reloads the file once");
    let rejected = reload_lines(&log, "config reload rejected", 2).await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(rejected[1].contains(r#"trigger="SIGHUP""#), "the second refusal is the signal's: {rejected:?}");
    assert!(rejected.iter().all(|l| l.contains("price_dumping.min_drop")), "names the key: {rejected:?}");
    // An absence: over ten poll periods (config_poll_ms = 200) the unchanged broken file is not
    // read again.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(2) {
        assert_eq!(reloads(&svc.metrics, "rejected"), Some(2.0), "a refused file is not retried each poll");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(version(&svc.metrics), v2, "the refused file changed nothing");
    assert_eq!(reloads(&svc.metrics, "applied"), Some(1.0));
    let log_text = log_text(&log);
    assert!(log_text.contains("alert snoozed") && log_text.contains("case 7"), "each snoozed alert is logged");
    assert_eq!(
        svc.scrape("sellerguard_events_late_total"),
        Some(0.0),
        "in order within the lateness, as replay saw it"
    );
    let shadow_counted = svc.scrape("sellerguard_shadow_alerts_total").expect("shadow alerts counted");
    let snoozed_counted = svc.scrape("sellerguard_alerts_snoozed_total").expect("snoozed alerts counted");
    assert!(svc.stop().success());

    let read = |topic: &'static str| {
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || consume_to_end(&b, topic, Duration::from_secs(60)))
    };
    let live: Vec<Alert> =
        read("alerts-lc").await.unwrap().iter().map(|r| serde_json::from_slice(&r.payload).unwrap()).collect();
    let shadow: Vec<Alert> =
        read("shadow-lc").await.unwrap().iter().map(|r| serde_json::from_slice(&r.payload).unwrap()).collect();

    // The feed: exactly the reference minus what shadow and snooze hold back, each alert with the
    // version it was raised under.
    let live_ids: BTreeSet<&str> = live.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(live.len(), live_ids.len(), "no duplicates");
    let describe = |ids: Vec<&&str>| -> Vec<String> {
        ids.iter()
            .map(|id| {
                let a = live.iter().chain(reference.iter()).find(|a| a.alert_id == **id).unwrap();
                format!(
                    "{} {} {} t-cut={}s v={}",
                    a.rule,
                    a.seller_id,
                    a.event_time,
                    (event_ms(a) - cut) / 1000,
                    a.config_version
                )
            })
            .collect()
    };
    assert_eq!(
        live_ids,
        expected_live,
        "extra on the feed: {:?}; missing: {:?}",
        describe(live_ids.difference(&expected_live).collect()),
        describe(expected_live.difference(&live_ids).collect())
    );
    for a in &live {
        assert!(!a.shadow);
        let want = if event_ms(a) > cut { &v2 } else { &v1 };
        assert_eq!(&a.config_version, want, "{} at {}", a.alert_id, a.event_time);
    }
    // Shadow: only the family in shadow, after the reload, marked; every seller the reference
    // flags there is flagged (the shadow rule's own cooldowns start empty at the reload, so which of
    // a seller's repeats pass may differ from the live rule's).
    assert!(!shadow.is_empty());
    assert!(shadow
        .iter()
        .all(|a| a.shadow && a.family() == shadow_family && a.config_version == v2 && event_ms(a) > cut));
    let sellers = |v: &mut dyn Iterator<Item = &Alert>| v.map(|a| a.seller_id.clone()).collect::<BTreeSet<_>>();
    let (got, want) = (sellers(&mut shadow.iter()), sellers(&mut reference.iter().filter(|a| shadowed(a))));
    assert!(got.is_superset(&want), "sellers not flagged in shadow: {:?}", want.difference(&got));
    assert_eq!(shadow_counted, shadow.len() as f64);
    // Snooze: exactly the pair's later alerts were held back, and counted.
    let want_held = reference.iter().filter(|a| held(a)).count();
    assert!(want_held >= 1);
    assert_eq!(snoozed_counted, want_held as f64);
}

/// Started on the embedded defaults, there is nothing to reload: SIGHUP is logged, not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_config_file_does_not_stop_the_service() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    for t in ["events-hup", "alerts-hup", "dlq-hup"] {
        create_topic(&bootstrap, t, 1).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let port = free_port();
    let child = Command::new(sellerguard_bin())
        .args(["run", "--brokers", &bootstrap, "--input-topic", "events-hup", "--alerts-topic", "alerts-hup"])
        .args(["--dlq-topic", "dlq-hup", "--group-id", &unique_group("sellerguard-hup")])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .env_remove("SELLERGUARD_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut svc = Service { child, metrics: format!("127.0.0.1:{port}"), log: Some(log.clone()) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log_text(&log).contains("consuming") {
        assert!(svc.child.try_wait().unwrap().is_none(), "service exited at start\n{}", log_tail(&log, 20));
        assert!(Instant::now() < deadline, "service did not start\n{}", log_tail(&log, 20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill").args(["-HUP", &svc.child.id().to_string()]).status().unwrap();
    while !log_text(&log).contains("nothing to reload") {
        assert!(svc.child.try_wait().unwrap().is_none(), "SIGHUP stopped the service\n{}", log_tail(&log, 20));
        assert!(Instant::now() < deadline, "SIGHUP was not logged\n{}", log_tail(&log, 20));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The signal was handled (logged): the default action, termination, did not happen. The service
    // still serves and its consumer loop still turns.
    let (status, body) = http_get(&svc.metrics, "/healthz").expect("still serving after SIGHUP");
    assert_eq!(status, 200, "{body}");
    assert!(svc.child.try_wait().unwrap().is_none(), "still running after SIGHUP");
    assert!(svc.stop().success());
}
