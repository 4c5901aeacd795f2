//! `sellerguard demo` as a newcomer runs it: zero set-up (in-process mock Kafka cluster), and the
//! printed report holds alerts of all nine rule families and the dead-lettered malformed input.

mod common;

use std::process::Command;

#[test]
fn demo_prints_alerts_of_every_family() {
    let out = Command::new(common::sellerguard_bin())
        .args(["demo", "--sellers", "80", "--days", "9", "--show", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for family in sellerguard::eval::FAMILIES {
        let header = format!("== {family}: ");
        let line =
            stdout.lines().find(|l| l.starts_with(&header)).unwrap_or_else(|| panic!("no {family} alerts:\n{stdout}"));
        let n: u64 = line[header.len()..].split_whitespace().next().unwrap().parse().unwrap();
        assert!(n > 0, "{line}");
    }
    assert!(stdout.contains("3 malformed messages dead-lettered"), "{stdout}");

    // Streaming through Kafka gives what a replay of the same traffic gives.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.jsonl");
    let gen = Command::new(common::sellerguard_bin())
        .args(["gen", "--sellers", "80", "--days", "9", "--out", file.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(gen.success());
    let replay = Command::new(common::sellerguard_bin()).args(["replay", file.to_str().unwrap()]).output().unwrap();
    let replayed = String::from_utf8(replay.stdout).unwrap().lines().count();
    let summary = stdout.lines().find(|l| l.contains(" alerts out")).expect("summary line");
    let streamed: usize = summary.split(" alerts out").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(streamed, replayed, "{summary}");
}
