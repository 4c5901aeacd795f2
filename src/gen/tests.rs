mod families;

use super::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

type Run = (Vec<(String, String)>, GenSummary);

fn run(cfg: &GenConfig) -> Run {
    let mut lines = Vec::new();
    let sum = generate(cfg, &mut |k, l| lines.push((k.to_string(), l.to_string()))).unwrap();
    (lines, sum)
}

/// The default config is generated once and shared by the tests that inspect it.
fn default_run() -> &'static (Run, Vec<Value>) {
    static R: OnceLock<(Run, Vec<Value>)> = OnceLock::new();
    R.get_or_init(|| {
        let r = run(&GenConfig::default());
        let parsed = r.0.iter().map(|(_, l)| serde_json::from_str(l).unwrap()).collect();
        (r, parsed)
    })
}

fn ts_of(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap(),
        Value::String(s) => {
            assert!(s.len() == 24 && s.ends_with('Z'), "bad ts {s}");
            chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
        }
        _ => panic!("bad ts {v}"),
    }
}

fn labels_of(fam: &str) -> HashSet<String> {
    let sum = &default_run().0 .1;
    sum.labels.iter().filter(|l| fam.is_empty() || l.family == fam).map(|l| l.seller_id.clone()).collect()
}

#[test]
fn tracking_formulas_match_reference_numbers() {
    // Independent S10 computation, checked against the published example.
    let w = [8, 6, 4, 2, 3, 5, 9, 7];
    let sum: u32 = "12345678".bytes().zip(w).map(|(c, w)| u32::from(c - b'0') * w).sum();
    let c = match 11 - sum % 11 {
        10 => 0,
        11 => 5,
        c => c,
    };
    assert_eq!(c, 5);
    assert_eq!(s10_check(12_345_678), 5);
    assert!(is_valid_tracking("china_post", "RB123456785GB"));
    assert!(!is_valid_tracking("china_post", "RB123456784GB"));
    assert!(!is_valid_tracking("china_post", "RB12345678GB"));
    assert!(is_valid_tracking("ups", "1Z999AA10123456784")); // well-known UPS sample
    assert!(!is_valid_tracking("ups", "1Z999AA10123456785"));
    assert!(is_valid_tracking("dhl", "1234567891")); // 123456789 % 7 == 1
    assert!(!is_valid_tracking("dhl", "1234567892"));
    assert!(is_valid_tracking("cainiao", "LP00000000000001"));
    assert!(is_valid_tracking("yunexpress", "YT0000000000000001"));
    assert!(!is_valid_tracking("fastship", "FS000000000001"));
    for n in [0u64, 7, 99_999_999, 100_000_000, 123_456_789_012, u64::MAX / 3] {
        for (c, name) in CARRIERS.iter().enumerate() {
            let t = util::build_tracking(c, n);
            assert!(is_valid_tracking(name, &t), "{name} {t}");
        }
    }
}

#[test]
fn rfc3339_matches_chrono() {
    let mut x = 12_345u64;
    for _ in 0..2000 {
        x = splitmix(x);
        let ms = 315_532_800_000 + (x % 4_000_000_000_000) as i64;
        let want = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        assert_eq!(rfc3339(ms), want.to_string());
    }
    assert_eq!(rfc3339(1_767_571_200_123), "2026-01-05T00:00:00.123Z");
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let cfg = GenConfig { sellers: 30, days: 5, warmup_days: 1, ..GenConfig::default() };
    let (a, sa) = run(&cfg);
    let (b, sb) = run(&cfg);
    assert!(a.len() > 5000);
    assert_eq!(a, b);
    assert_eq!(sa.labels, sb.labels);
    let (c, _) = run(&GenConfig { seed: 43, ..cfg.clone() });
    assert_ne!(a, c);
    let subtle = GenConfig { intensity: 0.4, ..cfg };
    assert_eq!(run(&subtle).0, run(&subtle).0);
}

