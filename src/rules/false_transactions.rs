//! `false_transactions` (seed rule: false transactions are prohibited; order brushing).
//!
//! * `false_transactions.order_brushing`: Shopee's public 2020 definition — in some interval
//!   [t, t + 1 h] (every possible interval, not only those starting at an order), the seller's orders
//!   ÷ unique buyers ≥ 3. An interval holds *every* order inside it, so checked exactly: an order at
//!   o is in [t, t + 1 h] for t in [o − 1 h, o], so the content changes only at those points; each
//!   point p, and the open stretch just after it (t = p + ½ ms: times are whole ms), is one distinct
//!   content. A content is judged once every order up to t + 1 h is in, by event-time timers just
//!   after each order time and one hour after it.
//! * `false_transactions.repeat_buyers`: several buyers each placing ≥ 3 orders with the seller in the
//!   window.
//! * `false_transactions.scanless_delivery`: orders confirmed delivered that no carrier ever scanned,
//!   ≥ N and ≥ r % of the seller's deliveries.
//! * `false_transactions.new_account_cluster`: new accounts buying the seller's cheapest item and
//!   reviewing it five stars.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use serde_json::json;

use super::policy::{excess, round3, RatePolicy};
use super::state::SellerState;
use super::{Emitter, Finding, Map, Set};
use crate::alert::rfc3339;
use crate::config::FalseTransactionsConfig;
use crate::decode::Id;
use crate::decode::{hours_ms, Event, Millis, OrderPlaced, Review};
use crate::window::{Lazy, RateWindow, Span, TimedLog};

/// (buyer, order id) of one order.
type OrderOf = (Id, Id);

#[derive(Debug, Default)]
pub struct State {
    /// Event time of the last order that has a brushing check scheduled. Outside the lazy windows:
    /// a late order at that time must not schedule a second check once the windows are freed.
    checked_up_to: Option<Millis>,
    /// Brushing: interval starts judged so far, in half milliseconds (2t, so that t = p + ½ ms is
    /// whole).
    judged_to: Option<i64>,
    windows: Lazy<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    /// Orders of the brushing window, exact.
    recent: TimedLog<OrderOf>,
    /// Each buyer's order times in the window.
    buyers: Map<Id, VecDeque<Millis>>,
    /// (order time, buyer) for each order in `buyers`, earliest first: a sweep visits only the
    /// buyers with an order leaving the window, not every buyer of the window each hour (the
    /// pass was the engine's largest source of cache misses). Entries for orders `on_order`
    /// already dropped stay until their time comes; visiting them is a no-op.
    buyer_expiry: BinaryHeap<Reverse<(Millis, Id)>>,
    /// Buyers at or over the repeat threshold, with the last time they were.
    repeaters: Map<Id, Millis>,
    scanless: RateWindow<Id>,
    cluster: TimedLog<(Id, Id)>,
}

impl State {
    pub fn sweep(&mut self, s: &Spans, now: Millis) -> bool {
        self.windows.sweep(|w| w.sweep(s, now))
    }
}

impl Windows {
    /// Records one order of `buyer` at `ts`; returns the buyer's orders in the window ending then.
    fn buyer_order(&mut self, buyer: &Id, ts: Millis, len: i64) -> usize {
        // The buyer id is copied only for a buyer new to the window.
        let q = match self.buyers.get_mut(&**buyer) {
            Some(q) => q,
            None => self.buyers.entry(buyer.clone()).or_default(),
        };
        q.push_back(ts);
        while q.front().is_some_and(|t| *t <= ts - len) {
            q.pop_front();
        }
        self.buyer_expiry.push(Reverse((ts, buyer.clone())));
        q.len()
    }

    fn sweep(&mut self, s: &Spans, now: Millis) -> bool {
        let len = s.window_ms;
        self.recent.expire(s.recent_ms, now);
        // A buyer's queue is in arrival order: its front leaves first, as in `on_order`.
        while self.buyer_expiry.peek().is_some_and(|Reverse((t, _))| *t <= now - len) {
            let Some(Reverse((_, buyer))) = self.buyer_expiry.pop() else { break };
            let Some(q) = self.buyers.get_mut(&buyer) else { continue };
            while q.front().is_some_and(|t| *t <= now - len) {
                q.pop_front();
            }
            if q.is_empty() {
                self.buyers.remove(&buyer);
            }
        }
        self.repeaters.retain(|_, t| *t > now - len);
        self.cluster.expire(len, now);
        let scanless = self.scanless.sweep(s.scanless, now);
        self.recent.is_empty()
            && self.buyers.is_empty()
            && self.repeaters.is_empty()
            && self.cluster.is_empty()
            && scanless
    }
}

