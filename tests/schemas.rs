//! The JSON Schemas in `deploy/schemas/` (see the README there):
//!
//! * they are what the code generates (`sellerguard::schema`). After changing a contract type,
//!   regenerate them with `SELLERGUARD_BLESS_SCHEMAS=1 cargo test --test schemas` (or
//!   `sellerguard schema --out deploy/schemas`) and review the diff;
//! * the event schema accepts exactly what the decoder accepts: every generated event and every
//!   event of the Olist conversion validates, and a table of mutations (each field of each type set
//!   to each of a list of values, or removed) is accepted or rejected by both alike. The few things
//!   JSON Schema cannot express are listed in the schema's description and asserted here as such;
//! * every alert and standing record `sellerguard replay --standing` writes validates.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jsonschema::Validator;
use sellerguard::decode::{decode, DecodeLimits, EventType};
use serde_json::{json, Value};

const BLESS: &str = "SELLERGUARD_BLESS_SCHEMAS";
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/schemas")
}

fn shipped(name: &str) -> Value {
    let path = shipped_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A validator for a shipped file (not the generated value: the files are what users get).
fn validator(name: &str) -> Validator {
    let schema = shipped(name);
    assert!(jsonschema::meta::is_valid(&schema), "{name} is not a valid JSON Schema");
    // Formats asserted, not just annotations: alert ids are UUIDs, times RFC 3339.
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn errors(v: &Validator, instance: &Value) -> String {
    v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect::<Vec<_>>().join("; ")
}

#[test]
fn shipped_schemas_are_what_the_code_generates() {
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        for path in sellerguard::schema::write_all(&shipped_dir()).unwrap() {
            eprintln!("blessed {}", path.display());
        }
    }
    for (name, generate) in sellerguard::schema::FILES {
        let path = shipped_dir().join(name);
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == sellerguard::schema::render(&generate()),
            "{} differs from what the code generates: run `{BLESS}=1 cargo test --test schemas` and review the diff",
            path.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Events

fn decoder_accepts(event: &Value) -> Result<(), String> {
    decode(event.to_string().as_bytes(), &DecodeLimits::default()).map(|_| ()).map_err(|e| e.to_string())
}

fn assert_valid_events(v: &Validator, lines: &[String], what: &str) -> BTreeMap<String, usize> {
    let mut types = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let event: Value = serde_json::from_str(line).unwrap();
        assert!(v.is_valid(&event), "{what} line {}: {}\n{line}", i + 1, errors(v, &event));
        *types.entry(event["type"].as_str().unwrap().to_string()).or_default() += 1;
    }
    types
}

#[test]
fn every_generated_event_validates() {
    let v = validator("event.v1.schema.json");
    for (seed, intensity) in [(42, 1.0), (7, 0.5)] {
        let cfg = sellerguard::gen::GenConfig {
            seed,
            intensity,
            sellers: 60,
            days: 9,
            fraud_share: 0.3,
            ..Default::default()
        };
        let mut lines = Vec::new();
        sellerguard::gen::generate(&cfg, &mut |_, l| lines.push(l.to_string())).unwrap();
        let types = assert_valid_events(&v, &lines, &format!("gen seed {seed}"));
        for t in EventType::ALL {
            assert!(types.contains_key(t.as_str()), "seed {seed}: no {} event to check: {types:?}", t.as_str());
        }
    }
}

#[test]
fn every_olist_event_validates() {
    let conv = sellerguard::realdata::olist::convert(&Path::new(DATA).join("olist")).expect("conversion");
    assert!(conv.lines.len() > 40_000, "{} events", conv.lines.len());
    let types = assert_valid_events(&validator("event.v1.schema.json"), &conv.lines, "olist");
    assert!(types.len() >= 6, "{types:?}");
}

/// One event of each type with every optional field present (all accepted by the decoder).
fn full_events() -> Vec<Value> {
    let common =
        |t: &str| json!({"event_id": format!("e-{t}"), "type": t, "seller_id": "s1", "ts": "2026-01-05T10:00:00Z"});
    let with = |t: &str, fields: Value| {
        let mut e = common(t);
        e.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        e
    };
    vec![
        with(
            "listing",
            json!({"listing_id": "L1", "category": "toys", "price": 12.5, "shipping_fee": 2.0, "currency": "USD", "stock": 5}),
        ),
        with(
            "order_placed",
            json!({"order_id": "o1", "listing_id": "L1", "buyer_id": "b1", "category": "toys", "price": 12.5,
                   "quantity": 2, "shipping_fee": 2.0, "currency": "USD", "shipping_method": "standard",
                   "destination_country": "US", "origin_region": "SP", "destination_region": "RJ",
                   "weight_grams": 350, "buyer_created_at": "2025-12-01T00:00:00Z", "promised_dispatch_hours": 48}),
        ),
        with(
            "order_shipped",
            json!({"order_id": "o1", "tracking_number": "LP00000000000001", "carrier": "cainiao", "shipping_method": "standard"}),
        ),
        with(
            "tracking_scan",
            json!({"order_id": "o1", "tracking_number": "LP00000000000001", "carrier": "cainiao", "status": "in_transit", "country": "CN"}),
        ),
        with("order_delivered", json!({"order_id": "o1"})),
        with("order_cancelled", json!({"order_id": "o1", "by": "seller", "reason": "out_of_stock"})),
        with("review", json!({"order_id": "o1", "buyer_id": "b1", "rating": 5, "buyer_created_at": 1764547200000i64})),
        with("dispute_opened", json!({"order_id": "o1", "reason": "protection_expired", "buyer_id": "b1"})),
        with("buyer_message", json!({"conversation_id": "c1", "buyer_id": "b1"})),
        with("seller_reply", json!({"conversation_id": "c1"})),
    ]
}

/// Every field name of the contract (whatever type uses it), and one it does not define.
const FIELDS: [&str; 32] = [
    "event_id",
    "type",
    "seller_id",
    "ts",
    "listing_id",
    "category",
    "price",
    "shipping_fee",
    "currency",
    "stock",
    "order_id",
    "buyer_id",
    "quantity",
    "shipping_method",
    "destination_country",
    "origin_region",
    "destination_region",
    "weight_grams",
    "buyer_created_at",
    "promised_dispatch_hours",
    "tracking_number",
    "carrier",
    "status",
    "country",
    "by",
    "reason",
    "rating",
    "conversation_id",
    "note",
    "Order_id",
    "TS",
    "",
];

/// Values each field is set to (`None`: removed). Chosen around every limit the decoder checks.
fn values() -> Vec<Option<Value>> {
    let mut v: Vec<Value> = vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(1),
        json!(-1),
        json!(5),
        json!(6),
        json!(2.5),
        json!(3.0),
        json!(-0.5),
        json!(8760),
        json!(8761),
        json!(4_294_967_295u64),
        json!(4_294_967_295.5),
        json!(4_294_967_296u64),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(9_223_372_036_854_775_808u64),
        json!(u64::MAX),
        json!([]),
        json!(["x"]),
        json!({}),
        json!({"a": 1}),
    ];
    let strings = [
        "",
        "x",
        "5",
        "US",
        "us",
        "USA",
        "B1",
        "USD",
        "listing",
        "order_placed",
        "review",
        "nope",
        "in_transit",
        "delivered",
        "INTRANSIT",
        "seller",
        "platform",
        "Seller",
        "not_received",
        "anything at all",
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:00:00.5Z",
        "2026-01-05T10:00:00.123456789123Z",
        "2026-01-05t10:00:00z",
        "2026-01-05 10:00:00+05:30",
        "2026-01-05T10:00:00\u{2212}03:00",
        "2026-01-05T23:59:60Z",
        "2026-01-05T10:30:60-03:00",
        "2026-01-05T10:00:00",
        "2026-01-05",
        "2026-01-05T10:00Z",
        "2026-01-05T10:00:00.Z",
        "2024-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-12-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-01-05T24:00:00Z",
        "2026-01-05T10:60:00Z",
        "2026-01-05T10:00:00+23:59",
        "2026-01-05T10:00:00+24:00",
        "2026-01-05T10:00:00+0530",
        "0000-01-01T00:00:00Z",
        "+2026-01-05T10:00:00Z",
        " 2026-01-05T10:00:00Z",
        "2026-01-05T10:00:00Z ",
        "soon",
    ];
    v.extend(strings.map(Value::from));
    for n in [127, 128, 129, 1024, 1025] {
        v.push(json!("a".repeat(n)));
    }
    let mut out: Vec<Option<Value>> = v.into_iter().map(Some).collect();
    out.push(None);
    out
}

/// What JSON Schema cannot say (the schema's description lists them): `None` when the decoder
/// and the schema must agree on this mutation.
fn known_divergence(event_type: &str, field: &str, value: &Option<Value>) -> Option<&'static str> {
    let Some(value) = value else { return None };
    let integral_float = value.as_f64().is_some_and(|f| f.fract() == 0.0) && value.is_f64();
    let timed = field == "ts" || (field == "buyer_created_at" && ["order_placed", "review"].contains(&event_type));
    let integer_field = ["stock", "quantity", "promised_dispatch_hours", "rating"].contains(&field);
    if integral_float && (timed || integer_field) {
        return Some("integral float in an integer field");
    }
    let priced = ["listing", "order_placed"].contains(&event_type);
    if field == "currency" && priced && value.as_str().is_some_and(|c| c != "USD") {
        return Some("currency without a configured rate");
    }
    None
}

