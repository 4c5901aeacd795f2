//! `rating_manipulation` (seed rule: do not cheat ratings).
//!
//! * `rating_manipulation.suspicious_reviews`: in any `window_hours` window, ≥ `min_five_star`
//!   five-star reviews of which ≥ `min_suspicious_ratio` come from accounts younger than
//!   `new_account_days` or are for orders the seller has no record of delivering.
//! * `rating_manipulation.burst`: five-star reviews in the window are ≥ `burst_min_five_star`,
//!   ≥ `burst_factor` × the seller's own daily baseline of the previous `baseline_days`, and more
//!   than `burst_per_delivery` × the orders delivered in the last `burst_delivery_days`. The
//!   baseline absorbs honest growth; the delivery bound absorbs the review wave that follows a sale
//!   (a buyer reviews an order once, after receiving it).

use serde_json::json;

use super::policy::{excess, round2, round3};
use super::state::SellerState;
use super::{Emitter, Finding};
use crate::config::RatingConfig;
use crate::decode::Id;
use crate::decode::{hours_ms, Event, Millis, Review, DAY_MS};
use crate::window::{Counter, Span, TimedLog};

#[derive(Debug, Default)]
pub struct State {
    five_star: TimedLog<Note>,
    five_star_daily: Counter,
    deliveries: Counter,
    /// The drip signal's counts and cited reviews ([`super::drip`]).
    pub(super) drip: super::drip::State,
}

impl State {
    pub(super) fn sweep(&mut self, s: &Spans, now: Millis) -> bool {
        self.five_star.expire(s.window_ms, now);
        self.five_star_daily.expire(s.daily, now);
        self.deliveries.expire(s.deliveries, now);
        let drip_empty = self.drip.sweep(s.drip, now);
        self.five_star.is_empty() && self.five_star_daily.is_empty() && self.deliveries.is_empty() && drip_empty
    }
}

