//! The engine on real public data (`../shared/data`, README there; never copied into the repo).
//!
//! * Shopee order brushing: the engine's `false_transactions.order_brushing` must flag exactly the
//!   shops that a plain offline reading of Shopee's public definition flags.
//! * Olist: 15,000 real orders converted to event contract v1 (`sellerguard::realdata::olist`) and
//!   replayed; every event must be accepted, and per-family alert rates are printed for review.
//!
//! Run with `cargo test --test real_data -- --nocapture` to see the figures.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Cursor;
use std::path::Path;

use sellerguard::alert::Alert;
use sellerguard::config::Config;
use sellerguard::replay::{replay, Output, ReplaySummary};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// Runs `lines` (JSON lines, event contract v1) through the engine as `sellerguard replay` does.
fn run(cfg: &Config, lines: &[String]) -> (ReplaySummary, Vec<Alert>) {
    let mut alerts = Vec::new();
    let input = Cursor::new(lines.join("\n"));
    let summary = replay(cfg, input, |o| {
        if let Output::Alert(a) = o {
            alerts.push(a.clone());
        }
    })
    .expect("replay runs");
    (summary, alerts)
}

// ---------------------------------------------------------------------------------------------
// Shopee order brushing

struct ShopeeOrder {
    order_id: u64,
    shop_id: u64,
    user_id: u64,
    /// Epoch seconds (the file's local times read as UTC: only differences matter).
    ts: i64,
}

fn shopee_orders() -> Vec<ShopeeOrder> {
    let path = Path::new(DATA).join("order_brushing/orders_candidate_shops.csv");
    let mut r = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(r.headers().unwrap(), vec!["orderid", "shopid", "userid", "event_time"]);
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let num = |i: usize| rec[i].parse::<u64>().unwrap();
            let ts = chrono::NaiveDateTime::parse_from_str(&rec[3], "%Y-%m-%d %H:%M:%S").unwrap().and_utc();
            ShopeeOrder { order_id: num(0), shop_id: num(1), user_id: num(2), ts: ts.timestamp() }
        })
        .collect()
}

/// The public definition, read literally: a shop is brushing when some closed interval
/// [t, t + 1 h], t any real number, holds orders ÷ unique buyers ≥ 3 — the interval holds *every*
/// order inside it. An order at o is inside exactly when o − 1 h ≤ t ≤ o, so what an interval holds
/// can change only where t meets some o − 1 h or some o. Brute force over every distinct content:
/// each such point, and a point strictly between each two neighbouring ones (times doubled so the
/// midpoint is whole); everything before the first point or after the last holds nothing.
fn brushing_shops_offline(orders: &[ShopeeOrder]) -> BTreeSet<u64> {
    const HOUR: i64 = 3600;
    let mut by_shop: BTreeMap<u64, Vec<(i64, u64)>> = BTreeMap::new();
    for o in orders {
        by_shop.entry(o.shop_id).or_default().push((o.ts, o.user_id));
    }
    let mut flagged = BTreeSet::new();
    for (shop, mut v) in by_shop {
        v.sort();
        // Doubled times: 2t.
        let mut points: Vec<i64> = v.iter().flat_map(|(o, _)| [2 * (o - HOUR), 2 * o]).collect();
        points.sort_unstable();
        points.dedup();
        let mut starts = points.clone();
        starts.extend(points.windows(2).map(|w| (w[0] + w[1]) / 2));
        let brushing = starts.iter().any(|&t2| {
            // Orders with 2t ≤ 2o ≤ 2t + 2 h.
            let lo = v.partition_point(|(o, _)| 2 * o < t2);
            let hi = v.partition_point(|(o, _)| 2 * o <= t2 + 2 * HOUR);
            let inside = &v[lo..hi];
            let buyers: HashSet<u64> = inside.iter().map(|(_, u)| *u).collect();
            !inside.is_empty() && inside.len() >= 3 * buyers.len()
        });
        if brushing {
            flagged.insert(shop);
        }
    }
    flagged
}