#[test]
fn decoder_and_event_schema_agree_on_every_mutation() {
    let v = validator("event.v1.schema.json");
    let (mut checked, mut rejected, mut diverged) = (0, 0, BTreeMap::<&str, usize>::new());
    let mut disagreements = Vec::new();
    for base in full_events() {
        let t = base["type"].as_str().unwrap().to_string();
        assert_eq!(decoder_accepts(&base), Ok(()), "{base}");
        assert!(v.is_valid(&base), "{t}: {}", errors(&v, &base));
        for field in FIELDS {
            for value in values() {
                let mut e = base.clone();
                let obj = e.as_object_mut().unwrap();
                match &value {
                    Some(x) => obj.insert(field.to_string(), x.clone()),
                    None => obj.remove(field),
                };
                let (decoded, valid) = (decoder_accepts(&e), v.is_valid(&e));
                checked += 1;
                rejected += usize::from(decoded.is_err());
                if let Some(kind) = known_divergence(&t, field, &value) {
                    // Documented: the decoder rejects what the schema cannot tell apart.
                    assert!(decoded.is_err() && valid, "{kind} is no longer a divergence: {e}");
                    *diverged.entry(kind).or_default() += 1;
                } else if decoded.is_ok() != valid {
                    let why = decoded.err().unwrap_or_else(|| format!("schema: {}", errors(&v, &e)));
                    disagreements.push(format!("{t}.{field} = {value:?}: decoder {}, schema {valid}: {why}", !valid));
                }
            }
        }
    }
    assert!(disagreements.is_empty(), "{} of {checked} disagree:\n{}", disagreements.len(), disagreements.join("\n"));
    // The table exercises both outcomes and both documented divergences.
    assert!(rejected > checked / 4 && rejected < checked * 3 / 4, "{rejected} of {checked} rejected");
    assert_eq!(diverged.len(), 2, "{diverged:?}");
}

