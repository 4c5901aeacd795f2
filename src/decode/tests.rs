use super::*;

fn limits() -> DecodeLimits {
    let mut l = DecodeLimits::default();
    l.currency_rates.insert("EUR".into(), 1.10);
    l
}

fn ok(json: &str) -> Event {
    decode(json.as_bytes(), &limits()).unwrap_or_else(|e| panic!("{json} rejected: {e}"))
}

fn reject(json: &[u8]) -> DecodeError {
    decode(json, &limits()).expect_err("must be rejected")
}

const ORDER: &str = r#"{"event_id":"e1","type":"order_placed","seller_id":"s1","ts":"2026-01-05T10:00:00.123Z",
 "order_id":"o1","listing_id":"l1","buyer_id":"b1","category":"phones","price":19.5,"shipping_fee":2.5,
 "shipping_method":"standard","destination_country":"DE","weight_grams":300,"extra":{"ignored":[1,2]}}"#;

#[test]
fn order_placed_with_defaults_and_unknown_fields() {
    let e = ok(ORDER);
    assert_eq!(&*e.event_id, "e1");
    assert_eq!(e.ts, 1_767_607_200_123);
    match e.body {
        Body::OrderPlaced(o) => {
            assert_eq!(o.quantity, 1);
            assert_eq!(o.promised_dispatch_hours, 72);
            assert_eq!(o.weight_grams, Some(300));
            assert_eq!(o.price, 19.5);
            assert!(o.buyer_created_at.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn event_types_index_their_table() {
    assert!(EventType::ALL.iter().enumerate().all(|(i, t)| *t as usize == i));
}

#[test]
fn ts_forms_agree() {
    let a = ok(
        r#"{"event_id":"e","type":"order_delivered","seller_id":"s","ts":"2026-01-05T11:00:00.123+01:00","order_id":"o"}"#,
    );
    let b = ok(r#"{"event_id":"e","type":"order_delivered","seller_id":"s","ts":1767607200123,"order_id":"o"}"#);
    assert_eq!(a.ts, b.ts);
}

#[test]
fn currency_conversion_and_rejection() {
    let e = ok(
        r#"{"event_id":"e","type":"listing","seller_id":"s","ts":0,"listing_id":"l","category":"c","price":10,"shipping_fee":0,"currency":"EUR"}"#,
    );
    match e.body {
        Body::Listing(l) => assert!((l.price - 11.0).abs() < 1e-9),
        other => panic!("{other:?}"),
    }
    let r = reject(br#"{"event_id":"e","type":"listing","seller_id":"s","ts":0,"listing_id":"l","category":"c","price":10,"shipping_fee":0,"currency":"JPY"}"#);
    assert_eq!(r.reason, RejectReason::UnsupportedCurrency);
    assert!(r.detail.contains("input.currency_rates"));
}

#[test]
fn every_reason_is_reachable_with_a_named_field() {
    let cases: &[(&[u8], RejectReason, &str)] = &[
        (b"not json", RejectReason::InvalidJson, ""),
        (b"[1,2]", RejectReason::InvalidJson, ""),
        (b"{\"event_id\":", RejectReason::InvalidJson, ""),
        (b"\xff\xfe{}", RejectReason::InvalidUtf8, ""),
        (br#"{"event_id":"e","type":"teleport","seller_id":"s","ts":0}"#, RejectReason::UnknownType, "teleport"),
        (br#"{"event_id":"e","seller_id":"s","ts":0}"#, RejectReason::MissingField, "type"),
        (br#"{"event_id":"e","type":"review","seller_id":"s","ts":0,"order_id":"o","buyer_id":"b"}"#, RejectReason::MissingField, "rating"),
        (br#"{"event_id":"e","type":"review","seller_id":"s","ts":0,"order_id":"o","buyer_id":"b","rating":7}"#, RejectReason::OutOfRange, "rating"),
        (br#"{"event_id":"e","type":"review","seller_id":"s","ts":0,"order_id":"o","buyer_id":"b","rating":"5"}"#, RejectReason::InvalidField, "rating"),
        (br#"{"event_id":"e","type":"listing","seller_id":"s","ts":0,"listing_id":"l","category":"c","price":-3,"shipping_fee":0}"#, RejectReason::OutOfRange, "price"),
        (br#"{"event_id":"e","type":"listing","seller_id":"s","ts":0,"listing_id":"l","category":"c","price":0,"shipping_fee":0}"#, RejectReason::OutOfRange, "price"),
        (br#"{"event_id":"e","type":"listing","seller_id":"s","ts":0,"listing_id":"l","category":"c","price":3,"shipping_fee":-1}"#, RejectReason::OutOfRange, "shipping_fee"),
        (br#"{"event_id":"e","type":"listing","seller_id":"s","ts":0,"listing_id":"l","category":"c","price":3,"shipping_fee":0,"stock":-1}"#, RejectReason::OutOfRange, "stock"),
        (br#"{"event_id":"e","type":"order_delivered","seller_id":"s","ts":"yesterday","order_id":"o"}"#, RejectReason::InvalidTimestamp, "ts"),
        (br#"{"event_id":"e","type":"order_delivered","seller_id":"s","ts":1.5,"order_id":"o"}"#, RejectReason::InvalidTimestamp, "ts"),
        (br#"{"event_id":"e","type":"order_delivered","seller_id":"s","ts":"2026-01-05T10:00:00","order_id":"o"}"#, RejectReason::InvalidTimestamp, "ts"),
        (br#"{"event_id":"e","type":"order_delivered","seller_id":"s","order_id":"o"}"#, RejectReason::MissingField, "ts"),
        (br#"{"event_id":"","type":"order_delivered","seller_id":"s","ts":0,"order_id":"o"}"#, RejectReason::InvalidField, "event_id"),
        (br#"{"event_id":"e","type":"order_delivered","seller_id":5,"ts":0,"order_id":"o"}"#, RejectReason::InvalidField, "seller_id"),
        (br#"{"event_id":"e","type":"tracking_scan","seller_id":"s","ts":0,"order_id":"o","tracking_number":"t","carrier":"c","status":"lost"}"#, RejectReason::InvalidField, "status"),
        (br#"{"event_id":"e","type":"order_cancelled","seller_id":"s","ts":0,"order_id":"o","by":"alien","reason":"x"}"#, RejectReason::InvalidField, "by"),
    ];
    for (input, reason, field) in cases {
        let e = reject(input);
        assert_eq!(e.reason, *reason, "{} -> {e}", String::from_utf8_lossy(input));
        assert!(e.detail.contains(field), "detail of {} should name `{field}`: {e}", String::from_utf8_lossy(input));
    }
}

#[test]
fn size_caps() {
    let long_id = "x".repeat(129);
    let msg = format!(r#"{{"event_id":"{long_id}","type":"order_delivered","seller_id":"s","ts":0,"order_id":"o"}}"#);
    assert_eq!(reject(msg.as_bytes()).reason, RejectReason::StringTooLong);
    let exactly = "x".repeat(128);
    let msg = format!(r#"{{"event_id":"{exactly}","type":"order_delivered","seller_id":"s","ts":0,"order_id":"o"}}"#);
    ok(&msg);
    let huge = vec![b' '; 70 * 1024];
    assert_eq!(reject(&huge).reason, RejectReason::Oversized);
}

#[test]
fn escaped_strings_decode() {
    let e = ok(r#"{"event_id":"e\u00e9","type":"seller_reply","seller_id":"s\"q","ts":0,"conversation_id":"c"}"#);
    assert_eq!(&*e.event_id, "eé");
    assert_eq!(&*e.seller_id, "s\"q");
}

#[test]
fn deep_nesting_in_an_ignored_field_is_skipped_without_recursion() {
    // As deep as the size cap allows: serde_json skips unknown values iteratively, no stack risk.
    let mut s =
        String::from(r#"{"event_id":"e","type":"seller_reply","seller_id":"s","ts":0,"conversation_id":"c","x":"#);
    s.push_str(&"[".repeat(32_000));
    s.push_str(&"]".repeat(32_000));
    s.push('}');
    assert!(s.len() <= 65_536);
    assert_eq!(&*ok(&s).event_id, "e");
    // Unbalanced, it is invalid JSON.
    s.pop();
    s.pop();
    assert_eq!(reject(s.as_bytes()).reason, RejectReason::InvalidJson);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let _ = decode(&bytes, &limits());
    }

    #[test]
    fn mutated_valid_events_never_panic(pos in 0usize..400, byte in proptest::num::u8::ANY) {
        let mut b = ORDER.as_bytes().to_vec();
        let i = pos % b.len();
        b[i] = byte;
        let _ = decode(&b, &limits());
    }
}
