//! The rule lifecycle: hot reload keeps state, shadow rules stay out of production outputs,
//! snoozes hold back exactly what they name.

use super::*;
use crate::alert::Severity;

fn expired(seller: &str, ts: Millis, order: &str) -> Event {
    dispute(seller, ts, order, DisputeReason::ProtectionExpired)
}

fn parcels(min: u32) -> Config {
    let mut c = only("small_parcel_restriction");
    c.small_parcel_restriction.min_disputes = min;
    c
}

#[test]
fn a_reload_applies_new_thresholds_to_the_windows_already_built() {
    let mut k = Kit::with(parcels(4));
    let v1 = k.engine().config_version().to_string();
    k.push(expired("s", T0, "o1"));
    k.push(expired("s", T0 + D, "o2"));
    k.finish();
    assert!(k.alerts.is_empty());
    let r = k.reload(&parcels(3)).expect("a threshold change reloads");
    assert_eq!(r.previous_version, v1);
    assert_ne!(r.version, v1, "a different config is a different version");
    assert!(r.restart_pending.is_empty());
    k.push(expired("s", T0 + 2 * D, "o3"));
    k.finish();
    // Three in the window: two of them arrived before the reload.
    assert_eq!(k.alerts.len(), 1, "{:?}", k.alerts);
    assert_eq!(k.alerts[0].config_version, r.version);
    assert_eq!(
        k.alerts[0].evidence["protection_expired_disputes"].as_array().map(Vec::len),
        Some(3),
        "{}",
        k.alerts[0].evidence
    );

    // The same third dispute alone, on a fresh engine at 3, is below the threshold.
    let mut fresh = Kit::with(parcels(3));
    fresh.push(expired("s", T0 + 2 * D, "o3"));
    assert!(fresh.finish().is_empty());
    assert_eq!(fresh.engine().config_version(), r.version, "same settings, same version");
}

#[test]
fn a_reload_that_changes_a_window_or_is_invalid_is_refused_and_changes_nothing() {
    let mut k = Kit::with(parcels(3));
    let v1 = k.engine().config_version().to_string();
    let mut longer = parcels(2);
    longer.small_parcel_restriction.window_hours = 1440.0;
    let err = k.reload(&longer).unwrap_err().to_string();
    assert!(err.contains("small_parcel_restriction.window_hours"), "{err}");
    let mut bad = parcels(2);
    bad.alerts.shadow = vec!["no_such_rule".into()];
    let err = k.reload(&bad).unwrap_err().to_string();
    assert!(err.contains("alerts.shadow[0]"), "{err}");
    let mut snoozed = parcels(2);
    snoozed.alerts.snooze_file = "/nonexistent/snoozes.jsonl".into();
    assert!(k.reload(&snoozed).unwrap_err().to_string().contains("alerts.snooze_file"));
    assert_eq!(k.engine().config_version(), v1);
    // Still at 3: two disputes do not alert.
    k.push(expired("s", T0, "o1"));
    k.push(expired("s", T0 + D, "o2"));
    assert!(k.finish().is_empty(), "{:?}", k.alerts);
    // Restart-only sections are kept as running and reported.
    let mut moved = parcels(3);
    moved.kafka.brokers = "elsewhere:9092".into();
    let r = k.reload(&moved).unwrap();
    assert_eq!(r.restart_pending, ["kafka"]);
    assert_eq!(k.engine().config().kafka.brokers, Config::default().kafka.brokers);
}

#[test]
fn shadow_alerts_are_marked_kept_out_of_standing_and_a_rule_goes_live_at_once() {
    let mut cfg = parcels(2);
    cfg.alerts.shadow = vec!["small_parcel_restriction".into()];
    let mut k = Kit::with(cfg);
    k.push(expired("s", T0, "o1"));
    k.push(expired("s", T0 + D, "o2"));
    k.finish();
    assert_eq!(k.alerts.len(), 1);
    assert!(k.alerts[0].shadow);
    assert_eq!(k.engine().stats.shadow_by_rule.get("small_parcel_restriction"), Some(&1));
    assert!(k.engine().stats.alerts_by_rule.is_empty(), "not part of the feed");
    let last = k.standing.last().expect("standing is published");
    assert!(last.open_violations.is_empty(), "a shadow finding is not a violation: {last:?}");

    // Live now: the next dispute alerts although a shadow alert went out a day ago (within the
    // cooldown), and it counts against the seller.
    k.reload(&parcels(2)).unwrap();
    k.push(expired("s", T0 + 2 * D, "o3"));
    k.finish();
    let live: Vec<_> = k.alerts.iter().filter(|a| !a.shadow).collect();
    assert_eq!(live.len(), 1, "{:?}", k.alerts);
    assert!(live[0].severity >= Severity::Medium);
    let last = k.standing.last().unwrap();
    assert_eq!(last.open_violations.get("small_parcel_restriction"), Some(&1));
}

#[test]
fn a_snooze_holds_back_its_seller_and_rule_until_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snoozes.jsonl");
    let until = crate::alert::rfc3339(T0 + 10 * D);
    std::fs::write(
        &path,
        format!("{{\"seller_id\":\"held\",\"rule\":\"small_parcel_restriction\",\"until\":\"{until}\",\"reason\":\"case 1\"}}\n"),
    )
    .unwrap();
    let mut cfg = parcels(2);
    cfg.alerts.snooze_file = path.display().to_string();
    let mut k = Kit::with(cfg);
    for seller in ["held", "other"] {
        k.push(expired(seller, T0, &format!("{seller}-1")));
        k.push(expired(seller, T0 + D, &format!("{seller}-2")));
    }
    k.finish();
    let sellers: Vec<_> = k.alerts.iter().map(|a| a.seller_id.as_str()).collect();
    assert_eq!(sellers, ["other"]);
    assert_eq!(k.engine().stats.snoozed_by_rule.get("small_parcel_restriction"), Some(&1));
    // After `until` the same seller alerts again (the cooldown has passed by then).
    k.push(expired("held", T0 + 12 * D, "held-3"));
    k.finish();
    assert_eq!(k.alerts.iter().filter(|a| a.seller_id == "held").count(), 1, "{:?}", k.alerts);
}
