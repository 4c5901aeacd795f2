use super::*;

const OLD: Option<Millis> = Some(T0 - 400 * D);

/// Order `id` placed at `t` and delivered two days later.
fn delivered_order(k: &mut Kit, seller: &str, t: Millis, id: &str, buyer: &str) {
    k.push(order(seller, t, O { order: id, buyer, buyer_created_at: OLD, ..O::default() }));
    k.push(delivered(seller, t + 2 * D, id));
}

#[test]
fn suspicious_reviews_at_the_fifty_percent_boundary() {
    for (new_accounts, expect) in [(5, true), (4, false)] {
        let mut k = Kit::only("rating_manipulation");
        let t = T0 + 10 * D;
        for i in 0..10 {
            let id = format!("o{i}");
            delivered_order(&mut k, "s", T0 + i * H, &id, &format!("b{i}"));
            let created = if i < new_accounts { Some(t - 2 * D) } else { OLD };
            k.push(review("s", t + i * H, &id, &format!("b{i}"), 5, created));
        }
        let rules = k.rules_for("s");
        assert_eq!(
            rules.contains(&"rating_manipulation.suspicious_reviews".to_string()),
            expect,
            "{new_accounts}: {rules:?}"
        );
        if expect {
            let a = &k.alerts[0];
            assert_eq!(a.evidence["five_star_reviews"], 10);
            assert_eq!(a.evidence["from_new_accounts"], 5);
            assert_eq!(a.evidence["reviews"].as_array().unwrap().len(), 10);
        }
    }
}

#[test]
fn reviews_for_orders_never_delivered_are_suspicious() {
    let mut k = Kit::only("rating_manipulation");
    for i in 0..12 {
        let id = format!("o{i}");
        // Orders placed but never delivered, reviewed the same day by old accounts.
        k.push(order("s", T0 + i * H, O { order: &id, buyer_created_at: OLD, ..O::default() }));
        k.push(review("s", T0 + i * H + 30 * 60_000, &id, "b", 5, OLD));
    }
    let rules = k.rules_for("s");
    assert!(rules.contains(&"rating_manipulation.suspicious_reviews".to_string()), "{rules:?}");
    let a = k.alerts.iter().find(|a| a.rule == "rating_manipulation.suspicious_reviews").unwrap();
    assert_eq!(a.evidence["for_undelivered_orders"], 10);
}

#[test]
fn reviews_after_a_sale_do_not_alert() {
    let mut k = Kit::only("rating_manipulation");
    // 200 orders in a two-day sale, delivered two days later…
    for i in 0..200 {
        delivered_order(&mut k, "s", T0 + i * 14 * 60_000, &format!("o{i}"), &format!("b{i}"));
    }
    // …then 60 five-star and 40 other reviews over the next day, from established buyers.
    for i in 0..100 {
        let rating = if i % 5 < 3 { 5 } else { 4 };
        k.push(review("s", T0 + 5 * D + i * 14 * 60_000, &format!("o{i}"), &format!("b{i}"), rating, OLD));
    }
    assert!(k.rules_for("s").is_empty(), "{:?}", k.alerts);
}

#[test]
fn honest_growth_does_not_alert() {
    let mut k = Kit::only("rating_manipulation");
    let mut n = 0;
    // Orders grow from 4 to ~40 a day over five weeks; ~55 % of buyers leave a review, 60 % of
    // those five stars, a few days after delivery.
    for day in 0..35i64 {
        let per_day = 4 + day;
        for j in 0..per_day {
            n += 1;
            let t = T0 + day * D + j * (D / per_day);
            let id = format!("o{n}");
            delivered_order(&mut k, "s", t, &id, &format!("b{n}"));
            if n % 20 < 11 {
                let rating = if n % 5 < 3 { 5 } else { 4 };
                k.push(review("s", t + 4 * D, &id, &format!("b{n}"), rating, OLD));
            }
        }
    }
    assert!(k.rules_for("s").is_empty(), "{:?}", k.alerts);
}

#[test]
fn burst_against_baseline_without_deliveries_alerts() {
    let mut k = Kit::only("rating_manipulation");
    // Two reviews a day for four weeks on orders delivered long ago.
    for i in 0..60 {
        delivered_order(&mut k, "s", T0 + i * H, &format!("old{i}"), &format!("b{i}"));
    }
    for day in 0..28 {
        for j in 0..2 {
            let i = day * 2 + j;
            k.push(review("s", T0 + 3 * D + day * D + j * H, &format!("old{i}"), &format!("b{i}"), 5, OLD));
        }
    }
    // Then 20 five-star reviews in 10 hours from established accounts on delivered orders:
    // nothing suspicious per review, but 10× the baseline with no recent deliveries.
    let t = T0 + 32 * D;
    for i in 0..20 {
        k.push(review("s", t + i * 30 * 60_000, &format!("old{}", i + 40), "bx", 5, OLD));
    }
    let rules = k.rules_for("s");
    // The first alert at the 15th review; one more when the score crosses into `high`.
    assert_eq!(rules, ["rating_manipulation.burst", "rating_manipulation.burst"], "{:?}", k.alerts);
    assert!(k.alerts[1].severity > k.alerts[0].severity);
    let a = &k.alerts[0];
    assert_eq!(a.evidence["five_star_reviews"], 15, "fires when the 15th review arrives");
    assert_eq!(a.evidence["baseline_per_day"], 2.0);
    assert_eq!(a.evidence["delivered_orders"], 0);
}

#[test]
fn four_star_reviews_are_not_counted() {
    let mut k = Kit::only("rating_manipulation");
    for i in 0..30 {
        k.push(review("s", T0 + i * H / 2, &format!("o{i}"), "b", 4, Some(T0 - D)));
    }
    assert!(k.rules_for("s").is_empty());
}

#[test]
fn review_ring_alerts_every_seller_in_the_block() {
    let mut k = Kit::only("rating_manipulation");
    let mut t = T0;
    for s in ["s1", "s2", "s3"] {
        for b in ["b1", "b2", "b3", "b4"] {
            t += 3 * H;
            k.push(review(s, t, &format!("{s}-{b}"), b, 5, OLD));
        }
    }
    // An unrelated honest buyer of s1 does not join the ring.
    k.push(review("s1", t + H, "s1-x", "x", 5, OLD));
    k.finish();
    let ring: Vec<_> = k.alerts.iter().filter(|a| a.rule == "rating_manipulation.ring").collect();
    let sellers: std::collections::BTreeSet<_> = ring.iter().map(|a| a.seller_id.as_str()).collect();
    assert_eq!(sellers.into_iter().collect::<Vec<_>>(), ["s1", "s2", "s3"]);
    assert_eq!(ring[0].evidence["buyers"], serde_json::json!(["b1", "b2", "b3", "b4"]));
    assert!(ring[0].message.contains("the same 4 buyers"));

    // Three buyers are not enough with the default policy.
    let mut k = Kit::only("rating_manipulation");
    for s in ["s1", "s2", "s3"] {
        for b in ["b1", "b2", "b3"] {
            k.push(review(s, T0 + H, &format!("{s}-{b}"), b, 5, OLD));
        }
    }
    assert!(k.rules_for("s1").is_empty());
}
