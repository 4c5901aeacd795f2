use super::*;
use crate::alert::Severity;

/// 40 listings around a $40 median in "headphones" from ten sellers.
fn market(k: &mut Kit) {
    for i in 0..40 {
        let price = 30.0 + (i % 21) as f64; // 30..50, median 40
        k.push(listing(&format!("m{}", i % 10), T0 + i * 60_000, &format!("m-l{i}"), "headphones", price));
    }
}

#[test]
fn honest_sale_and_restore_do_not_alert() {
    let mut k = Kit::only("price_dumping");
    market(&mut k);
    k.push(listing("h", T0 + H, "h1", "headphones", 42.0));
    k.push(listing("h", T0 + 2 * H, "h1", "headphones", 25.2)); // −40 % sale
    k.push(listing("h", T0 + 2 * D, "h1", "headphones", 42.0)); // sale over
                                                                // A genuinely cheap product well above a quarter of the median is not dumping either.
    k.push(listing("h", T0 + 3 * D, "h2", "headphones", 12.0));
    assert!(k.rules_for("h").is_empty(), "{:?}", k.alerts);
}

#[test]
fn drop_below_a_quarter_of_the_median_then_dump_and_raise() {
    let mut k = Kit::only("price_dumping");
    market(&mut k);
    k.push(listing("d", T0 + H, "d1", "headphones", 40.0));
    k.push(listing("d", T0 + 2 * H, "d1", "headphones", 6.0));
    k.push(listing("d", T0 + 2 * D, "d1", "headphones", 39.0));
    assert_eq!(k.rules_for("d"), ["price_dumping", "price_dumping.dump_and_raise"]);
    let dump = &k.alerts[0];
    assert_eq!(dump.evidence["signal"], "drop");
    assert_eq!(dump.evidence["previous_price"], 40.0);
    let med = dump.evidence["category_median"].as_f64().unwrap();
    assert!((med - 40.0).abs() <= 0.8, "median {med}");
    assert_eq!(dump.evidence["median_samples"], 41);
    let raise = &k.alerts[1];
    assert_eq!(raise.severity, dump.severity.raised());
    assert!(raise.severity > Severity::Low);
    assert_eq!(raise.evidence["hours_at_dumped_price"], 46.0);
}

#[test]
fn thresholds_with_margins_around_the_sketch_error() {
    // Below a quarter of the median, but a drop of only 46 % from the previous price: no alert.
    let mut k = Kit::only("price_dumping");
    market(&mut k);
    k.push(listing("d", T0 + H, "d1", "headphones", 14.0));
    k.push(listing("d", T0 + 2 * H, "d1", "headphones", 7.5));
    assert!(k.rules_for("d").is_empty());
    // A drop of exactly 50 % to below a quarter of the median: alert.
    let mut k = Kit::only("price_dumping");
    market(&mut k);
    k.push(listing("d", T0 + H, "d1", "headphones", 15.0));
    k.push(listing("d", T0 + 2 * H, "d1", "headphones", 7.5));
    assert_eq!(k.rules_for("d"), ["price_dumping"]);
    // Halved, but to 26 % of the median: no alert.
    let mut k = Kit::only("price_dumping");
    market(&mut k);
    k.push(listing("d", T0 + H, "d1", "headphones", 21.0));
    k.push(listing("d", T0 + 2 * H, "d1", "headphones", 10.5));
    assert!(k.rules_for("d").is_empty());
}

#[test]
fn new_listing_below_a_fifth_of_the_median() {
    let mut k = Kit::only("price_dumping");
    market(&mut k);
    k.push(listing("n", T0 + H, "cheap", "headphones", 7.0));
    k.push(listing("n", T0 + H, "fine", "headphones", 9.0));
    k.finish();
    let hits: Vec<_> = k.alerts.iter().filter(|a| a.seller_id == "n").collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].evidence["signal"], "new_listing");
    assert_eq!(hits[0].evidence["listing_id"], "cheap");
}

#[test]
fn no_verdict_without_enough_samples_and_dumps_stay_out_of_the_median() {
    let mut k = Kit::only("price_dumping");
    for i in 0..29 {
        k.push(listing("m", T0 + i * 60_000, &format!("l{i}"), "headphones", 40.0));
    }
    k.push(listing("d", T0 + H, "d1", "headphones", 3.0));
    assert!(k.rules_for("d").is_empty(), "29 samples are not a market");
    // The 30th sample arrives; now a new listing at $2 is dumping…
    k.push(listing("m", T0 + 2 * H, "l29", "headphones", 40.0));
    k.push(listing("d", T0 + 3 * H, "d2", "headphones", 2.0));
    // …and forty more dumpers do not move the median they are judged against.
    for i in 0..40 {
        k.push(listing(&format!("d{i}"), T0 + 4 * H + i * 60_000, "x", "headphones", 2.0));
    }
    k.finish();
    assert_eq!(k.alerts.len(), 41);
    let last = k.alerts.last().unwrap();
    // 29 + the unjudged $3 listing + the 30th sample: flagged prices never joined the baseline.
    assert_eq!(last.evidence["median_samples"], 31);
}

#[test]
fn a_cheap_new_listing_in_a_broad_category_is_not_dumping() {
    // A broad category: most listings around $80, but a tenth of honest ones at $5–$9.
    let mut k = Kit::only("price_dumping");
    for i in 0..100 {
        let price = if i % 10 == 0 { 5.0 + (i % 5) as f64 } else { 70.0 + (i % 21) as f64 };
        k.push(listing(&format!("m{}", i % 20), T0 + i * 60_000, &format!("b-l{i}"), "beauty", price));
    }
    // $6 is under 20 % of the median, yet many honest listings sit there: no verdict.
    k.push(listing("n", T0 + 3 * H, "cheap", "beauty", 6.0));
    // $2 is below anything honest in the category: dumping.
    k.push(listing("n", T0 + 3 * H, "dump", "beauty", 2.0));
    k.finish();
    let hits: Vec<_> = k.alerts.iter().filter(|a| a.seller_id == "n").collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].evidence["listing_id"], "dump");
}
