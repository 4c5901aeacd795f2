//! Scale-out and rebalances on a real broker (tansu): two instances share the input in one consumer
//! group; one is killed (SIGKILL) mid-stream; the survivor takes its partitions over, rebuilds their
//! sellers from the lookback, and the alerts topic ends up holding exactly the alert ids a single
//! `replay` computes — including the cross-seller rules (category baselines, tracking numbers
//! reused across sellers), which every instance builds from the whole topic.
//!
//! A stalled takeover says whose side it is on (`takeover_diagnosis`). Seen with tansu 0.6, in
//! loaded runs only: a member killed during a rebalance is sometimes never removed from the group,
//! and the coordinator's later assignments hand its partitions to it (once the survivor was
//! assigned nothing for four minutes with no other live member; in another run a rebalance finished
//! 10 ms after it began, gave the frozen member a partition, and never expired it). That is the
//! broker's: a Kafka coordinator expires the member after `session.timeout.ms`. The first test
//! therefore kills B only once the group has settled; the second loses a member mid-rebalance on
//! purpose, and when the coordinator keeps the dead member it reports "NOT CHECKED (broker defect)"
//! with the assignments instead of failing on the broker's account.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use sellerguard::alert::Alert;
use sellerguard::gen::GenConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_killed_survivor_delivers_a_single_instances_alerts() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "events-pair", 4).await;
    create_topic(&bootstrap, "alerts-pair", 1).await;
    create_topic(&bootstrap, "dlq-pair", 1).await;

    let gen = GenConfig { seed: 11, sellers: 60, days: 8, fraud_share: 0.25, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected, rules } = replay_reference(&gen);
    assert!(expected.len() > 20, "traffic must produce alerts: {}", expected.len());
    // Rules that read the cross-seller views are part of what must match.
    for rule in ["price_dumping", "shipping_fee_inflation", "fake_shipment"] {
        assert!(rules.get(rule).is_some_and(|n| *n > 0), "reference has no {rule} alerts: {rules:?}");
    }
    let records = as_records(&lines);
    produce(&bootstrap, "events-pair", &records).await;

    let cfg = dir.path().join("sellerguard.toml");
    std::fs::write(
        &cfg,
        "[service]\nidle_flush_ms = 2000\n[kafka]\nstanding_topic = \"\"\n[kafka.consumer]\n\"session.timeout.ms\" = \"6000\"\n",
    )
    .unwrap();
    let group = unique_group("sellerguard-pair");
    let (log, log_b) = (dir.path().join("service-a.log"), dir.path().join("service-b.log"));
    let a = start_service(&cfg, &bootstrap, "pair", &group, &log);
    let b = start_service(&cfg, &bootstrap, "pair", &group, &log_b);

    // Both own a share (a gauge still at 4 may be a member between revocation and assignment), each
    // has read the other's partitions for the cross-seller views, and B has judged and committed part
    // of its share: then B dies.
    let deadline = Instant::now() + Duration::from_secs(120);
    let committed =
        || -> i64 { committed_offsets(&bootstrap, &group, "events-pair").iter().map(|(_, o)| (*o).max(0)).sum() };
    loop {
        let (owned_a, owned_b) = (
            a.scrape("sellerguard_partitions_owned").unwrap_or(0.0),
            b.scrape("sellerguard_partitions_owned").unwrap_or(0.0),
        );
        // Settled too (each assigned once more than revoked): B is killed mid-stream, not in the
        // middle of a rebalance (a second one of A and B alone can follow the first; the next test
        // loses a member mid-rebalance on purpose).
        let settled = [&log, &log_b].iter().all(|l| assigned(l) == revoked(l) + 1);
        let shared = (1.0..4.0).contains(&owned_a) && (1.0..4.0).contains(&owned_b) && settled;
        let observed = |s: &Service| s.scrape("sellerguard_observed_events_total").unwrap_or(0.0) > 0.0;
        let b_alerts = b.scrape("sellerguard_alerts_total").unwrap_or(0.0);
        if shared && observed(&a) && observed(&b) && b_alerts > 0.0 && committed() as f64 > 0.3 * records.len() as f64 {
            eprintln!(
                "kill B: owned A={owned_a} B={owned_b}, B delivered {b_alerts} alerts, {} committed",
                committed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both instances never shared the work\nA:\n{}\nB:\n{}",
            log_tail(&log, 30),
            log_tail(&log_b, 30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let observed_by_b = b.scrape("sellerguard_observed_events_total").unwrap_or(0.0);
    b.kill();

    // Done when the survivor owns every partition and has committed every input offset: an offset
    // is committed only after the alerts it caused (or that hold it) are acknowledged. Counting alert
    // records instead stopped early when redeliveries made up the number.
    let deadline = Instant::now() + Duration::from_secs(240);
    while a.scrape("sellerguard_partitions_owned").unwrap_or(0.0) < 4.0 {
        assert!(
            Instant::now() < deadline,
            "the survivor never owned every partition: A owns {:?}; {}\n{}",
            a.scrape("sellerguard_partitions_owned"),
            takeover_diagnosis(&[&log], "0, 1, 2, 3"),
            log_tail(&log, 60)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_caught_up(&a, &bootstrap, &group, "events-pair", Duration::from_secs(240)).await;
    let got = tokio::task::spawn_blocking({
        let bs = bootstrap.clone();
        move || consume_to_end(&bs, "alerts-pair", Duration::from_secs(120))
    })
    .await
    .unwrap();
    let (owned, rebuilds, observed) = (
        a.scrape("sellerguard_partitions_owned").unwrap_or(0.0),
        a.scrape("sellerguard_state_rebuilds_total").unwrap_or(0.0),
        a.scrape("sellerguard_observed_events_total").unwrap_or(0.0),
    );
    assert!(a.stop().success(), "the survivor stops cleanly");

    let ids: BTreeSet<String> =
        got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let missing: Vec<_> = expected.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "lost {} of {} alerts: {missing:?}\n{}",
        missing.len(),
        expected.len(),
        log_tail(&log, 60)
    );
    assert!(extra.is_empty(), "alerts a single instance does not compute: {extra:?}\n{}", log_tail(&log, 60));
    assert_eq!(owned, 4.0, "the survivor owns every partition");
    assert!(rebuilds >= 2.0, "the survivor rebuilt state when B's partitions moved to it: {rebuilds}");
    assert!(observed > 0.0 && observed_by_b > 0.0, "each read the other's partitions for the cross-seller views");
    let n_group = got.len() - ids.len();
    eprintln!(
        "scale-out: {} alert records, {} ids == replay's ({n_group} duplicates); survivor rebuilt {rebuilds} times; {rules:?}",
        got.len(),
        ids.len()
    );
}

fn revoked(log: &std::path::Path) -> usize {
    log_text(log).matches("partitions revoked").count()
}

fn assigned(log: &std::path::Path) -> usize {
    log_text(log).matches("partitions assigned to this instance").count()
}

/// The partitions of an instance's latest assignment, as its log prints them ("[0, 1]").
fn last_assignment(log: &std::path::Path) -> String {
    let text = log_text(log);
    let line = text.lines().rfind(|l| l.contains("partitions assigned to this instance"));
    line.and_then(|l| l.split("parts=").nth(1)).unwrap_or("none").trim().to_string()
}

/// Whose side a stalled takeover is on, from the survivors' logs: the group coordinator's (its
/// latest assignment leaves partitions to no live instance: it kept a member that is gone) or the
/// service's (assigned every partition, but no rebuild for them, or a gauge that disagrees).
fn takeover_diagnosis(logs: &[&std::path::Path], all: &str) -> String {
    let last: Vec<String> = logs.iter().map(|l| last_assignment(l)).collect();
    let owned: std::collections::BTreeSet<&str> = last
        .iter()
        .flat_map(|p| p.trim_matches(|c| c == '[' || c == ']').split(", "))
        .filter(|p| !p.is_empty())
        .collect();
    let every: std::collections::BTreeSet<&str> = all.split(", ").collect();
    if owned != every {
        format!(
            "broker side: the group coordinator's latest assignments ({last:?}) leave {:?} to no live \
             instance (it kept the killed member in the group)",
            every.difference(&owned).collect::<Vec<_>>()
        )
    } else if logs.iter().any(|l| !log_text(l).contains("state rebuild")) {
        "service side: every partition is assigned to a live instance, but one never rebuilt".into()
    } else {
        "service side: every partition is assigned to a live instance and rebuilt, yet the gauges disagree".into()
    }
}

/// A member lost in the middle of a rebalance, on purpose: B is frozen (SIGSTOP), a third instance
/// joins, and once the rebalance is under way (A's partitions revoked) B is killed before it could
/// re-join. The group must go on without B, and A and C together must deliver exactly replay's
/// alert ids. (Measured with tansu: 0.3–18 s after the kill, with `max.poll.interval.ms` — the
/// rebalance timeout librdkafka sends — at 20 s or at its default 300 s alike;
/// `SELLERGUARD_MAX_POLL_MS` sets it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_lost_mid_rebalance_is_dropped_and_the_others_deliver_replays_alerts() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    for (t, n) in [("events-mid", 4), ("alerts-mid", 1), ("dlq-mid", 1)] {
        create_topic(&bootstrap, t, n).await;
    }
    let gen = GenConfig { seed: 7, sellers: 40, days: 6, fraud_share: 0.25, ..GenConfig::default() };
    let Reference { dir, lines, alert_ids: expected, .. } = replay_reference(&gen);
    let records = as_records(&lines);
    produce(&bootstrap, "events-mid", &records).await;
    let max_poll: u64 = std::env::var("SELLERGUARD_MAX_POLL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(300_000);
    let cfg = dir.path().join("sellerguard.toml");
    std::fs::write(
        &cfg,
        format!(
            "[service]\nidle_flush_ms = 2000\n[kafka]\nstanding_topic = \"\"\n[kafka.consumer]\n\
             \"session.timeout.ms\" = \"6000\"\n\"max.poll.interval.ms\" = \"{max_poll}\"\n"
        ),
    )
    .unwrap();
    let group = unique_group("sellerguard-mid");
    let logs = ["a", "b", "c"].map(|n| dir.path().join(format!("service-{n}.log")));
    let a = start_service(&cfg, &bootstrap, "mid", &group, &logs[0]);
    let b = start_service(&cfg, &bootstrap, "mid", &group, &logs[1]);
    let owned = |s: &Service| s.scrape("sellerguard_partitions_owned").unwrap_or(0.0);
    // Settled: both own a share and neither is between a revocation and its next assignment (a
    // rebalance of A and B alone can follow the first; freezing B in it would make C join a
    // rebalance already under way, which revokes nothing more on A).
    let settled = || logs[..2].iter().all(|l| assigned(l) == revoked(l) + 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !((1.0..4.0).contains(&owned(&a)) && (1.0..4.0).contains(&owned(&b)) && settled()) {
        assert!(Instant::now() < deadline, "A and B never shared the work\n{}", log_tail(&logs[1], 40));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let before = revoked(&logs[0]);
    let signal = |sig: &str, s: &Service| {
        assert!(std::process::Command::new("kill").args([sig, &s.child.id().to_string()]).status().unwrap().success())
    };
    signal("-STOP", &b);
    let c = start_service(&cfg, &bootstrap, "mid", &group, &logs[2]);
    let deadline = Instant::now() + Duration::from_secs(120);
    // Under way: A's partitions revoked; or, should a rebalance of A and B alone have begun after
    // all, C already assigned (it joined that one: B is then killed just after it instead).
    while revoked(&logs[0]) == before && assigned(&logs[2]) == 0 {
        assert!(Instant::now() < deadline, "C's joining never started a rebalance\n{}", log_tail(&logs[0], 40));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.kill();
    let killed = Instant::now();

    // Generous: a session timeout (6 s) and a few rebalances; the failure says whose side it is on.
    let bound = Duration::from_secs(120);
    loop {
        // From the assignments themselves (a gauge changes only at the rebuild that follows one):
        // every partition's latest owner is A or C, and both gauges agree.
        let diagnosis = takeover_diagnosis(&[&logs[0], &logs[2]], "0, 1, 2, 3");
        let assigned_to_live = !diagnosis.starts_with("broker side");
        if assigned_to_live && owned(&a) + owned(&c) >= 4.0 && owned(&a) >= 1.0 && owned(&c) >= 1.0 {
            break;
        }
        if killed.elapsed() >= bound {
            if !assigned_to_live {
                // tansu 0.6 sometimes keeps a member lost mid-rebalance for good (module doc): a
                // Kafka coordinator expires it after the 6 s session timeout. Nothing the service
                // does can take back partitions the coordinator gives a dead member, so the rest
                // of this test cannot run; say so loudly rather than fail CI on the broker's defect.
                eprintln!(
                    "NOT CHECKED (broker defect): {bound:?} after B died mid-rebalance, {diagnosis}\nA:\n{}\nC:\n{}",
                    log_tail(&logs[0], 12),
                    log_tail(&logs[2], 12)
                );
                return;
            }
            panic!(
                "A and C own every partition but did not take them over {bound:?} after B died mid-rebalance: \
                 A {:?}, C {:?}; {diagnosis}\nA:\n{}\nC:\n{}",
                a.scrape("sellerguard_partitions_owned"),
                c.scrape("sellerguard_partitions_owned"),
                log_tail(&logs[0], 30),
                log_tail(&logs[2], 30)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takeover = killed.elapsed();
    wait_group_caught_up(&[&a, &c], &bootstrap, &group, "events-mid", Duration::from_secs(240)).await;
    let got = tokio::task::spawn_blocking({
        let bs = bootstrap.clone();
        move || consume_to_end(&bs, "alerts-mid", Duration::from_secs(120))
    })
    .await
    .unwrap();
    assert!(a.stop().success() && c.stop().success(), "both stop cleanly");
    let ids: BTreeSet<String> =
        got.iter().map(|r| serde_json::from_slice::<Alert>(&r.payload).unwrap().alert_id).collect();
    let missing: Vec<_> = expected.difference(&ids).collect();
    let extra: Vec<_> = ids.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
    eprintln!("mid-rebalance kill: A and C own every partition {takeover:?} after B died; ids == replay's");
}

/// The diagnosis itself, on hand-written logs: partitions left to no live instance are the broker's.
#[test]
fn takeover_diagnosis_names_the_side() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[&str]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n")).unwrap();
        p
    };
    let assigned =
        |parts: &str| format!("INFO sellerguard::source: partitions assigned to this instance parts={parts}");
    let a = write("a", &[&assigned("[0, 1, 2, 3]"), "state rebuild: x", &assigned("[2]"), "state rebuild: y"]);
    let c = write("c", &[&assigned("[0, 1]"), "state rebuild: z"]);
    let d = takeover_diagnosis(&[&a, &c], "0, 1, 2, 3");
    assert!(d.starts_with("broker side") && d.contains("[\"3\"]"), "{d}");
    let c = write("c2", &[&assigned("[0, 1, 3]"), "state rebuild: z"]);
    assert!(takeover_diagnosis(&[&a, &c], "0, 1, 2, 3").contains("gauges disagree"));
    let c = write("c3", &[&assigned("[0, 1, 3]")]);
    assert!(takeover_diagnosis(&[&a, &c], "0, 1, 2, 3").contains("never rebuilt"));
}