#[test]
fn every_line_follows_the_contract() {
    let ((lines, sum), parsed) = default_run();
    let req: HashMap<&str, &[&str]> = HashMap::from([
        ("listing", &["listing_id", "category", "price", "shipping_fee"][..]),
        (
            "order_placed",
            &[
                "order_id",
                "listing_id",
                "buyer_id",
                "category",
                "price",
                "quantity",
                "shipping_fee",
                "shipping_method",
                "destination_country",
                "weight_grams",
                "buyer_created_at",
            ][..],
        ),
        ("order_shipped", &["order_id", "tracking_number", "carrier", "shipping_method"][..]),
        ("tracking_scan", &["order_id", "tracking_number", "carrier", "status", "country"][..]),
        ("order_delivered", &["order_id"][..]),
        ("order_cancelled", &["order_id", "by", "reason"][..]),
        ("review", &["order_id", "buyer_id", "rating", "buyer_created_at"][..]),
        ("dispute_opened", &["order_id", "reason", "buyer_id"][..]),
        ("buyer_message", &["conversation_id", "buyer_id"][..]),
        ("seller_reply", &["conversation_id"][..]),
    ]);
    let mut ids = HashSet::new();
    let mut int_ts = 0;
    for ((key, line), v) in lines.iter().zip(parsed) {
        assert!(!line.contains('\n'));
        let ty = v["type"].as_str().unwrap();
        let id = v["event_id"].as_str().unwrap();
        assert!((1..=128).contains(&id.len()) && ids.insert(id.to_string()), "event_id {id}");
        assert_eq!(v["seller_id"].as_str(), Some(key.as_str()));
        int_ts += usize::from(v["ts"].is_i64());
        ts_of(&v["ts"]);
        for f in req[ty] {
            assert!(!v[*f].is_null(), "{ty} lacks {f}: {line}");
        }
        match ty {
            "listing" => assert!(v["price"].as_f64().unwrap() > 0.0 && v["shipping_fee"].as_f64().unwrap() >= 0.0),
            "review" => assert!((1..=5).contains(&v["rating"].as_i64().unwrap())),
            "order_placed" => {
                ts_of(&v["buyer_created_at"]);
                assert_eq!(v["destination_country"].as_str().unwrap().len(), 2);
                assert!(v["price"].as_f64().unwrap() > 0.0 && v["quantity"].as_i64().unwrap() >= 1);
            }
            _ => {}
        }
    }
    let share = int_ts as f64 / lines.len() as f64;
    assert!((0.07..0.13).contains(&share), "epoch-millis share {share}");
    assert_eq!(sum.events as usize, lines.len());
    assert_eq!(sum.by_type.values().sum::<u64>(), sum.events);
}

/// No family but fake_shipment ships fake-looking parcels: valid, unique numbers by the chosen
/// method, scanned within 72 h — or, for false_transactions' scanless deliveries, confirmed by the
/// buyer within 72 h (before the scan deadline). Honest sellers' parcels are always scanned.
#[test]
fn honest_shipments_are_valid_unique_scanned_and_as_chosen() {
    let parsed = &default_run().1;
    let (fake, ft, fraud) = (labels_of("fake_shipment"), labels_of("false_transactions"), labels_of(""));
    let mut chosen = HashMap::new();
    let mut first_scan: HashMap<&str, i64> = HashMap::new();
    let mut confirmed: HashMap<&str, i64> = HashMap::new();
    for v in parsed {
        let o = v["order_id"].as_str().unwrap_or_default();
        match v["type"].as_str() {
            Some("order_placed") => drop(chosen.insert(o, v["shipping_method"].clone())),
            Some("tracking_scan") => drop(first_scan.entry(o).or_insert(ts_of(&v["ts"]))),
            Some("order_delivered") => drop(confirmed.insert(o, ts_of(&v["ts"]))),
            _ => {}
        }
    }
    let (mut seen, mut honest, mut flagged) = (HashSet::new(), 0, 0);
    for v in parsed.iter().filter(|v| v["type"] == "order_shipped") {
        let (o, t) = (v["order_id"].as_str().unwrap(), v["tracking_number"].as_str().unwrap());
        let (carrier, seller, shipped) =
            (v["carrier"].as_str().unwrap(), v["seller_id"].as_str().unwrap(), ts_of(&v["ts"]));
        let within = |at: Option<&i64>| at.is_some_and(|&s| s - shipped <= 72 * HOUR_MS);
        let valid =
            is_valid_tracking(carrier, t) && seen.insert(t.to_string()) && chosen.get(o) == Some(&v["shipping_method"]);
        let scanned = within(first_scan.get(o));
        if fake.contains(seller) {
            flagged += usize::from(!(valid && scanned));
        } else if !scanned && ft.contains(seller) {
            assert!(valid && within(confirmed.get(o)), "scanless delivery not confirmed before the scan deadline: {v}");
        } else {
            assert!(valid && scanned, "shipment would trip fake_shipment: {v}");
            honest += usize::from(!fraud.contains(seller));
        }
    }
    assert!(honest > 10_000 && flagged >= 2 * fake.len(), "{honest} {flagged}");
}