#[test]
fn named_mutations_are_rejected_by_both_for_the_stated_reason() {
    let v = validator("event.v1.schema.json");
    let events = full_events();
    let by_type = |t: &str| events.iter().find(|e| e["type"] == t).unwrap().clone();
    // (type, field, value or removal, the decoder's reject reason)
    let table: Vec<(&str, &str, Option<Value>, &str)> = vec![
        ("review", "order_id", None, "missing_field"),
        ("review", "rating", None, "missing_field"),
        ("review", "rating", Some(json!("5")), "invalid_field"),
        ("review", "rating", Some(json!(0)), "out_of_range"),
        ("listing", "price", None, "missing_field"),
        ("listing", "price", Some(json!(0)), "out_of_range"),
        ("listing", "price", Some(json!("12.50")), "invalid_field"),
        ("listing", "stock", Some(json!(-1)), "out_of_range"),
        ("order_placed", "destination_country", Some(json!("usa")), "invalid_field"),
        ("order_placed", "buyer_id", Some(json!(42)), "invalid_field"),
        ("order_placed", "promised_dispatch_hours", Some(json!(0)), "out_of_range"),
        ("order_placed", "buyer_created_at", Some(json!("yesterday")), "invalid_timestamp"),
        ("order_shipped", "tracking_number", None, "missing_field"),
        ("tracking_scan", "status", Some(json!("lost")), "invalid_field"),
        ("order_cancelled", "by", Some(json!("courier")), "invalid_field"),
        ("order_cancelled", "reason", None, "missing_field"),
        ("dispute_opened", "reason", Some(json!("r".repeat(1025))), "string_too_long"),
        ("buyer_message", "conversation_id", Some(json!("")), "invalid_field"),
        ("seller_reply", "seller_id", Some(json!("s".repeat(129))), "string_too_long"),
        ("seller_reply", "ts", None, "missing_field"),
        ("seller_reply", "ts", Some(json!("2026-02-30T10:00:00Z")), "invalid_timestamp"),
        ("seller_reply", "ts", Some(json!(1.5)), "invalid_timestamp"),
        ("seller_reply", "type", Some(json!("seller_replied")), "unknown_type"),
        ("seller_reply", "event_id", Some(Value::Null), "missing_field"),
        // A field of another type is type-checked too (one flat parse of every known name).
        ("seller_reply", "price", Some(json!("free")), "invalid_field"),
    ];
    for (t, field, value, reason) in table {
        let mut e = by_type(t);
        match &value {
            Some(x) => e[field] = x.clone(),
            None => drop(e.as_object_mut().unwrap().remove(field)),
        }
        let err = decoder_accepts(&e).expect_err(&format!("decoder accepts {e}"));
        assert!(err.starts_with(&format!("{reason}:")), "{t}.{field}: expected {reason}, got {err}");
        assert!(!v.is_valid(&e), "{t}.{field} = {value:?}: the schema accepts what the decoder rejects ({err})");
    }
}