#[derive(Debug, Clone)]
struct Note {
    order_id: Id,
    buyer_id: Id,
    new_account: bool,
    undelivered: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Spans {
    window_ms: i64,
    /// Daily buckets reaching back over the baseline plus the current and previous day.
    daily: Span,
    deliveries: Span,
    drip: Span,
}

pub(super) fn spans(cfg: &RatingConfig) -> Spans {
    let days = cfg.baseline_days as i64 + 2;
    Spans {
        window_ms: hours_ms(cfg.window_hours),
        daily: Span::new(days * DAY_MS, days),
        deliveries: Span::new(cfg.burst_delivery_days as i64 * DAY_MS, cfg.burst_delivery_days as i64 * 24),
        drip: super::drip::span(&cfg.drip),
    }
}

/// An order reached the buyer (confirmation or a carrier's delivered scan; counted once).
pub fn on_delivered(cfg: &RatingConfig, seller: &mut SellerState, order_id: &str, ts: Millis) {
    if seller.orders.mark_delivered(order_id) {
        seller.rating.make().deliveries.add(spans(cfg).deliveries, ts, 1);
    }
}

pub fn on_review(
    cfg: &RatingConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    r: &Review,
    em: &mut Emitter,
) {
    if r.rating != 5 {
        return;
    }
    let s = spans(cfg);
    let order = seller.orders.get(&r.order_id);
    let new_account = super::state::new_account(r, order, ev.ts, cfg.new_account_days);
    let undelivered = !order.is_some_and(|o| o.delivered);
    let st = seller.rating.make();
    st.five_star
        .push(ev.ts, Note { order_id: r.order_id.clone(), buyer_id: r.buyer_id.clone(), new_account, undelivered });
    st.five_star.expire(s.window_ms, ev.ts);
    st.five_star_daily.add(s.daily, ev.ts, 1);
    st.five_star_daily.expire(s.daily, ev.ts);

    let n = st.five_star.len() as u64;
    let new_accounts = st.five_star.iter().filter(|(_, x)| x.new_account).count() as u64;
    let undelivered_n = st.five_star.iter().filter(|(_, x)| x.undelivered).count() as u64;
    let suspicious = st.five_star.iter().filter(|(_, x)| x.new_account || x.undelivered).count() as u64;
    // Signal 1: enough five-star reviews, mostly suspicious.
    let ratio = suspicious as f64 / n as f64;
    if n >= cfg.min_five_star as u64 && ratio >= cfg.min_suspicious_ratio {
        let score = (excess(n as f64, cfg.min_five_star as f64) * excess(ratio, cfg.min_suspicious_ratio)).sqrt();
        let rule = "rating_manipulation.suspicious_reviews";
        // Evidence lists every review in the window: build it only if the cooldown lets it out.
        if em.suppressed(seller, rule, ev.ts, cfg.severity.severity(score)) {
            return burst(cfg, seller, seller_id, ev, n, s, em);
        }
        let evidence = json!({
            "window_hours": cfg.window_hours,
            "five_star_reviews": n,
            "suspicious": suspicious,
            "from_new_accounts": new_accounts,
            "for_undelivered_orders": undelivered_n,
            "suspicious_ratio": round3(ratio),
            "thresholds": { "min_five_star": cfg.min_five_star, "min_suspicious_ratio": cfg.min_suspicious_ratio,
                            "new_account_days": cfg.new_account_days },
            "reviews": review_evidence(seller.rating.get()),
        });
        let message = format!(
            "Seller {seller_id}: {n} five-star reviews in {}h, {suspicious} of them suspicious ({new_accounts} from accounts younger than {} days, {undelivered_n} for orders never delivered).",
            cfg.window_hours, cfg.new_account_days
        );
        em.emit(seller_id, seller, Finding::at_event(rule, &cfg.severity, score, ev, evidence, message));
    }
    burst(cfg, seller, seller_id, ev, n, s, em)
}

/// Signal 2: a burst against the seller's own baseline that recent deliveries cannot explain.
fn burst(
    cfg: &RatingConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    n: u64,
    s: Spans,
    em: &mut Emitter,
) {
    let st = seller.rating.make();
    let days = cfg.baseline_days as i64;
    // Whole days before yesterday: the burst itself never feeds its own baseline.
    let baseline_total = st.five_star_daily.sum_range(s.daily, ev.ts - (days + 1) * DAY_MS, ev.ts - 2 * DAY_MS);
    let baseline = (baseline_total as f64 / days as f64).max(cfg.baseline_floor_per_day);
    let delivered = st.deliveries.count(s.deliveries, ev.ts);
    let delivery_bound = cfg.burst_per_delivery * delivered as f64;
    if n >= cfg.burst_min_five_star as u64 && n as f64 >= cfg.burst_factor * baseline && n as f64 > delivery_bound {
        let score = excess(n as f64, cfg.burst_factor * baseline).min(excess(n as f64, delivery_bound.max(1.0)));
        let score = score.max(1.0);
        let rule = "rating_manipulation.burst";
        if em.suppressed(seller, rule, ev.ts, cfg.severity.severity(score)) {
            return;
        }
        let evidence = json!({
            "window_hours": cfg.window_hours,
            "five_star_reviews": n,
            "baseline_per_day": round2(baseline),
            "baseline_days": cfg.baseline_days,
            "delivered_orders": delivered,
            "delivery_days": cfg.burst_delivery_days,
            "thresholds": { "burst_min_five_star": cfg.burst_min_five_star, "burst_factor": cfg.burst_factor,
                            "burst_per_delivery": cfg.burst_per_delivery },
            "reviews": review_evidence(seller.rating.get()),
        });
        let message = format!(
            "Seller {seller_id}: {n} five-star reviews in {}h against a baseline of {baseline:.1}/day and only {delivered} orders delivered in {} days.",
            cfg.window_hours, cfg.burst_delivery_days
        );
        em.emit(seller_id, seller, Finding::at_event(rule, &cfg.severity, score, ev, evidence, message));
    }
}

fn review_evidence(st: Option<&State>) -> Vec<serde_json::Value> {
    st.into_iter()
        .flat_map(|st| st.five_star.iter())
        .map(|(t, x)| {
            json!({ "order_id": &*x.order_id, "buyer_id": &*x.buyer_id, "at": crate::alert::rfc3339(*t),
                    "new_account": x.new_account, "undelivered": x.undelivered })
        })
        .collect()
}