#[test]
fn disorder_is_bounded_by_max_disorder() {
    let ((_, _), parsed) = default_run();
    let (mut max, mut late, mut worst) = (i64::MIN, 0, 0);
    for v in parsed {
        let t = ts_of(&v["ts"]);
        if t < max {
            late += 1;
            worst = worst.max(max - t);
        }
        max = max.max(t);
    }
    assert!(worst <= GenConfig::default().max_disorder_ms, "worst {worst}");
    assert!(late > 100 && worst > 60_000, "disorder should actually occur: {late} {worst}");
    let cfg = GenConfig { sellers: 20, days: 3, max_disorder_ms: 0, warmup_days: 1, ..GenConfig::default() };
    let ts: Vec<i64> =
        run(&cfg).0.iter().map(|(_, l)| ts_of(&serde_json::from_str::<Value>(l).unwrap()["ts"])).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn default_labels_cover_all_families() {
    let sum = &default_run().0 .1;
    let fams: HashSet<&str> = sum.labels.iter().map(|l| l.family.as_str()).collect();
    assert_eq!(fams.len(), 9, "{fams:?}");
    let warm_end = GenConfig::default().start_ms + 2 * DAY_MS;
    for l in &sum.labels {
        let since = chrono::DateTime::parse_from_rfc3339(&l.since).unwrap().timestamp_millis();
        assert!(since >= warm_end, "{l:?} starts during warm-up");
    }
}

#[test]
fn honest_sales_never_below_60_percent_of_list_price() {
    let parsed = &default_run().1;
    let fraud = labels_of("");
    let mut first: HashMap<&str, f64> = HashMap::new();
    let mut sales = 0;
    for v in parsed.iter().filter(|v| v["type"] == "listing" && !fraud.contains(v["seller_id"].as_str().unwrap())) {
        let p = v["price"].as_f64().unwrap();
        let list = *first.entry(v["listing_id"].as_str().unwrap()).or_insert(p);
        assert!(p >= 0.6 * list - 0.005, "{v}");
        sales += usize::from(p < list);
    }
    assert!(sales > 100, "honest sales should happen: {sales}");
}

#[test]
fn fraud_crosses_thresholds_honest_stays_far_below() {
    let parsed = &default_run().1;
    let fraud = labels_of("");
    // Shipping fees vs the run-wide (method, band) median of non-zero fees.
    let mut fees: HashMap<(String, usize), Vec<f64>> = HashMap::new();
    let placed: Vec<&Value> = parsed.iter().filter(|v| v["type"] == "order_placed").collect();
    let key = |v: &Value| {
        (v["shipping_method"].as_str().unwrap().to_string(), band(v["weight_grams"].as_u64().unwrap() as u32))
    };
    for v in &placed {
        let f = v["shipping_fee"].as_f64().unwrap();
        if f > 0.0 {
            fees.entry(key(v)).or_default().push(f);
        }
    }
    let med: HashMap<_, f64> = fees
        .into_iter()
        .map(|(k, mut v)| {
            (k, {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
        })
        .collect();
    let mut inflated: HashMap<&str, usize> = HashMap::new();
    for v in &placed {
        let s = v["seller_id"].as_str().unwrap();
        let r = v["shipping_fee"].as_f64().unwrap() / med[&key(v)];
        if fraud.contains(s) {
            *inflated.entry(s).or_default() += usize::from(r > 4.0);
        } else {
            assert!(r < 1.5, "honest fee ratio {r}: {v}");
        }
    }
    for s in labels_of("shipping_fee_inflation") {
        assert!(inflated.get(s.as_str()).copied().unwrap_or(0) >= 2, "{s} barely inflates");
    }
    // Brushing: every rating seller has a day with ≥ 10 5★ reviews mostly from new accounts.
    let mut new5: HashMap<&str, Vec<(i64, bool)>> = HashMap::new();
    for v in parsed.iter().filter(|v| v["type"] == "review" && v["rating"] == 5) {
        let t = ts_of(&v["ts"]);
        let new = t - ts_of(&v["buyer_created_at"]) < 7 * DAY_MS;
        new5.entry(v["seller_id"].as_str().unwrap()).or_default().push((t, new));
    }
    for (s, mut r) in new5 {
        r.sort();
        let hot = r.iter().enumerate().any(|(i, &(t, _))| {
            let w: Vec<bool> = r[i..].iter().take_while(|x| x.0 < t + DAY_MS).map(|x| x.1).collect();
            w.len() >= 10 && w.iter().filter(|&&n| n).count() * 2 >= w.len()
        });
        assert_eq!(hot, labels_of("rating_manipulation").contains(s), "{s}");
    }
}

#[test]
fn target_events_stops_near_the_target() {
    let cfg = GenConfig { target_events: Some(50_000), ..GenConfig::default() };
    let (lines, sum) = run(&cfg);
    assert_eq!(lines.len() as u64, sum.events);
    // Past the target only what is owed follows: dispatches of placed orders, their first scans,
    // replies to sent messages — a few days of them at most.
    assert!((50_000..56_000).contains(&lines.len()), "{}", lines.len());
    let last = lines.iter().map(|(_, l)| ts_of(&serde_json::from_str::<Value>(l).unwrap()["ts"])).max().unwrap();
    for l in &sum.labels {
        assert!(chrono::DateTime::parse_from_rfc3339(&l.since).unwrap().timestamp_millis() <= last);
    }
}

/// The replay-scale file of the acceptance check: 600k events with every family present.
/// (Generation speed is measured by `benches/`, not asserted here.)
#[test]
fn six_hundred_thousand_events() {
    let cfg = GenConfig { target_events: Some(600_000), ..GenConfig::default() };
    let mut n = 0u64;
    let sum = generate(&cfg, &mut |_, _| n += 1).unwrap();
    assert!(sum.events >= 600_000 && n == sum.events);
    assert_eq!(sum.labels.iter().map(|l| &l.family).collect::<HashSet<_>>().len(), 9);
}

#[test]
fn bad_configs_are_rejected_without_panicking() {
    let with = |f: &dyn Fn(&mut GenConfig)| {
        let mut c = GenConfig::default();
        f(&mut c);
        c
    };
    let bad = [
        with(&|c| c.sellers = 0),
        with(&|c| c.sellers = usize::MAX),
        with(&|c| c.days = 0),
        with(&|c| c.days = u32::MAX),
        with(&|c| c.fraud_share = f64::NAN),
        with(&|c| c.fraud_share = -0.1),
        with(&|c| c.fraud_share = 1.5),
        with(&|c| c.warmup_days = 14),
        with(&|c| c.max_disorder_ms = 300_000),
        with(&|c| c.max_disorder_ms = -1),
        with(&|c| c.start_ms = i64::MIN),
        with(&|c| c.start_ms = i64::MAX),
        with(&|c| c.target_events = Some(0)),
        with(&|c| c.target_events = Some(usize::MAX)),
        with(&|c| c.intensity = 0.0),
        with(&|c| c.intensity = -0.5),
        with(&|c| c.intensity = 1.01),
        with(&|c| c.intensity = f64::NAN),
    ];
    for cfg in bad {
        assert!(cfg.validate().is_err(), "{cfg:?}");
        assert!(generate(&cfg, &mut |_, _| {}).is_err());
    }
    // Valid edge configs must run.
    let edge = [
        with(&|c| (c.sellers, c.days, c.fraud_share) = (1, 1, 0.0)),
        with(&|c| (c.sellers, c.days, c.warmup_days, c.fraud_share) = (3, 2, 1, 1.0)),
        with(&|c| (c.sellers, c.days, c.warmup_days, c.max_disorder_ms) = (5, 1, 0, 0)),
        with(&|c| (c.target_events, c.sellers) = (Some(1), 2)),
        with(&|c| (c.fraud_share, c.warmup_days, c.days, c.sellers) = (0.0, 99, 2, 10)),
        with(&|c| (c.start_ms, c.days, c.warmup_days) = (315_532_800_000, 1, 0)),
        with(&|c| (c.sellers, c.days, c.fraud_share, c.intensity) = (40, 4, 0.5, 0.001)),
    ];
    for cfg in edge {
        assert!(generate(&cfg, &mut |_, _| {}).is_ok(), "{cfg:?}");
    }
}