#[test]
fn documented_divergences_are_real() {
    // Each is named in the schema's description; this keeps the list true.
    let v = validator("event.v1.schema.json");
    let schema = shipped("event.v1.schema.json");
    let description = schema["description"].as_str().unwrap();
    let base =
        json!({"event_id": "e", "type": "order_delivered", "seller_id": "s", "ts": 1767607200000i64, "order_id": "o"});
    let cases = [
        ("bytes", json!({"order_id": "é".repeat(100)})),
        ("3.0", json!({"ts": 1767607200000.0})),
        ("no key appears twice", Value::Null),
    ];
    for (phrase, patch) in cases {
        assert!(description.contains(phrase), "description lacks {phrase:?}: {description}");
        let text = if patch.is_null() {
            // Duplicate keys are a parse error for the decoder, invisible once parsed into a map.
            r#"{"event_id":"e","type":"order_delivered","seller_id":"s","ts":1767607200000,"order_id":"o","order_id":"p"}"#
                .to_string()
        } else {
            let mut e = base.clone();
            e.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
            e.to_string()
        };
        assert!(decode(text.as_bytes(), &DecodeLimits::default()).is_err(), "{phrase}: decoder accepts {text}");
        assert!(v.is_valid(&serde_json::from_str(&text).unwrap()), "{phrase}: schema rejects {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts and standing records

#[test]
fn every_replayed_alert_and_standing_record_validates() {
    let dir = tempfile::tempdir().unwrap();
    let (events, standing) = (dir.path().join("events.jsonl"), dir.path().join("standing.jsonl"));
    let cfg = sellerguard::gen::GenConfig { sellers: 80, days: 9, fraud_share: 0.3, ..Default::default() };
    let mut text = String::new();
    sellerguard::gen::generate(&cfg, &mut |_, l| {
        text += l;
        text += "\n";
    })
    .unwrap();
    std::fs::write(&events, text).unwrap();
    let out = Command::new(common::sellerguard_bin())
        .args(["replay", events.to_str().unwrap(), "--standing", standing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let alerts = validator("alert.v1.schema.json");
    let mut families = std::collections::BTreeSet::new();
    let lines = String::from_utf8(out.stdout).unwrap();
    for line in lines.lines() {
        let a: Value = serde_json::from_str(line).unwrap();
        assert!(alerts.is_valid(&a), "{}\n{line}", errors(&alerts, &a));
        families.insert(a["rule"].as_str().unwrap().split('.').next().unwrap().to_string());
    }
    assert_eq!(families.len(), sellerguard::rules::FAMILIES.len(), "every family's evidence checked: {families:?}");
    let sample: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for (field, bad) in [("severity", json!("urgent")), ("score", json!("high")), ("alert_id", json!("not-a-uuid"))] {
        let mut a = sample.clone();
        a[field] = bad;
        assert!(!alerts.is_valid(&a), "alert schema accepts {field} = {}", a[field]);
    }
    let mut a = sample.clone();
    a.as_object_mut().unwrap().remove("seller_id");
    assert!(!alerts.is_valid(&a), "alert schema accepts an alert without seller_id");
    // A shadow-mode alert is marked `"shadow": true` (the key is left out when false).
    let mut a = sample.clone();
    a["shadow"] = json!(true);
    assert!(alerts.is_valid(&a), "{}", errors(&alerts, &a));
    a["shadow"] = json!("yes");
    assert!(!alerts.is_valid(&a), "alert schema accepts shadow = \"yes\"");

    let records = validator("standing.v1.schema.json");
    let text = std::fs::read_to_string(&standing).unwrap();
    assert!(text.lines().count() > 100, "{} standing records", text.lines().count());
    for line in text.lines() {
        let s: Value = serde_json::from_str(line).unwrap();
        assert!(records.is_valid(&s), "{}\n{line}", errors(&records, &s));
    }
    let mut s: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    s["good_seller"] = json!("yes");
    assert!(!records.is_valid(&s), "standing schema accepts good_seller = \"yes\"");
}
