use super::*;

const M: Millis = 60_000;

fn buy(k: &mut Kit, seller: &str, t: Millis, id: &str, buyer: &str) {
    k.push(order(seller, t, O { order: id, buyer, ..O::default() }));
}

fn brushing(k: &mut Kit, seller: &str) -> Vec<Alert> {
    k.finish();
    k.alerts
        .iter()
        .filter(|a| a.seller_id == seller && a.rule == "false_transactions.order_brushing")
        .cloned()
        .collect()
}

#[test]
fn brushing_interval_is_closed_at_both_ends() {
    let mut k = Kit::only("false_transactions");
    for (i, t) in [0, 30 * M, 60 * M].iter().enumerate() {
        buy(&mut k, "s", T0 + t, &format!("o{i}"), "a");
    }
    let hits = brushing(&mut k, "s");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].evidence["orders"], 3);
    assert_eq!(hits[0].evidence["unique_buyers"], 1);
    assert_eq!(hits[0].event_time, crate::alert::rfc3339(T0 + 60 * M));

    let mut k = Kit::only("false_transactions");
    for (i, t) in [0, 30 * M, 60 * M + 1].iter().enumerate() {
        buy(&mut k, "s", T0 + t, &format!("o{i}"), "a");
    }
    assert!(brushing(&mut k, "s").is_empty(), "three orders spanning 1 h + 1 ms fit no interval");
}

#[test]
fn brushing_in_an_interval_that_starts_and_ends_between_orders() {
    // B@0, A@30, A@40, A@50, C@80 (minutes). Every interval starting or ending at an order holds a
    // second buyer (ratio 2); only a floating one such as [10, 70] holds A's three orders alone.
    let mut k = Kit::only("false_transactions");
    for (i, (t, b)) in [(0, "b"), (30, "a"), (40, "a"), (50, "a"), (80, "c")].iter().enumerate() {
        buy(&mut k, "s", T0 + t * M, &format!("o{i}"), b);
    }
    let hits = brushing(&mut k, "s");
    assert_eq!(hits.len(), 1, "{:?}", k.alerts);
    assert_eq!(hits[0].evidence["orders_by_buyer"], serde_json::json!({ "a": 3 }));
    assert_eq!(hits[0].evidence["interval_start"], crate::alert::rfc3339(T0 + 30 * M));
}

#[test]
fn a_run_is_brushing_only_if_an_interval_can_hold_it_alone() {
    // B@55, A@60, A@70, A@80, C@110 (minutes). Every hour-long interval holding A's three orders
    // starts in [20, 60], so it also holds B's order (start ≤ 55) or C's (start > 55 puts its end past
    // 110): at best 4 orders / 2 buyers. Not brushing, although the run 60–80 is 3 orders, 1 buyer.
    let mut k = Kit::only("false_transactions");
    for (i, (t, b)) in [(55, "b"), (60, "a"), (70, "a"), (80, "a"), (110, "c")].iter().enumerate() {
        buy(&mut k, "s", T0 + t * M, &format!("o{i}"), b);
    }
    assert!(brushing(&mut k, "s").is_empty(), "{:?}", k.alerts);
}

#[test]
fn same_second_orders_are_judged_together() {
    // Five orders in one second: a, a, a (processed first), then b, c. Any interval holds all five:
    // 5 / 3 < 3, so no brushing, although the first three alone would look like it.
    let mut k = Kit::only("false_transactions");
    for (i, b) in ["a", "a", "a", "b", "c"].iter().enumerate() {
        buy(&mut k, "s", T0, &format!("o{i}"), b);
    }
    assert!(brushing(&mut k, "s").is_empty(), "{:?}", k.alerts);
    // Six orders, two buyers in one second: 6 / 2 = 3.
    let mut k = Kit::only("false_transactions");
    for (i, b) in ["a", "a", "a", "b", "b", "b"].iter().enumerate() {
        buy(&mut k, "s", T0, &format!("o{i}"), b);
    }
    assert_eq!(brushing(&mut k, "s").len(), 1);
}

#[test]
fn several_repeat_buyers_alert_one_loyal_customer_does_not() {
    for (buyers, expect) in [(3, true), (2, false)] {
        let mut k = Kit::only("false_transactions");
        for b in 0..buyers {
            for n in 0..3 {
                // Two days apart: far from brushing's one-hour intervals.
                buy(&mut k, "s", T0 + (n * 2 * D) + b * H, &format!("o{b}-{n}"), &format!("b{b}"));
            }
        }
        k.finish();
        let hit = k.alerts.iter().any(|a| a.rule == "false_transactions.repeat_buyers");
        assert_eq!(hit, expect, "{buyers} buyers: {:?}", k.alerts);
    }
}

#[test]
fn deliveries_never_scanned_by_a_carrier() {
    for (scanless, expect) in [(3, true), (2, false)] {
        let mut k = Kit::only("false_transactions");
        for i in 0..20 {
            let id = format!("o{i}");
            let t = T0 + i * 3 * H;
            buy(&mut k, "s", t, &id, &format!("b{i}"));
            k.push(shipped("s", t + H, &id, "china_post", &s10(i as u32), "standard"));
            if i >= scanless {
                k.push(scan("s", t + 5 * H, &id, ScanStatus::Accepted));
            }
            k.push(delivered("s", t + 3 * D, &id));
        }
        k.finish();
        let hit = k.alerts.iter().find(|a| a.rule == "false_transactions.scanless_delivery");
        assert_eq!(hit.is_some(), expect, "{scanless}: {:?}", k.alerts);
        if let Some(a) = hit {
            assert_eq!(a.evidence["flagged"], 3);
            assert_eq!(a.evidence["items"].as_array().unwrap().len(), 3);
        }
    }
}

#[test]
fn new_accounts_buying_the_cheapest_item_and_rating_it_five_stars() {
    for (n, listing_id, expect) in [(5, "cheap", true), (4, "cheap", false), (5, "normal", false)] {
        let mut k = Kit::only("false_transactions");
        k.push(listing("s", T0, "cheap", "phones", 2.0));
        k.push(listing("s", T0, "normal", "phones", 20.0));
        for i in 0..n {
            let id = format!("o{i}");
            let price = if listing_id == "cheap" { 2.0 } else { 20.0 };
            let created = Some(T0 - D);
            let t = T0 + i * 5 * H;
            k.push(order(
                "s",
                t,
                O {
                    order: &id,
                    buyer: &format!("new{i}"),
                    price,
                    listing: listing_id,
                    buyer_created_at: created,
                    ..O::default()
                },
            ));
            k.push(review("s", t + 2 * D, &id, &format!("new{i}"), 5, created));
        }
        k.finish();
        let hit = k.alerts.iter().any(|a| a.rule == "false_transactions.new_account_cluster");
        assert_eq!(hit, expect, "{n} on {listing_id}: {:?}", k.alerts);
    }
}
