//! Hostile input through `sellerguard replay`: a flood of unique seller ids (a cardinality attack)
//! stays within `state.max_sellers` and a memory bound, and every eviction is counted.

mod common;

use std::io::Write;
use std::process::Command;

#[test]
fn a_flood_of_unique_sellers_is_capped_in_count_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flood.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let n = 300_000;
    for i in 0..n {
        let ts = 1_767_607_200_000i64 + i * 10;
        writeln!(
            f,
            r#"{{"event_id":"e{i}","type":"listing","seller_id":"flood-{i}","ts":{ts},"listing_id":"l","category":"c","price":10,"shipping_fee":0}}"#
        )
        .unwrap();
    }
    f.flush().unwrap();
    let cfg = dir.path().join("cap.toml");
    std::fs::write(&cfg, "[state]\nmax_sellers = 10000\n").unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(common::sellerguard_bin())
        .args(["replay", "--config", cfg.to_str().unwrap(), file.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let wall = started.elapsed();
    let summary = common::strip_ansi(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{summary}");
    let tracked: usize = summary.split(" sellers tracked").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(tracked <= 10_000, "{summary}");
    let evicted: u64 =
        summary.split("sellers evicted at the cap: ").nth(1).unwrap().lines().next().unwrap().parse().unwrap();
    assert_eq!(evicted as usize + tracked, n as usize, "every seller either tracked or counted as evicted");
    let peak: u64 = summary.split("peak memory: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    // Uncapped, these 300 000 sellers take over 1 GiB; capped at 10 000 they must stay small.
    assert!(peak < 400, "peak {peak} MiB\n{summary}");
    // The warning: every eviction batch (a tenth of the cap) is either logged or counted as held
    // back on the next line; lines come at most once per 10 s of wall clock (the limiter's
    // interval), however long a debug build takes.
    let batch = 10_000 / 10;
    assert_eq!(evicted % batch, 0, "evictions come in batches of {batch}: {evicted}");
    let field = |line: &str, name: &str| -> u64 {
        let at = line.find(&format!(" {name}=")).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len() + 2;
        line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let warnings: Vec<&str> = summary.lines().filter(|l| l.contains("seller cap reached")).collect();
    assert!(!warnings.is_empty(), "the cap is reported: {summary}");
    let mut accounted = 0;
    for w in &warnings {
        assert_eq!(field(w, "evicted"), batch, "{w}");
        assert_eq!(field(w, "max_sellers"), 10_000, "{w}");
        // This line's batch, and those held back since the previous line.
        accounted += batch * (1 + field(w, "similar_held_back"));
        assert_eq!(field(w, "evicted_total"), accounted, "every batch before this line is accounted for: {w}");
    }
    assert_eq!(field(warnings[0], "similar_held_back"), 0, "the first batch is logged: {}", warnings[0]);
    // Batches after the last line are held back for a line that never comes: counted, not logged.
    assert!(accounted <= evicted, "{accounted} logged of {evicted}");
    let lines = warnings.len() as u64;
    assert!(
        (lines - 1) * 10 <= wall.as_secs(),
        "{lines} warnings in {wall:?}: at most one per 10 s\n{}",
        warnings.join("\n")
    );
}

/// A million mutated events through the decoder: no panic, and every one is either an event or a
/// rejection with a reason.
#[test]
fn a_million_mutated_events_are_all_accounted_for() {
    use sellerguard::decode::{decode, DecodeLimits};
    let mut lines = Vec::new();
    let cfg = sellerguard::gen::GenConfig { sellers: 20, days: 3, ..Default::default() };
    sellerguard::gen::generate(&cfg, &mut |_, l| lines.push(l.as_bytes().to_vec())).unwrap();
    let limits = DecodeLimits::default();
    let (mut ok, mut rejected) = (0u64, std::collections::BTreeMap::new());
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let n = 1_000_000u64;
    for i in 0..n {
        let mut b = lines[i as usize % lines.len()].clone();
        // One to three random byte changes: flips, deletions and insertions.
        for _ in 0..1 + (x % 3) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x % b.len().max(1) as u64) as usize;
            match (x >> 40) % 3 {
                0 => b[at] = (x >> 48) as u8,
                1 => {
                    b.remove(at);
                }
                _ => b.insert(at, (x >> 48) as u8),
            }
            if b.is_empty() {
                b.push(b'{');
            }
        }
        match decode(&b, &limits) {
            Ok(_) => ok += 1,
            Err(e) => *rejected.entry(e.reason.as_str()).or_insert(0u64) += 1,
        }
    }
    let rejected_total: u64 = rejected.values().sum();
    assert_eq!(ok + rejected_total, n);
    assert!(rejected_total > n / 2, "{ok} accepted, {rejected:?}");
    assert!(rejected.len() >= 5, "many distinct reasons: {rejected:?}");
}
