use super::*;

/// Category prices (median $40) and peer fees: standard ≤ 500 g around $5, express around $18,
/// standard 2–5 kg around $22; 30 orders each from other sellers.
fn market(k: &mut Kit) {
    for i in 0..40 {
        k.push(listing(&format!("m{}", i % 10), T0 + i * 60_000, &format!("ml{i}"), "phones", 30.0 + (i % 21) as f64));
    }
    for i in 0..30 {
        let t = T0 + H + i * 60_000;
        let s = format!("m{}", i % 10);
        let j = (i % 5) as f64;
        k.push(order(&s, t, O { order: &format!("std{i}"), fee: 4.0 + j * 0.5, ..O::default() }));
        k.push(order(&s, t, O { order: &format!("exp{i}"), fee: 16.0 + j, method: "express", ..O::default() }));
        k.push(order(&s, t, O { order: &format!("hvy{i}"), fee: 20.0 + j, grams: Some(4000), ..O::default() }));
    }
}

#[allow(clippy::too_many_arguments)]
fn fee_order(k: &mut Kit, seller: &str, t: Millis, id: &str, price: f64, fee: f64, method: &str, grams: u32) {
    k.push(order(seller, t, O { order: id, price, fee, method, grams: Some(grams), ..O::default() }));
}

#[test]
fn express_free_and_heavy_parcels_are_honest() {
    let mut k = Kit::only("shipping_fee_inflation");
    market(&mut k);
    let t = T0 + D;
    fee_order(&mut k, "h", t, "a", 40.0, 21.0, "express", 300);
    fee_order(&mut k, "h", t + H, "b", 40.0, 0.0, "standard", 300);
    fee_order(&mut k, "h", t + 2 * H, "c", 40.0, 26.0, "standard", 4500);
    fee_order(&mut k, "h", t + 3 * H, "d", 40.0, 24.0, "express", 450);
    assert!(k.rules_for("h").is_empty(), "{:?}", k.alerts);
}

#[test]
fn two_inflated_fees_in_a_week_alert() {
    let mut k = Kit::only("shipping_fee_inflation");
    market(&mut k);
    let t = T0 + D;
    fee_order(&mut k, "f", t, "a", 40.0, 20.0, "standard", 300);
    assert!(k.rules_for("f").is_empty(), "one order is not a pattern");
    fee_order(&mut k, "f", t + 6 * D, "b", 40.0, 30.0, "standard", 300);
    assert_eq!(k.rules_for("f"), ["shipping_fee_inflation"]);
    let a = &k.alerts[0];
    assert_eq!(a.evidence["flagged_orders"], 2);
    let o = &a.evidence["orders"][1];
    assert_eq!(o["signal"], "excessive_fee");
    assert_eq!(o["weight_band"], "251–500g");
    let peer = o["peer_median_fee"].as_f64().unwrap();
    assert!((peer - 5.0).abs() < 0.2, "{peer}");
}

#[test]
fn a_week_apart_is_two_separate_incidents() {
    let mut k = Kit::only("shipping_fee_inflation");
    market(&mut k);
    fee_order(&mut k, "f", T0 + D, "a", 40.0, 20.0, "standard", 300);
    fee_order(&mut k, "f", T0 + 8 * D + H, "b", 40.0, 20.0, "standard", 300);
    assert!(k.rules_for("f").is_empty());
}

#[test]
fn price_moved_into_shipping() {
    let mut k = Kit::only("shipping_fee_inflation");
    market(&mut k);
    let t = T0 + D;
    // $5 item (12.5 % of the $40 median) with a $9 fee: under 3× the peer fee, but above the item
    // price and 1.5× the peer fee.
    fee_order(&mut k, "p", t, "a", 5.0, 9.0, "standard", 300);
    fee_order(&mut k, "p", t + H, "b", 5.0, 9.0, "standard", 300);
    assert_eq!(k.rules_for("p"), ["shipping_fee_inflation"]);
    assert_eq!(k.alerts[0].evidence["orders"][0]["signal"], "price_in_shipping");
    // A cheap item with an ordinary fee is not this.
    let mut k = Kit::only("shipping_fee_inflation");
    market(&mut k);
    fee_order(&mut k, "p", t, "a", 5.0, 6.0, "standard", 300);
    fee_order(&mut k, "p", t + H, "b", 5.0, 6.0, "standard", 300);
    assert!(k.rules_for("p").is_empty());
}

#[test]
fn no_verdict_below_twenty_fee_samples() {
    let mut k = Kit::only("shipping_fee_inflation");
    for i in 0..19 {
        k.push(order("m", T0 + i * 60_000, O { order: &format!("o{i}"), fee: 5.0, ..O::default() }));
    }
    fee_order(&mut k, "f", T0 + H, "a", 40.0, 50.0, "standard", 300);
    fee_order(&mut k, "f", T0 + 2 * H, "b", 40.0, 50.0, "standard", 300);
    assert!(k.rules_for("f").is_empty());
}

#[test]
fn a_long_route_is_compared_with_the_same_route() {
    // Peers: 30 short-route parcels at ~$5 and 30 long-route parcels at ~$18, same method and band.
    let mut k = Kit::only("shipping_fee_inflation");
    for i in 0..30 {
        let j = (i % 5) as f64;
        let t = T0 + i * 60_000;
        k.push(order("m", t, O { order: &format!("s{i}"), fee: 4.0 + j * 0.5, route: Some("SP>SP"), ..O::default() }));
        k.push(order("m", t, O { order: &format!("l{i}"), fee: 16.0 + j, route: Some("SP>AM"), ..O::default() }));
    }
    // An honest seller shipping far: $19 is 4× the short-route fee, ordinary for the long route.
    for (i, fee) in [19.0, 20.0].iter().enumerate() {
        k.push(order(
            "h",
            T0 + D + i as i64 * H,
            O { order: &format!("h{i}"), fee: *fee, route: Some("SP>AM"), ..O::default() },
        ));
    }
    assert!(k.rules_for("h").is_empty(), "{:?}", k.alerts);
    // The same fees on the short route are inflated.
    for (i, fee) in [19.0, 20.0].iter().enumerate() {
        k.push(order(
            "f",
            T0 + D + i as i64 * H,
            O { order: &format!("f{i}"), fee: *fee, route: Some("SP>SP"), ..O::default() },
        ));
    }
    assert_eq!(k.rules_for("f"), ["shipping_fee_inflation"]);
    assert_eq!(k.alerts.iter().find(|a| a.seller_id == "f").unwrap().evidence["orders"][0]["route"], "SP>SP");
}
