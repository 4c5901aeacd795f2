use super::*;
use crate::alert::Severity;

/// `n` orders by `seller`, each shipped 10 h later with a valid S10 number and scanned 20 h later.
fn honest_orders(k: &mut Kit, seller: &str, start: Millis, n: u32, serial0: u32) {
    for i in 0..n {
        let t = start + i as i64 * 10 * 60_000;
        let id = format!("{seller}-o{i}");
        k.push(order(seller, t, O { order: &id, ..O::default() }));
        k.push(shipped(seller, t + 10 * H, &id, "china_post", &s10(serial0 + i), "standard"));
        k.push(scan(seller, t + 30 * H, &id, ScanStatus::Accepted));
    }
}

fn bad_shipment(k: &mut Kit, seller: &str, t: Millis, id: &str, number: &str) {
    k.push(order(seller, t, O { order: id, ..O::default() }));
    k.push(shipped(seller, t + H, id, "china_post", number, "standard"));
    k.push(scan(seller, t + 5 * H, id, ScanStatus::Accepted));
}

#[test]
fn honest_shipping_never_alerts() {
    let mut k = Kit::only("fake_shipment");
    honest_orders(&mut k, "s", T0, 200, 1);
    // Spaces and lower case in a real number are a typing habit, not fraud.
    k.push(order("s", T0 + 3 * D, O { order: "typed", ..O::default() }));
    k.push(shipped("s", T0 + 3 * D + H, "typed", "China_Post", "rb 123456785 gb", "Standard"));
    k.push(scan("s", T0 + 3 * D + 2 * H, "typed", ScanStatus::Accepted));
    assert!(k.rules_for("s").is_empty(), "{:?}", k.alerts);
}

