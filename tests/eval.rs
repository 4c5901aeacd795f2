//! `sellerguard eval` as a user runs it: on default generated traffic every one of the nine rule
//! families meets the `[eval]` targets (exit 0); a run below them exits non-zero.

mod common;

use std::process::{Command, Output};

use sellerguard::rules::FAMILIES;

fn eval(args: &[&str]) -> (Output, String) {
    let out = Command::new(common::sellerguard_bin()).arg("eval").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (out, stdout)
}

/// The table row of `family`, split on whitespace.
fn row<'a>(table: &'a str, family: &str) -> Vec<&'a str> {
    let line = table.lines().find(|l| l.split_whitespace().next() == Some(family));
    line.unwrap_or_else(|| panic!("no {family} row in\n{table}")).split_whitespace().collect()
}

#[test]
fn default_traffic_meets_the_targets_in_every_family() {
    let (out, table) = eval(&[]);
    assert!(out.status.success(), "eval failed:\n{table}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("PASS"), "{table}");
    for family in FAMILIES {
        // family labelled caught recall honest(n/of) (share) precision delay least…
        let r = row(&table, family);
        let labelled: usize = r[1].parse().unwrap();
        let recall: f64 = r[3].parse().unwrap();
        let (flagged, honest) = r[4].split_once('/').unwrap();
        let (flagged, honest): (f64, f64) = (flagged.parse().unwrap(), honest.parse().unwrap());
        assert!(labelled >= 1, "{family}: the default traffic labels every family\n{table}");
        assert!(recall >= 0.95, "{family}: recall {recall}\n{table}");
        assert!(flagged / honest <= 0.01, "{family}: {flagged} of {honest} honest sellers flagged\n{table}");
        assert!(r[7].ends_with('h'), "{family}: a median delay for the caught sellers\n{table}");
    }
}

#[test]
fn sweep_prints_every_family_at_every_intensity() {
    // Default traffic: with fewer than 100 honest sellers one chance flag would exceed the 1 %.
    let (out, table) = eval(&["--sweep"]);
    assert!(out.status.success(), "{table}");
    for family in FAMILIES {
        let rows: Vec<&str> = table.lines().filter(|l| l.split_whitespace().next() == Some(family)).collect();
        let intensities: Vec<&str> = rows.iter().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
        assert_eq!(intensities, ["1.0", "0.8", "0.6", "0.4", "0.2"], "{table}");
    }
    // Subtler fraud is harder to catch: summed over families, recall falls from 1.0 to 0.2.
    let recall_at = |i: &str| -> f64 {
        let rows = table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>());
        rows.filter(|r| r.len() > 2 && r[1] == i).filter_map(|r| r[2].parse::<f64>().ok()).sum()
    };
    assert!(recall_at("0.2") < recall_at("1.0") - 1.0, "{table}");
}

#[test]
fn a_family_below_the_targets_exits_non_zero() {
    // One labelled late dispatcher that never misses a deadline, and an honest seller.
    let dir = tempfile::tempdir().unwrap();
    let (events, labels) = (dir.path().join("events.jsonl"), dir.path().join("labels.jsonl"));
    let listing = |seller: &str| {
        format!(
            r#"{{"event_id":"{seller}-l","type":"listing","seller_id":"{seller}","ts":"2026-01-05T10:00:00Z","listing_id":"L1","category":"toys","price":12.5,"shipping_fee":2.0}}"#
        )
    };
    std::fs::write(&events, format!("{}\n{}\n", listing("s1"), listing("s2"))).unwrap();
    let label = r#"{"seller_id":"s1","family":"late_dispatch","since":"2026-01-05T10:00:00.000Z"}"#;
    std::fs::write(&labels, format!("{label}\n")).unwrap();
    let (out, table) = eval(&["--events-file", events.to_str().unwrap(), "--labels", labels.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("FAIL") && table.contains("late_dispatch: recall 0.000 < 0.95"), "{table}");
    assert_eq!(row(&table, "late_dispatch")[1..4], ["1", "0", "0.000"], "{table}");

    // A labels file without its events file is a usage error, not a silent generated run.
    let (out, _) = eval(&["--labels", labels.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}
