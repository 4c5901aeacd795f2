use super::*;

const OLD: Option<Millis> = Some(T0 - 400 * D);

/// A steady honest seller: `days` days of 4 orders a day, shipped, delivered, reviewed.
fn steady(k: &mut Kit, seller: &str, days: i64, rating: u8) {
    for d in 0..days {
        for j in 0..4 {
            let t = T0 + d * D + j * 3 * H;
            let id = format!("{seller}-{d}-{j}");
            let buyer = format!("b{d}-{j}");
            k.push(order(seller, t, O { order: &id, buyer: &buyer, buyer_created_at: OLD, ..O::default() }));
            k.push(shipped(seller, t + 10 * H, &id, "china_post", &s10((d * 4 + j) as u32), "standard"));
            k.push(scan(seller, t + 20 * H, &id, ScanStatus::Accepted));
            k.push(delivered(seller, t + 3 * D, &id));
            k.push(review(seller, t + 4 * D, &id, &buyer, rating, OLD));
        }
    }
    k.push(listing("z", T0 + (days + 5) * D, "l", "misc", 1.0));
    k.finish();
}

#[test]
fn standing_reports_rates_and_good_seller_eligibility() {
    let mut k = Kit::only("none");
    steady(&mut k, "s", 200, 5);
    let last = k.standing.iter().rev().find(|s| s.seller_id == "s").expect("standing published");
    assert_eq!(last.on_time_dispatch_rate, Some(1.0));
    assert_eq!(last.valid_tracking_rate, None, "tracking validity comes from fake_shipment, which is off here");
    assert_eq!(last.positive_feedback_rate, Some(1.0));
    assert!(last.reviews >= 100 && last.orders_due >= 100);
    assert!(last.good_seller, "{last:?}");
    // Versions grow one by one; updates are spaced by at least an hour of event time.
    let mine: Vec<_> = k.standing.iter().filter(|s| s.seller_id == "s").collect();
    assert!(mine.windows(2).all(|w| w[1].version == w[0].version + 1));
    assert!(mine.len() < 400, "only material changes are published: {}", mine.len());
}

#[test]
fn new_or_poorly_rated_sellers_are_not_good_sellers() {
    let mut k = Kit::only("none");
    steady(&mut k, "young", 20, 5);
    let young = k.standing.iter().rev().find(|s| s.seller_id == "young").unwrap();
    assert!(!young.good_seller);
    assert!(young.good_seller_unmet.iter().any(|u| u.contains("days")), "{young:?}");

    let mut k = Kit::only("none");
    steady(&mut k, "meh", 200, 3);
    let meh = k.standing.iter().rev().find(|s| s.seller_id == "meh").unwrap();
    assert_eq!(meh.positive_feedback_rate, Some(0.0));
    assert!(meh.good_seller_unmet.iter().any(|u| u.contains("positive feedback")), "{meh:?}");
}

#[test]
fn a_high_severity_alert_is_an_open_violation() {
    let mut k = Kit::only("small_parcel_restriction");
    steady(&mut k, "s", 200, 5);
    let t = T0 + 206 * D;
    k.push(dispute("s", t, "s-1-1", DisputeReason::ProtectionExpired));
    k.push(dispute("s", t + D, "s-1-2", DisputeReason::ProtectionExpired));
    k.push(listing("z", t + 3 * D, "l", "misc", 1.0));
    k.finish();
    let last = k.standing.iter().rev().find(|s| s.seller_id == "s").unwrap();
    assert_eq!(last.open_violations.get("small_parcel_restriction"), Some(&1));
    assert!(!last.good_seller);
    assert!(last.good_seller_unmet.iter().any(|u| u.contains("high-severity")));
}
