//! Rule tests drive the whole engine (ordering + rules) with hand-built events, so each boundary is
//! checked the way production reaches it.

mod drip;
mod fake_shipment;
mod false_transactions;
mod fulfilment;
mod lifecycle;
mod price_dumping;
mod rating;
mod shipping_fee;
mod standing;

use crate::alert::Alert;
use crate::config::Config;
use crate::decode::*;
use crate::driver::Driver;
use crate::engine::Engine;

pub const T0: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z
pub const H: Millis = HOUR_MS;
pub const D: Millis = DAY_MS;

/// The default config with every family but `family` switched off.
pub fn only(family: &str) -> Config {
    let mut c = Config::default();
    c.fake_shipment.enabled = family == "fake_shipment";
    c.rating_manipulation.enabled = family == "rating_manipulation";
    c.price_dumping.enabled = family == "price_dumping";
    c.shipping_fee_inflation.enabled = family == "shipping_fee_inflation";
    c.false_transactions.enabled = family == "false_transactions";
    c.phantom_listing.enabled = family == "phantom_listing";
    c.late_dispatch.enabled = family == "late_dispatch";
    c.small_parcel_restriction.enabled = family == "small_parcel_restriction";
    c.slow_response.enabled = family == "slow_response";
    c
}

/// As [`only`], with the small-sample guard off so that tests probe the count and ratio lines.
pub fn only_lines(family: &str) -> Config {
    let mut c = only(family);
    c.phantom_listing.max_chance = 1.0;
    c.late_dispatch.max_chance = 1.0;
    c.slow_response.max_chance = 1.0;
    c
}

pub struct Kit {
    driver: Driver,
    n: u64,
    pub alerts: Vec<Alert>,
    pub standing: Vec<crate::rules::standing::Standing>,
}

impl Kit {
    /// An engine with every family but `family` switched off: each family's tests see only it.
    pub fn only(family: &str) -> Self {
        Self::with(only(family))
    }

    pub fn with(cfg: Config) -> Self {
        let snoozes = crate::rules::snooze::Snoozes::for_config(&cfg).unwrap();
        let engine = Engine::new(&cfg, snoozes).unwrap().with_clock(Box::new(|| 0));
        Kit { driver: Driver::with_engine(engine, &cfg), n: 0, alerts: Vec::new(), standing: Vec::new() }
    }

    pub fn push(&mut self, mut ev: Event) {
        self.n += 1;
        if ev.event_id.is_empty() {
            ev.event_id = format!("e{:06}", self.n).into();
        }
        let (alerts, standing) = (&mut self.alerts, &mut self.standing);
        self.driver.event(ev, &mut |step| {
            alerts.append(&mut step.alerts);
            standing.append(&mut step.standing);
        });
    }

    pub fn finish(&mut self) -> &[Alert] {
        let (alerts, standing) = (&mut self.alerts, &mut self.standing);
        self.driver.finish(&mut |step| {
            alerts.append(&mut step.alerts);
            standing.append(&mut step.standing);
        });
        &self.alerts
    }

    pub fn engine(&mut self) -> &mut Engine<u64> {
        self.driver.engine_mut()
    }

    /// A hot reload as the service does one: the snoozes are read with the config.
    pub fn reload(&mut self, cfg: &Config) -> Result<crate::engine::Reloaded, crate::config::ConfigError> {
        let snoozes = crate::rules::snooze::Snoozes::for_config(cfg)?;
        self.engine().reload(cfg, snoozes)
    }

    pub fn rules_for(&mut self, seller: &str) -> Vec<String> {
        self.finish();
        self.alerts.iter().filter(|a| a.seller_id == seller).map(|a| a.rule.clone()).collect()
    }
}

fn ev(seller: &str, ts: Millis, body: Body) -> Event {
    Event { event_id: "".into(), seller_id: seller.into(), ts, body }
}

pub fn listing(seller: &str, ts: Millis, id: &str, category: &str, price: f64) -> Event {
    ev(
        seller,
        ts,
        Body::Listing(Listing {
            listing_id: id.into(),
            category: category.into(),
            price,
            shipping_fee: 0.0,
            stock: None,
        }),
    )
}

