//! `phantom_listing` (seed rule: do not post goods without a real opportunity to purchase them).
//! Flagged orders (each once): cancelled by the seller as out of stock, or accepted on a listing
//! whose last known stock is 0. Seller alert: ≥ `min_orders` flagged and ≥ `min_ratio` of its orders in the
//! window.

use serde_json::json;

use super::policy::RatePolicy;
use super::state::SellerState;
use super::Emitter;
use crate::alert::rfc3339;
use crate::config::PhantomListingConfig;
use crate::decode::Id;
use crate::decode::{hours_ms, CancelledBy, Event, Millis, OrderPlaced};
use crate::window::{RateWindow, Span};

#[derive(Debug, Default)]
pub struct State {
    window: RateWindow<Flagged>,
}

#[derive(Debug, Clone)]
struct Flagged {
    order_id: Id,
    signal: &'static str,
    listing_id: Option<Id>,
}

impl State {
    pub fn sweep(&mut self, span: Span, now: Millis) -> bool {
        self.window.sweep(span, now)
    }
}

pub(super) fn span(cfg: &PhantomListingConfig) -> Span {
    RateWindow::<()>::span(hours_ms(cfg.window_hours))
}

/// Counts the order; flags it when its listing's last known stock is 0.
pub fn on_order(
    cfg: &PhantomListingConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    o: &OrderPlaced,
    em: &mut Emitter,
) {
    let sold_out = seller.listings.get(&o.listing_id).is_some_and(|l| l.stock == Some(0));
    seller.phantom_listing.make().window.count_total(span(cfg), ev.ts);
    if sold_out {
        let f = Flagged {
            order_id: o.order_id.clone(),
            signal: "zero_stock_order",
            listing_id: Some(o.listing_id.clone()),
        };
        flag(cfg, seller, seller_id, ev, f, em);
    }
}

pub fn on_cancelled(
    cfg: &PhantomListingConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    (order_id, by, reason): (&str, CancelledBy, &str),
    em: &mut Emitter,
) {
    if by != CancelledBy::Seller || reason != cfg.out_of_stock_reason {
        return;
    }
    // An order counts once whatever its signals: one already flagged as a zero-stock order that is
    // now cancelled must not make two of the policy's "≥ min_orders orders".
    let flagged = seller.phantom_listing.get().map(|s| &s.window.flagged);
    if flagged.is_some_and(|l| l.iter().any(|(_, f)| &*f.order_id == order_id)) {
        return;
    }
    let listing_id = seller.orders.get(order_id).map(|o| o.listing_id.clone()).filter(|l| !l.is_empty());
    let f = Flagged { order_id: order_id.into(), signal: "out_of_stock_cancellation", listing_id };
    flag(cfg, seller, seller_id, ev, f, em);
}

fn flag(
    cfg: &PhantomListingConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    f: Flagged,
    em: &mut Emitter,
) {
    let st = &mut seller.phantom_listing.make().window;
    st.flag(ev.ts, f);
    let counts = st.counts(span(cfg), ev.ts);
    let items = |s: &SellerState| {
        let flagged = s.phantom_listing.get().into_iter().flat_map(|st| st.window.flagged.iter());
        flagged
            .map(|(t, f)| json!({ "order_id": &*f.order_id, "signal": f.signal, "listing_id": f.listing_id.as_deref(), "at": rfc3339(*t) }))
            .collect()
    };
    let policy = RatePolicy {
        rule: "phantom_listing",
        window_hours: cfg.window_hours,
        min_count: cfg.min_orders,
        min_ratio: cfg.min_ratio,
        scale: &cfg.severity,
        flagged_as: "for goods it could not sell (out-of-stock cancellations or sales of a listing with no stock)",
        out_of: "orders",
        chance: Some((cfg.honest_rate, cfg.max_chance)),
    };
    policy.emit(em, seller, seller_id, counts, items, || ev.event_id.to_string(), ev.ts);
}
