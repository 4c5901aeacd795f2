//! `sellerguard bench` end to end on a real broker (tansu, started by the command itself): a small
//! run must finish, deliver through Kafka exactly the alerts replay computes (the command checks
//! that itself and fails otherwise), and print every row of its table with real figures.
//! Behaviour only: counts, pacing and the table's shape; the figures' size (and whether a debug
//! build on a shared machine keeps up) is for BENCHMARKS.md, not for a test.

mod common;

use std::process::Command;

/// The cells of the table row whose first cell starts with `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.trim_start_matches("| ").starts_with(name))
        .unwrap_or_else(|| panic!("no row `{name}` in:\n{table}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

fn number(cell: &str) -> f64 {
    cell.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not a number: `{cell}`"))
}

#[test]
fn bench_runs_end_to_end_and_prints_one_table() {
    let out = Command::new(common::sellerguard_bin())
        .args(["bench", "--events", "20000", "--sellers", "300", "--duration", "2", "--repeat", "1"])
        .args(["--live-rate", "1000", "--loads", "50"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");

    assert!(stdout.starts_with("sellerguard bench · "), "{stdout}");
    assert!(stdout.contains("tansu"), "the header names the broker: {stdout}");
    // The shape: one table, 11 columns, a row per run (3 backlog rows, the live maximum, the hop,
    // one per load), each with as many cells as the header.
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 2 + 6, "header, separator and six rows: {stdout}");
    for l in &table {
        assert_eq!(l.trim_matches('|').split('|').count(), 11, "11 cells: {l}");
    }
    let produce = row(&stdout, "produce the backlog");
    let plain = row(&stdout, "plain consumer");
    let service = row(&stdout, "sellerguard, backlog");
    let events = number(plain[1]);
    assert!(events >= 20_000.0, "the backlog is the generated traffic: {stdout}");
    assert_eq!(number(produce[1]), events, "the backlog produced is the backlog read");
    assert_eq!(number(service[1]), events, "the service read the same backlog");
    for r in [&produce, &plain, &service] {
        assert!(number(r[2]) > 0.0, "a rate for {}", r[0]);
    }
    assert!(number(service[4]) > 0.0, "the backlog has alerts (equal to replay's, or the command fails)");
    let max = row(&stdout, "live maximum");
    assert!(max[0].contains("given by --live-rate") && number(max[2]) == 1000.0, "{max:?}");

    // One hop through the broker alone, at half the live maximum for 2 s: every published event
    // seen and timed, latencies ordered; paced, never above the asked rate.
    let hop = row(&stdout, "broker alone");
    let sent = number(hop[1]);
    assert_eq!(sent, 1000.0, "500 events/s for 2 s: {hop:?}");
    assert_eq!(number(hop[9]), sent, "every published event was seen and timed: {stdout}");
    assert!(0.0 < number(hop[2]) && number(hop[2]) <= 500.0 * 1.01, "paced at most at the asked rate: {hop:?}");
    let (p50, p99, max) = (number(hop[5]), number(hop[6]), number(hop[8]));
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{hop:?}");

    // The live run at 50 %: whether it kept up is the machine's business (a debug build on a busy
    // machine may fall behind: then the row says so); its figures are not. Every event published
    // and read, paced at most at the asked rate, every delivered alert seen by the reader and
    // accounted for, latencies ordered.
    let live = row(&stdout, "sellerguard, live at 50 %");
    assert!(!live[0].contains("did not catch up"), "the run caught up and has figures: {live:?}");
    assert_eq!(number(live[1]), 1000.0, "500 events/s for 2 s: {live:?}");
    assert!(0.0 < number(live[2]) && number(live[2]) <= 500.0 * 1.01, "paced at most at the asked rate: {live:?}");
    // (Two seconds of event time may hold no alert: the count is checked, not its size.)
    let alerts = number(live[4]);
    let samples = live[9].split_whitespace().collect::<Vec<_>>();
    let timed = number(samples[0]);
    let timers: f64 = samples.get(1).and_then(|s| s.trim_start_matches("(+").parse().ok()).unwrap_or(0.0);
    assert!(timed + timers >= alerts, "alerts seen and timed: {live:?}");
    let (p50, p99, max) = (number(live[5]), number(live[6]), number(live[8]));
    assert!(timed == 0.0 || (0.0 < p50 && p50 <= p99 && p99 <= max), "{live:?}");
}