pub struct O<'a> {
    pub order: &'a str,
    pub buyer: &'a str,
    pub category: &'a str,
    pub price: f64,
    pub fee: f64,
    pub method: &'a str,
    pub grams: Option<u32>,
    pub listing: &'a str,
    pub route: Option<&'a str>,
    pub buyer_created_at: Option<Millis>,
}

impl Default for O<'_> {
    fn default() -> Self {
        O {
            order: "o",
            buyer: "b",
            category: "phones",
            price: 100.0,
            fee: 5.0,
            method: "standard",
            grams: Some(300),
            listing: "l",
            route: None,
            buyer_created_at: None,
        }
    }
}

pub fn order(seller: &str, ts: Millis, o: O) -> Event {
    ev(
        seller,
        ts,
        Body::OrderPlaced(OrderPlaced {
            order_id: o.order.into(),
            listing_id: o.listing.into(),
            buyer_id: o.buyer.into(),
            category: o.category.into(),
            price: o.price,
            quantity: 1,
            shipping_fee: o.fee,
            shipping_method: o.method.into(),
            destination_country: "DE".into(),
            weight_grams: o.grams,
            buyer_created_at: o.buyer_created_at,
            promised_dispatch_hours: 72,
            route: o.route.map(Into::into),
        }),
    )
}

pub fn shipped(seller: &str, ts: Millis, order: &str, carrier: &str, number: &str, method: &str) -> Event {
    ev(
        seller,
        ts,
        Body::OrderShipped(OrderShipped {
            order_id: order.into(),
            tracking_number: number.into(),
            carrier: carrier.into(),
            shipping_method: method.into(),
        }),
    )
}

pub fn scan(seller: &str, ts: Millis, order: &str, status: ScanStatus) -> Event {
    ev(
        seller,
        ts,
        Body::TrackingScan(TrackingScan {
            order_id: order.into(),
            tracking_number: "x".into(),
            carrier: "china_post".into(),
            status,
            country: None,
        }),
    )
}

pub fn delivered(seller: &str, ts: Millis, order: &str) -> Event {
    ev(seller, ts, Body::OrderDelivered { order_id: order.into() })
}

pub fn review(seller: &str, ts: Millis, order: &str, buyer: &str, rating: u8, created: Option<Millis>) -> Event {
    ev(
        seller,
        ts,
        Body::Review(Review { order_id: order.into(), buyer_id: buyer.into(), rating, buyer_created_at: created }),
    )
}

/// A valid UPU S10 number for serial `n` (check digit computed independently of the rules).
pub fn s10(n: u32) -> String {
    let serial = format!("{:08}", n % 100_000_000);
    let w = [8, 6, 4, 2, 3, 5, 9, 7];
    let sum: u32 = serial.bytes().zip(w).map(|(b, w)| (b - b'0') as u32 * w).sum();
    let c = match 11 - sum % 11 {
        10 => 0,
        11 => 5,
        c => c,
    };
    format!("RR{serial}{c}CN")
}

#[test]
fn s10_helper_matches_the_spec_example() {
    assert_eq!(s10(12345678).replace("RR", "RB").replace("CN", "GB"), "RB123456785GB");
}

pub fn cancelled(seller: &str, ts: Millis, order: &str, by: CancelledBy, reason: &str) -> Event {
    ev(seller, ts, Body::OrderCancelled { order_id: order.into(), by, reason: reason.into() })
}

pub fn dispute(seller: &str, ts: Millis, order: &str, reason: DisputeReason) -> Event {
    ev(seller, ts, Body::DisputeOpened { order_id: order.into(), reason, buyer_id: None })
}

pub fn message(seller: &str, ts: Millis, conversation: &str) -> Event {
    ev(seller, ts, Body::BuyerMessage { conversation_id: conversation.into(), buyer_id: "b".into() })
}

pub fn reply(seller: &str, ts: Millis, conversation: &str) -> Event {
    ev(seller, ts, Body::SellerReply { conversation_id: conversation.into() })
}

pub fn stocked_listing(seller: &str, ts: Millis, id: &str, price: f64, stock: u32) -> Event {
    let mut e = listing(seller, ts, id, "phones", price);
    if let Body::Listing(l) = &mut e.body {
        l.stock = Some(stock);
    }
    e
}