/// The offline reading on hand-made cases, so the comparison below rests on something checked.
#[test]
fn offline_brushing_definition_on_hand_cases() {
    let shop = |orders: &[(i64, u64)]| {
        let v: Vec<ShopeeOrder> = orders
            .iter()
            .enumerate()
            .map(|(i, &(ts, user_id))| ShopeeOrder { order_id: i as u64, shop_id: 1, user_id, ts })
            .collect();
        !brushing_shops_offline(&v).is_empty()
    };
    let m = 60;
    assert!(shop(&[(0, 1), (30 * m, 1), (60 * m, 1)]), "closed at both ends");
    assert!(!shop(&[(0, 1), (30 * m, 1), (60 * m + 1, 1)]), "1 h + 1 s holds only two");
    // Only an interval starting and ending between orders, such as [10 min, 70 min], holds A alone.
    assert!(shop(&[(0, 2), (30 * m, 1), (40 * m, 1), (50 * m, 1), (80 * m, 3)]));
    // A run of three from one buyer that no interval holds alone: B at 55 min, A at 60, 70, 80, C at
    // 110. An interval holding A's three starts in [20, 60] min, so it holds B's order or C's.
    assert!(!shop(&[(55 * m, 2), (60 * m, 1), (70 * m, 1), (80 * m, 1), (110 * m, 3)]));
    // Same-second orders are in or out together: 5 orders / 3 buyers, then 6 / 2.
    assert!(!shop(&[(0, 1), (0, 1), (0, 1), (0, 2), (0, 3)]));
    assert!(shop(&[(0, 1), (0, 1), (0, 1), (0, 2), (0, 2), (0, 2)]));
}

/// Only `families` enabled (the rest cannot add or suppress anything we measure).
fn only(families: &[&str]) -> Config {
    let mut c = Config::default();
    let on = |f: &str| families.contains(&f);
    c.fake_shipment.enabled = on("fake_shipment");
    c.rating_manipulation.enabled = on("rating_manipulation");
    c.price_dumping.enabled = on("price_dumping");
    c.shipping_fee_inflation.enabled = on("shipping_fee_inflation");
    c.false_transactions.enabled = on("false_transactions");
    c.phantom_listing.enabled = on("phantom_listing");
    c.late_dispatch.enabled = on("late_dispatch");
    c.small_parcel_restriction.enabled = on("small_parcel_restriction");
    c.slow_response.enabled = on("slow_response");
    c
}

#[test]
fn shopee_order_brushing_matches_the_public_definition() {
    let mut orders = shopee_orders();
    assert_eq!(orders.len(), 53_432);
    assert_eq!(orders.iter().map(|o| o.shop_id).collect::<BTreeSet<_>>().len(), 489);
    let expected = brushing_shops_offline(&orders);

    // Sorted by time: well within the engine's allowed lateness. The fields the definition does
    // not use get neutral values (same listing, price and fee for every order, no account age).
    orders.sort_by_key(|o| (o.ts, o.order_id));
    let lines: Vec<String> = orders
        .iter()
        .map(|o| {
            serde_json::json!({
                "event_id": format!("shopee-{}", o.order_id), "type": "order_placed",
                "seller_id": o.shop_id.to_string(), "ts": o.ts * 1000,
                "order_id": o.order_id.to_string(), "listing_id": "any", "buyer_id": o.user_id.to_string(),
                "category": "any", "price": 1.0, "shipping_fee": 0.0, "shipping_method": "standard",
                "destination_country": "SG",
            })
            .to_string()
        })
        .collect();
    // The data end at the last order, but a stream does not: an interval that starts within the last
    // hour could still gain orders, so it is judged once an hour has passed in event time. One
    // event of another seller an hour later says it has.
    let mut lines = lines;
    let end = orders.last().unwrap().ts + 3600;
    lines.push(
        serde_json::json!({
            "event_id": "end-of-data", "type": "seller_reply", "seller_id": "not-a-shop",
            "ts": end * 1000, "conversation_id": "none",
        })
        .to_string(),
    );
    let (summary, alerts) = run(&only(&["false_transactions"]), &lines);
    assert_eq!(summary.rejected_total(), 0, "{}", summary.render());
    assert_eq!(summary.accepted_total(), orders.len() as u64 + 1);
    let engine: BTreeSet<u64> = alerts
        .iter()
        .filter(|a| a.rule == "false_transactions.order_brushing")
        .map(|a| a.seller_id.parse().unwrap())
        .collect();

    println!("Shopee order brushing: {} shops by the definition, {} by the engine", expected.len(), engine.len());
    let only_offline: Vec<_> = expected.difference(&engine).collect();
    let only_engine: Vec<_> = engine.difference(&expected).collect();
    if !only_offline.is_empty() || !only_engine.is_empty() {
        println!("  only offline: {only_offline:?}\n  only engine: {only_engine:?}");
    }
    assert_eq!(engine, expected);
}

