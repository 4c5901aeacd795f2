//! `shipping_fee_inflation` (seed rule: do not overstate the cost of sending).
//!
//! Per order: the fee is above `max_ratio_to_median` × the trailing median fee of the same shipping
//! method and weight band (non-zero fees, ≥ `min_samples`), or the price was moved into shipping:
//! fee above the item price while the price is below `cheap_item_ratio` of the category median and
//! the fee above `moved_fee_ratio` × the peer median. Express has its own baseline, so a buyer who
//! picked express is compared with express, and when an order names its route (optional
//! `origin_region` / `destination_region`) only with orders on the same route: freight follows
//! distance, and a long route is not an inflated fee. Seller alert: ≥ `min_orders` such orders in the window.

use serde_json::json;

use super::policy::{excess, round2};
use super::state::{Market, SellerState};
use super::{Emitter, Finding};
use crate::config::{Config, ShippingFeeConfig};
use crate::decode::{hours_ms, Event, Millis, OrderPlaced};
use crate::window::TimedLog;

#[derive(Debug, Default)]
pub struct State {
    flagged: TimedLog<Flagged>,
}

impl State {
    pub fn sweep(&mut self, window_ms: i64, now: Millis) -> bool {
        self.flagged.expire(window_ms, now);
        self.flagged.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Flagged {
    evidence: serde_json::Value,
    score: f64,
}

/// Index of the weight band (`weight_bands_grams` upper bounds; one past the last for heavier,
/// and a separate band for unknown weight).
pub fn weight_band(cfg: &ShippingFeeConfig, grams: Option<u32>) -> u8 {
    match grams {
        None => u8::MAX,
        Some(g) => cfg.weight_bands_grams.iter().position(|b| g <= *b).unwrap_or(cfg.weight_bands_grams.len()) as u8,
    }
}

fn band_label(cfg: &ShippingFeeConfig, band: u8) -> String {
    let bands = &cfg.weight_bands_grams;
    match band as usize {
        _ if band == u8::MAX => "unknown".into(),
        0 => format!("≤{}g", bands[0]),
        i if i < bands.len() => format!("{}–{}g", bands[i - 1] + 1, bands[i]),
        _ => format!(">{}g", bands[bands.len() - 1]),
    }
}

/// How an order's fee compares with its peers: the baselines it was judged against, and the signal
/// when it is out of line. Needs no seller state (see [`observe`]).
struct Assessment {
    band: u8,
    peer: Option<f64>,
    cat: Option<f64>,
    signal: Option<(&'static str, f64)>,
}

fn assess(cfg: &Config, market: &mut Market, o: &OrderPlaced, ts: Millis) -> Assessment {
    let sc = &cfg.shipping_fee_inflation;
    let band = weight_band(sc, o.weight_grams);
    let fee = o.shipping_fee;
    let cat = market.category_median(&o.category, ts, cfg.price_dumping.min_samples).map(|(m, _)| m);
    // One lookup of the peer baseline (its key is a lower-cased copy) for both the read and the insert.
    let baseline = market.fee_baseline(&o.shipping_method, band, o.route.as_deref());
    let peer = baseline.median(ts, sc.min_samples as u64);
    let mut signal = None;
    if let Some(p) = peer.filter(|_| fee > 0.0) {
        if fee > sc.max_ratio_to_median * p {
            signal = Some(("excessive_fee", excess(fee, sc.max_ratio_to_median * p)));
        } else if let Some(c) = cat {
            if fee > o.price && o.price < sc.cheap_item_ratio * c && fee > sc.moved_fee_ratio * p {
                signal = Some(("price_in_shipping", excess(fee, sc.moved_fee_ratio * p)));
            }
        }
    }
    // Only unflagged fees feed the baseline, so inflated fees cannot raise their own bar.
    if signal.is_none() && fee > 0.0 {
        baseline.insert(ts, fee);
    }
    Assessment { band, peer, cat, signal }
}

/// An order of a seller another instance judges: it still feeds the fee baselines.
pub fn observe(cfg: &Config, market: &mut Market, o: &OrderPlaced, ts: Millis) {
    assess(cfg, market, o, ts);
}

pub fn on_order(
    cfg: &Config,
    market: &mut Market,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    o: &OrderPlaced,
    em: &mut Emitter,
) {
    let sc = &cfg.shipping_fee_inflation;
    let fee = o.shipping_fee;
    let Assessment { band, peer, cat, signal } = assess(cfg, market, o, ev.ts);
    let Some((kind, score)) = signal else { return };
    let evidence = json!({
        "order_id": &*o.order_id,
        "signal": kind,
        "shipping_fee": round2(fee),
        "item_price": round2(o.price),
        "shipping_method": &*o.shipping_method,
        "weight_band": band_label(sc, band),
        "route": o.route.as_deref(),
        "peer_median_fee": peer.map(round2),
        "category": &*o.category,
        "category_median_price": cat.map(round2),
        "at": crate::alert::rfc3339(ev.ts),
    });
    let st = seller.shipping_fee.make();
    st.flagged.push(ev.ts, Flagged { evidence, score });
    st.flagged.expire(hours_ms(sc.window_hours), ev.ts);
    let n = st.flagged.len() as u64;
    if n < sc.min_orders as u64 {
        return;
    }
    let mean_excess = st.flagged.iter().map(|(_, f)| f.score).sum::<f64>() / n as f64;
    let score = (excess(n as f64, sc.min_orders as f64) * mean_excess).max(1.0);
    let evidence = json!({
        "window_hours": sc.window_hours,
        "flagged_orders": n,
        "thresholds": { "min_orders": sc.min_orders, "max_ratio_to_median": sc.max_ratio_to_median,
                        "cheap_item_ratio": sc.cheap_item_ratio, "moved_fee_ratio": sc.moved_fee_ratio,
                        "min_samples": sc.min_samples },
        "orders": st.flagged.iter().map(|(_, f)| f.evidence.clone()).collect::<Vec<_>>(),
    });
    let message = format!(
        "Seller {seller_id}: {n} orders in {}h with shipping fees far above what peers charge for the same method and weight (latest: {:.2} USD, {kind}).",
        sc.window_hours, fee
    );
    em.emit(seller_id, seller, Finding::at_event("shipping_fee_inflation", &sc.severity, score, ev, evidence, message));
}