/// What [`State::sweep`] needs from the config, computed once.
#[derive(Debug, Clone)]
pub struct Spans {
    window_ms: i64,
    recent_ms: i64,
    scanless: Span,
}

pub(super) fn spans(cfg: &FalseTransactionsConfig) -> Spans {
    // Interval starts are judged up to an hour behind the newest order, and their orders reach an
    // hour past them.
    Spans { window_ms: hours_ms(cfg.window_hours), recent_ms: 2 * brushing_ms(cfg) + 1, scanless: span(cfg) }
}

fn brushing_ms(cfg: &FalseTransactionsConfig) -> i64 {
    (cfg.brushing_window_minutes * 60_000.0).round() as i64
}

fn span(cfg: &FalseTransactionsConfig) -> Span {
    RateWindow::<()>::span(hours_ms(cfg.window_hours))
}

/// Records an order. Returns the event times at which to judge brushing intervals: just after it
/// (those ending at it) and one window later (those starting at it), if none are scheduled yet.
pub fn on_order(
    cfg: &FalseTransactionsConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    o: &OrderPlaced,
    em: &mut Emitter,
) -> Option<[Millis; 2]> {
    let ft = &mut seller.false_transactions;
    let check = (ft.checked_up_to != Some(ev.ts)).then(|| {
        ft.checked_up_to = Some(ev.ts);
        [ev.ts + 1, ev.ts + brushing_ms(cfg) + 1]
    });
    let st = ft.windows.make();
    st.recent.push(ev.ts, (o.buyer_id.clone(), o.order_id.clone()));

    let len = hours_ms(cfg.window_hours);
    // Only an order from a buyer at the threshold can complete the evidence.
    if st.buyer_order(&o.buyer_id, ev.ts, len) < cfg.repeat_min_orders as usize {
        return check;
    }
    st.repeaters.insert(o.buyer_id.clone(), ev.ts);
    st.repeaters.retain(|_, t| *t > ev.ts - len);
    let n = st.repeaters.len();
    let rule = "false_transactions.repeat_buyers";
    let score = excess(n as f64, cfg.repeat_min_buyers as f64);
    if n >= cfg.repeat_min_buyers as usize && !em.suppressed(seller, rule, ev.ts, cfg.severity.severity(score)) {
        let st = &*seller.false_transactions.windows.make();
        let repeat: BTreeMap<&str, usize> =
            st.repeaters.keys().map(|b| (&**b, st.buyers.get(b).map_or(0, |q| q.len()))).collect();
        let evidence = json!({
            "window_hours": cfg.window_hours,
            "repeat_buyers": repeat,
            "thresholds": { "repeat_min_orders": cfg.repeat_min_orders, "repeat_min_buyers": cfg.repeat_min_buyers },
        });
        let message = format!(
            "Seller {seller_id}: {n} buyers each placed ≥{} orders with this seller within {}h (order farming).",
            cfg.repeat_min_orders, cfg.window_hours
        );
        let f = Finding::at_event(rule, &cfg.severity, score, ev, evidence, message);
        em.emit(seller_id, seller, f);
    }
    check
}