// ---------------------------------------------------------------------------------------------
// Olist replay

#[test]
fn olist_replays_with_no_rejects() {
    let conv = sellerguard::realdata::olist::convert(&Path::new(DATA).join("olist")).expect("conversion");
    let cfg = sellerguard::realdata::olist::replay_config().unwrap();
    let (summary, alerts) = run(&cfg, &conv.lines);
    assert_eq!(summary.rejected_total(), 0, "{}", summary.render());
    assert_eq!(summary.accepted_total(), conv.lines.len() as u64);
    assert_eq!(summary.late, 0, "converted events are in time order");
    let by_type: BTreeMap<String, u64> = conv.events_by_type.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    assert_eq!(summary.accepted, by_type);
    assert_eq!(conv.sellers.len(), 1904);

    println!("Olist: {} events from {} sellers", conv.lines.len(), conv.sellers.len());
    for (t, n) in &conv.events_by_type {
        println!("  {t:<16} {n}");
    }
    for (what, n) in &conv.notes {
        println!("  note: {n} {what}");
    }
    // Per rule and per family (the rule name up to the first dot): alerts and sellers alerted.
    let mut rules: BTreeMap<String, (usize, BTreeSet<&str>)> = BTreeMap::new();
    for a in &alerts {
        assert!(conv.sellers.contains(&a.seller_id), "alert for a seller not in the data: {}", a.seller_id);
        let family = a.rule.split('.').next().unwrap().to_string();
        for key in [family.clone(), a.rule.clone()].into_iter().collect::<BTreeSet<_>>() {
            let e = rules.entry(key).or_default();
            e.0 += 1;
            e.1.insert(&a.seller_id);
        }
    }
    let all: BTreeSet<&str> = alerts.iter().map(|a| a.seller_id.as_str()).collect();
    println!("{:<42} {:>6} {:>8} {:>8}", "rule", "alerts", "sellers", "share");
    for (rule, (n, sellers)) in &rules {
        let share = 100.0 * sellers.len() as f64 / conv.sellers.len() as f64;
        println!("{rule:<42} {n:>6} {:>8} {share:>7.2}%", sellers.len());
    }
    let share = 100.0 * all.len() as f64 / conv.sellers.len() as f64;
    println!("{:<42} {:>6} {:>8} {share:>7.2}%", "any", alerts.len(), all.len());
    // No buyer has three parcels from one seller in the whole sample, and every delivery has its
    // carrier hand-off scan: a false_transactions alert here would come from the conversion.
    assert!(!rules.keys().any(|r| r.starts_with("false_transactions")), "conversion artefact: {rules:?}");
    // Olist's reviews look honest (README, Real data, judges them): the drip signal must stay at
    // or under 1 % of sellers (it flags none; the closest seller is at a chance of 1e-3).
    let drip = rules.get("rating_manipulation.drip").map_or(0, |(_, s)| s.len());
    assert!(drip * 100 <= conv.sellers.len(), "drip flags {drip} of {} sellers", conv.sellers.len());
    // For review: every alert as a JSON line.
    if let Ok(path) = std::env::var("REAL_DATA_ALERTS") {
        let text: String = alerts.iter().map(|a| serde_json::to_string(a).unwrap() + "\n").collect();
        std::fs::write(&path, text).unwrap();
    }
}
