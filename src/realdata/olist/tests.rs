//! The Olist mapping on a hand-made miniature of the tables, decoded as the engine will see it.

use super::*;
use crate::decode::{decode, Body, DecodeLimits, Event, EventType, Millis};

const TABLES: [(&str, &str); 8] = [
    ("olist_customers_dataset.csv", "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state\nc1,u1,1,x,SP\nc2,u2,1,x,SP\n"),
    ("olist_products_dataset.csv", "\"product_id\",\"product_category_name\",\"product_weight_g\"\np1,beleza_saude,500\np2,,200\np3,portateis_cozinha_e_preparadores_de_alimentos,\n"),
    ("product_category_name_translation.csv", "\u{feff}product_category_name,product_category_name_english\nbeleza_saude,health_beauty\n"),
    ("olist_sellers_dataset.csv", "seller_id,seller_zip_code_prefix,seller_city,seller_state\ns1,1,x,SP\ns2,1,x,RJ\n"),
    ("olist_orders_dataset.csv", "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date\n\
        o1,c1,delivered,2018-01-01 10:00:00,2018-01-01 10:10:00,2018-01-02 09:00:00,2018-01-05 12:00:00,2018-01-20 00:00:00\n\
        o2,c2,canceled,2018-01-03 08:00:00,2018-01-03 09:00:00,,,2018-01-20 00:00:00\n"),
    ("olist_order_items_dataset.csv", "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n\
        o1,1,p1,s1,2018-01-03 10:30:00,50.0,10.0\n\
        o1,2,p1,s1,2018-01-03 10:30:00,50.0,10.0\n\
        o1,3,p2,s1,2018-01-03 10:30:00,20.0,5.0\n\
        o1,4,p3,s2,2018-01-03 10:30:00,30.0,8.0\n\
        o2,1,p1,s2,2018-01-05 08:00:00,40.0,9.0\n"),
    ("olist_order_reviews_dataset.csv", "review_id,order_id,review_score,review_comment_title,review_comment_message,review_creation_date,review_answer_timestamp\n\
        r1,o1,5,,\"great, \"\"really\"\"\",2018-01-05 00:00:00,2018-01-06 14:00:00\n"),
    ("olist_order_payments_dataset.csv", "order_id,payment_sequential,payment_type,payment_installments,payment_value\n"),
];

fn converted() -> (Conversion, Vec<Event>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in TABLES {
        let text: String = text.lines().map(|l| l.trim_start().to_string() + "\n").collect();
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let conv = convert(dir.path()).unwrap();
    let limits = DecodeLimits::from_config(&replay_config().unwrap().input);
    let events = conv.lines.iter().map(|l| decode(l.as_bytes(), &limits).unwrap()).collect();
    (conv, events)
}

/// 2018-01-01 10:00:00 in São Paulo (UTC−03:00) is 13:00 UTC.
fn utc(s: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn of(events: &[Event], t: EventType) -> Vec<&Event> {
    events.iter().filter(|e| e.body.event_type() == t).collect()
}

#[test]
fn one_order_per_seller_parcel_described_by_its_main_line() {
    let (_, events) = converted();
    let orders = of(&events, EventType::OrderPlaced);
    assert_eq!(orders.len(), 3, "o1 from s1 and s2, o2 from s2");
    let Body::OrderPlaced(o) = &orders[0].body else { unreachable!() };
    assert_eq!((&*orders[0].seller_id, &*o.order_id), ("s1", "o1"));
    assert_eq!(orders[0].ts, utc("2018-01-01T13:00:00Z"));
    // Two units of p1 (100 BRL) outweigh one p2 (20 BRL); fee and weight are the parcel's.
    assert_eq!((&*o.listing_id, &*o.category, o.quantity), ("p1", "health_beauty", 2));
    assert!((o.price - 50.0 * 0.30).abs() < 1e-9, "BRL at the configured rate");
    assert!((o.shipping_fee - 25.0 * 0.30).abs() < 1e-9);
    assert_eq!(o.weight_grams, Some(1200));
    assert_eq!(&*o.buyer_id, "u1");
    assert_eq!(o.promised_dispatch_hours, 49, "48.5 h rounded up");
    let Body::OrderPlaced(o) = &orders[1].body else { unreachable!() };
    assert_eq!(&*o.category, "portable_kitchen_food_preparers");
    assert_eq!(o.weight_grams, None, "unknown weight is left out, not zero");
}

#[test]
fn listings_precede_each_first_sale() {
    let (conv, events) = converted();
    let listings = of(&events, EventType::Listing);
    let keys: Vec<(&str, &str, Millis)> = listings
        .iter()
        .map(|e| match &e.body {
            Body::Listing(l) => (&*e.seller_id, &*l.listing_id, e.ts),
            _ => unreachable!(),
        })
        .collect();
    let first = utc("2018-01-01T13:00:00Z") - 1000;
    assert_eq!(
        keys,
        [("s1", "p1", first), ("s1", "p2", first), ("s2", "p3", first), ("s2", "p1", utc("2018-01-03T10:59:59Z"))]
    );
    let Body::Listing(l) = &listings[1].body else { unreachable!() };
    assert_eq!(&*l.category, "uncategorized");
    assert_eq!(conv.notes["items without a category (`uncategorized`)"], 1);
    assert!(events.windows(2).all(|w| w[0].ts <= w[1].ts), "lines are in time order");
}

#[test]
fn lifecycle_shipment_delivery_cancellation_and_reviews() {
    let (_, events) = converted();
    let hand_off = utc("2018-01-02T12:00:00Z");
    for t in [EventType::OrderShipped, EventType::TrackingScan] {
        let e = of(&events, t);
        assert_eq!(e.len(), 2, "{t:?} for both parcels of o1");
        assert!(e.iter().all(|e| e.ts == hand_off));
    }
    let Body::OrderShipped(s) = &of(&events, EventType::OrderShipped)[0].body else { unreachable!() };
    assert_eq!(&*s.carrier, CARRIER);
    assert_eq!(of(&events, EventType::OrderDelivered).len(), 2);
    let cancels = of(&events, EventType::OrderCancelled);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].ts, utc("2018-01-03T12:00:00Z"), "at the approval, its last known time");
    let reviews = of(&events, EventType::Review);
    assert_eq!(reviews.iter().map(|e| &*e.seller_id).collect::<Vec<_>>(), ["s1", "s2"]);
    assert!(reviews.iter().all(|e| e.ts == utc("2018-01-06T17:00:00Z")), "when the buyer answered");
    let Body::Review(r) = &reviews[0].body else { unreachable!() };
    assert_eq!((&*r.buyer_id, r.rating), ("u1", 5));
}