/// Timer: every order up to `at − 1` is in, so every interval [t, t + window] with t + window ≤
/// at − 1 is complete: judge those not judged yet, and alert on the worst with ≥ k orders per buyer.
pub fn on_brushing_check(
    cfg: &FalseTransactionsConfig,
    seller: &mut SellerState,
    seller_id: &str,
    at: Millis,
    em: &mut Emitter,
) {
    let window = brushing_ms(cfg);
    let upto = 2 * (at - 1 - window);
    let from = seller.false_transactions.judged_to.map_or(i64::MIN, |u| u + 1);
    if upto < from {
        return;
    }
    seller.false_transactions.judged_to = Some(upto);
    // No windows: no order in any interval.
    let Some(st) = seller.false_transactions.windows.get_mut() else { return };
    // Orders before the first start still to judge (2o < from) are in no interval to come.
    if from > i64::MIN {
        st.recent.expire(1, (from - 1).div_euclid(2) + 1);
    }
    let orders: Vec<&(Millis, OrderOf)> = st.recent.iter().collect();
    let k = cfg.brushing_min_orders_per_buyer as usize;
    let Some((u, n, unique)) = worst_interval(&orders, window, from, upto, k) else { return };
    let ratio = n as f64 / unique as f64;
    let score = excess(ratio, k as f64);
    let rule = "false_transactions.order_brushing";
    let inside = contents(&orders, window, u);
    let (first, last) = (inside[0].0, inside[inside.len() - 1].0);
    let mut by_buyer: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, (b, _)) in inside.iter().copied() {
        *by_buyer.entry(b).or_default() += 1;
    }
    let evidence = json!({
        "interval_start": rfc3339(first),
        "interval_end": rfc3339(last),
        "orders": n,
        "unique_buyers": unique,
        "orders_per_buyer": round3(ratio),
        "orders_by_buyer": by_buyer,
        "order_ids": inside.iter().map(|(_, (_, o))| &**o).collect::<Vec<_>>(),
        "thresholds": { "window_minutes": cfg.brushing_window_minutes, "min_orders_per_buyer": k },
    });
    let message = format!(
        "Seller {seller_id}: {n} orders from {unique} buyers between {} and {}, and none other within an hour-long interval around them ({ratio:.1} per buyer): order brushing.",
        rfc3339(first),
        rfc3339(last)
    );
    if em.suppressed(seller, rule, last, cfg.severity.severity(score)) {
        return;
    }
    let finding = Finding {
        rule,
        score,
        severity: cfg.severity.severity(score),
        trigger: format!("order_brushing@{last}"),
        event_time: last,
        evidence,
        message,
    };
    em.emit(seller_id, seller, finding);
}