#[test]
fn invalid_tracking_at_the_ten_percent_boundary() {
    // 18 valid + 2 invalid = 2 of 20 = exactly 10 %: alert.
    let mut k = Kit::only("fake_shipment");
    honest_orders(&mut k, "s", T0, 18, 100);
    bad_shipment(&mut k, "s", T0 + 2 * D, "x1", "RB123456786GB"); // check digit changed
    bad_shipment(&mut k, "s", T0 + 2 * D + H, "x2", "LP12345");
    assert_eq!(k.rules_for("s"), ["fake_shipment"]);
    let a = &k.alerts[0];
    assert_eq!(a.evidence["flagged_shipments"], 2);
    assert_eq!(a.evidence["shipments"], 20);
    assert_eq!(a.evidence["signals"]["invalid_tracking"], 2);
    let verdicts: Vec<_> = a.evidence["shipments_flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tracking_verdict"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(verdicts, ["bad_check_digit", "bad_format"]);
    assert!(a.severity >= Severity::Medium);
    assert!(a.message.contains("2 of 20"), "{}", a.message);

    // 19 valid + 2 invalid = 9.5 %: no alert.
    let mut k = Kit::only("fake_shipment");
    honest_orders(&mut k, "s", T0, 19, 100);
    bad_shipment(&mut k, "s", T0 + 2 * D, "x1", "RB123456786GB");
    bad_shipment(&mut k, "s", T0 + 2 * D + H, "x2", "LP12345");
    assert!(k.rules_for("s").is_empty());
}

#[test]
fn unknown_carrier_counts_as_invalid() {
    let mut k = Kit::only("fake_shipment");
    bad_shipment(&mut k, "s", T0, "x1", "FS000001");
    let mut e = shipped("s", T0 + 2 * H, "x2", "fastship", "FS000002", "standard");
    e.event_id = "ship-x2".into();
    k.push(order("s", T0 + H, O { order: "x2", ..O::default() }));
    k.push(e);
    k.push(scan("s", T0 + 3 * H, "x2", ScanStatus::Accepted));
    assert_eq!(k.rules_for("s"), ["fake_shipment"]);
    let flagged = k.alerts[0].evidence["shipments_flagged"].as_array().unwrap().clone();
    assert!(flagged.iter().any(|f| f["tracking_verdict"] == "unknown_carrier"));
}

#[test]
fn reused_tracking_number_across_orders_and_sellers() {
    let mut k = Kit::only("fake_shipment");
    let n = s10(777);
    bad_shipment(&mut k, "s", T0, "a", &n);
    bad_shipment(&mut k, "s", T0 + D, "b", &n);
    bad_shipment(&mut k, "other", T0 + 2 * D, "c", &n);
    bad_shipment(&mut k, "s", T0 + 3 * D, "d", &n);
    let a = k.alerts.iter().find(|a| a.seller_id == "s").expect("seller s alerted");
    assert_eq!(a.evidence["signals"]["reused_tracking"], 2);
    let last = a.evidence["shipments_flagged"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["reused_from"]["seller_id"], "other");
    // The same number 31 days later is outside the 30-day reuse window.
    let mut k = Kit::only("fake_shipment");
    bad_shipment(&mut k, "s", T0, "a", &n);
    bad_shipment(&mut k, "s", T0 + 31 * D, "b", &n);
    bad_shipment(&mut k, "s", T0 + 62 * D, "c", &n);
    assert!(k.rules_for("s").is_empty());
}

#[test]
fn no_scan_within_72_hours_is_an_event_time_timer() {
    let mut k = Kit::only("fake_shipment");
    for (i, id) in ["a", "b"].iter().enumerate() {
        let t = T0 + i as i64 * H;
        k.push(order("s", t, O { order: id, ..O::default() }));
        k.push(shipped("s", t + H, id, "china_post", &s10(i as u32 + 1), "standard"));
    }
    // A scan just inside the deadline for a third order keeps it clean.
    k.push(order("s", T0, O { order: "c", ..O::default() }));
    k.push(shipped("s", T0 + H, "c", "china_post", &s10(9), "standard"));
    k.push(scan("s", T0 + 73 * H - 1, "c", ScanStatus::InTransit));
    // Time moves on past both deadlines (and the lateness bound) with an unrelated event.
    k.push(listing("z", T0 + 80 * H, "l", "misc", 5.0));
    k.finish();
    assert_eq!(k.alerts.len(), 1, "{:?}", k.alerts);
    let a = &k.alerts[0];
    assert_eq!(a.rule, "fake_shipment");
    assert_eq!(a.evidence["signals"]["no_scan"], 2);
    assert_eq!(a.evidence["shipments"], 3);
    // The alert is stamped at the second deadline: shipped at T0+2h, due 72 h later.
    assert_eq!(a.event_time, crate::alert::rfc3339(T0 + 74 * H));
}

#[test]
fn method_mismatch_against_the_buyers_choice() {
    let mut k = Kit::only("fake_shipment");
    for (i, id) in ["a", "b"].iter().enumerate() {
        let t = T0 + i as i64 * H;
        k.push(order("s", t, O { order: id, method: "express", ..O::default() }));
        k.push(shipped("s", t + H, id, "china_post", &s10(i as u32 + 1), "economy"));
        k.push(scan("s", t + 2 * H, id, ScanStatus::Accepted));
    }
    assert_eq!(k.rules_for("s"), ["fake_shipment"]);
    let f = &k.alerts[0].evidence["shipments_flagged"][0];
    assert_eq!(f["method_chosen"], "express");
    assert_eq!(f["method_used"], "economy");
}

#[test]
fn cooldown_suppresses_repeats_but_not_a_rise_in_severity() {
    let mut k = Kit::only("fake_shipment");
    honest_orders(&mut k, "s", T0, 18, 100);
    bad_shipment(&mut k, "s", T0 + 2 * D, "x1", "bad1");
    bad_shipment(&mut k, "s", T0 + 2 * D + H, "x2", "bad2");
    bad_shipment(&mut k, "s", T0 + 2 * D + 2 * H, "x3", "bad3");
    k.finish();
    assert_eq!(k.alerts.len(), 1, "third flag at the same severity is within the cooldown");
    for i in 4..=12 {
        bad_shipment(&mut k, "s", T0 + 2 * D + i * H, &format!("x{i}"), "bad");
    }
    k.finish();
    assert!(k.alerts.len() >= 2, "severity rose, so a new alert goes out");
    assert!(k.alerts.last().unwrap().severity > k.alerts[0].severity);
    let ids: std::collections::HashSet<_> = k.alerts.iter().map(|a| &a.alert_id).collect();
    assert_eq!(ids.len(), k.alerts.len());
}

#[test]
fn per_rule_cooldown_overrides_the_default() {
    let mut cfg = crate::config::Config::default();
    cfg.rating_manipulation.enabled = false;
    cfg.alerts.cooldown_hours_by_rule.insert("fake_shipment".into(), 0.0);
    let mut k = Kit::with(cfg);
    bad_shipment(&mut k, "s", T0, "x1", "bad1");
    bad_shipment(&mut k, "s", T0 + H, "x2", "bad2");
    bad_shipment(&mut k, "s", T0 + 2 * H, "x3", "bad3");
    let n = k.alerts.iter().filter(|a| a.rule == "fake_shipment").count();
    assert_eq!(n, 2, "with no cooldown every new flagged shipment re-alerts");
    let err =
        crate::config::Config::from_toml("[alerts.cooldown_hours_by_rule]\n\"fake_shipmnt\" = 1.0\n").unwrap_err();
    assert!(err.to_string().contains("fake_shipmnt"), "{err}");
}