/// The orders in [t, t + window], t = u / 2 (`orders` sorted by time).
fn contents<'a>(orders: &'a [&'a (Millis, OrderOf)], window: i64, u: i64) -> &'a [&'a (Millis, OrderOf)] {
    let lo = orders.partition_point(|(o, _)| 2 * o < u);
    let hi = orders.partition_point(|(o, _)| 2 * (o - window) <= u);
    &orders[lo..hi.max(lo)]
}

/// Of the distinct interval contents with a start in (from, upto] (half ms) and ≥ `k` orders per
/// buyer, the one with the most orders per buyer (the fewest orders on a tie): (2t, orders, buyers).
fn worst_interval(
    orders: &[&(Millis, OrderOf)],
    window: i64,
    from: i64,
    upto: i64,
    k: usize,
) -> Option<(i64, usize, usize)> {
    // Each point where an order enters or leaves, and the stretch just after it.
    let mut starts: Vec<i64> = orders.iter().flat_map(|(o, _)| [2 * (o - window), 2 * o]).collect();
    starts.sort_unstable();
    starts.dedup();
    // And the first start still to judge: the stretch it lies in may begin at an order already
    // dropped (one before every interval still to judge).
    let candidates =
        std::iter::once(from).chain(starts.into_iter().flat_map(|p| [p, p + 1])).filter(|u| (from..=upto).contains(u));
    let mut buyers = Set::<&str>::with_capacity_and_hasher(orders.len(), Default::default());
    let mut best: Option<(i64, usize, usize)> = None;
    for u in candidates {
        buyers.clear();
        let mut n = 0;
        for (_, (b, _)) in contents(orders, window, u).iter().copied() {
            buyers.insert(b);
            n += 1;
        }
        let m = buyers.len();
        if m > 0 && n >= k * m && best.is_none_or(|(_, bn, bm)| n * bm > bn * m || (n * bm == bn * m && n < bn)) {
            best = Some((u, n, m));
        }
    }
    best
}

/// A buyer confirmed delivery: was the parcel ever scanned by a carrier?
pub fn on_delivered(
    cfg: &FalseTransactionsConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    order_id: &str,
    em: &mut Emitter,
) {
    let sp = span(cfg);
    let scanless = seller.orders.get(order_id).is_some_and(|o| o.shipped_ts.is_some() && !o.scanned);
    let st = &mut seller.false_transactions.windows.make().scanless;
    st.count_total(sp, ev.ts);
    if !scanless {
        return;
    }
    st.flag(ev.ts, order_id.into());
    let counts = st.counts(sp, ev.ts);
    let items = |s: &SellerState| {
        let flagged = s.false_transactions.windows.get().into_iter().flat_map(|w| w.scanless.flagged.iter());
        flagged.map(|(t, o)| json!({ "order_id": &**o, "delivered_at": rfc3339(*t) })).collect()
    };
    let policy = RatePolicy {
        rule: "false_transactions.scanless_delivery",
        window_hours: cfg.window_hours,
        min_count: cfg.scanless_min_orders,
        min_ratio: cfg.scanless_min_ratio,
        scale: &cfg.severity,
        flagged_as: "never scanned by a carrier",
        out_of: "orders confirmed delivered",
        // A parcel delivered with no scan at all is not something honest sellers do now and then.
        chance: None,
    };
    policy.emit(em, seller, seller_id, counts, items, || ev.event_id.to_string(), ev.ts);
}

/// A five-star review: from a new account that bought the seller's cheapest item?
pub fn on_review(
    cfg: &FalseTransactionsConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    r: &Review,
    em: &mut Emitter,
) {
    if r.rating != 5 {
        return;
    }
    let Some(order) = seller.orders.get(&r.order_id) else { return };
    let new_account = super::state::new_account(r, Some(order), ev.ts, cfg.new_account_days);
    let cheapest = seller.listings.cheapest_price().is_some_and(|p| order.price > 0.0 && order.price <= p * 1.000_001);
    if !(new_account && cheapest) {
        return;
    }
    let len = hours_ms(cfg.window_hours);
    let st = &mut seller.false_transactions.windows.make().cluster;
    st.push(ev.ts, (r.buyer_id.clone(), r.order_id.clone()));
    st.expire(len, ev.ts);
    let buyers: std::collections::BTreeSet<&str> = st.iter().map(|(_, (b, _))| &**b).collect();
    if buyers.len() < cfg.cluster_min_buyers as usize {
        return;
    }
    let n = buyers.len();
    let evidence = json!({
        "window_hours": cfg.window_hours,
        "new_account_buyers": buyers,
        "reviews": st.iter().map(|(t, (b, o))| json!({ "buyer_id": &**b, "order_id": &**o, "at": rfc3339(*t) })).collect::<Vec<_>>(),
        "thresholds": { "cluster_min_buyers": cfg.cluster_min_buyers, "new_account_days": cfg.new_account_days },
    });
    let message = format!(
        "Seller {seller_id}: {n} accounts younger than {} days bought its cheapest item and rated it five stars within {}h.",
        cfg.new_account_days, cfg.window_hours
    );
    let score = excess(n as f64, cfg.cluster_min_buyers as f64);
    let f = Finding::at_event("false_transactions.new_account_cluster", &cfg.severity, score, ev, evidence, message);
    em.emit(seller_id, seller, f);
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The expiry heap leaves each buyer's queue as a pass over every buyer would, also when
        /// orders arrive out of time order.
        #[test]
        fn buyer_expiry_matches_a_pass_over_every_buyer(
            ops in proptest::collection::vec((0u8..6, -3i64..10, proptest::bool::ANY), 1..200),
        ) {
            const H: i64 = 3_600_000;
            let len = 24 * H;
            let mut w = Windows::default();
            let mut reference: BTreeMap<String, VecDeque<Millis>> = BTreeMap::new();
            let mut now = 0;
            for (buyer, hours, sweep) in ops {
                now += hours * H / 2;
                let id: Id = format!("b{buyer}").into();
                let n = w.buyer_order(&id, now, len);
                let q = reference.entry(id.to_string()).or_default();
                q.push_back(now);
                while q.front().is_some_and(|t| *t <= now - len) {
                    q.pop_front();
                }
                proptest::prop_assert_eq!(n, q.len());
                if sweep {
                    w.sweep(&Spans { window_ms: len, recent_ms: H, scanless: span_of(len) }, now);
                    reference.retain(|_, q| {
                        while q.front().is_some_and(|t| *t <= now - len) {
                            q.pop_front();
                        }
                        !q.is_empty()
                    });
                    let got: BTreeMap<String, VecDeque<Millis>> =
                        w.buyers.iter().map(|(b, q)| (b.to_string(), q.clone())).collect();
                    proptest::prop_assert_eq!(&got, &reference);
                }
            }
        }
    }

    fn span_of(len: i64) -> Span {
        RateWindow::<()>::span(len)
    }
}
