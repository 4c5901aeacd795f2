//! Incremental sweeping of per-seller state.
//!
//! Once per event-time interval the detector "sweeps": expired orders, listings, windows and
//! cooldowns are dropped, and a seller left with nothing is evicted. Visiting every seller each
//! interval made the cost per event grow with the seller population, so the sweep is split:
//!
//! * Expiry is applied lazily. A seller's state is brought up to the latest sweep time when it is
//!   next read (event, timer, ring alert). Every expiry is "drop what is older than now − window",
//!   so sweeping at the latest time alone leaves the same state as sweeping at each time in turn.
//! * Eviction stays exact. Each seller sits in a queue under a lower bound of the first time it
//!   could be empty; a sweep visits only sellers whose bound has passed, so it evicts the same
//!   sellers at the same sweep as a full pass would.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{fake_shipment, late_dispatch, phantom_listing, slow_response};
use super::{false_transactions, rating, Detector, SellerState};
use crate::config::Config;
use crate::decode::Id;
use crate::decode::{hours_ms, Millis, DAY_MS};
use crate::window::Span;

/// Window lengths the sweep needs, computed once from the config.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub order_ms: i64,
    pub listing_ms: i64,
    /// The longest cooldown: how long alert history is kept.
    pub cooldown_ms: i64,
    /// The standing window (`standing.window_days`), as its counters and violations use it.
    pub standing_ms: i64,
    pub fake_shipment: Span,
    pub rating: rating::Spans,
    pub shipping_fee_ms: i64,
    pub false_transactions: false_transactions::Spans,
    pub phantom_listing: Span,
    pub late_dispatch: Span,
    pub small_parcel_ms: i64,
    pub reply_turn_ms: i64,
    pub slow_response: Span,
}

impl Plan {
    pub fn new(cfg: &Config, cooldown_ms: i64) -> Self {
        Plan {
            order_ms: hours_ms(cfg.state.order_retention_hours),
            listing_ms: hours_ms(cfg.state.listing_retention_hours),
            cooldown_ms,
            standing_ms: (cfg.standing.window_days * DAY_MS as f64) as i64,
            fake_shipment: fake_shipment::span(&cfg.fake_shipment),
            rating: rating::spans(&cfg.rating_manipulation),
            shipping_fee_ms: hours_ms(cfg.shipping_fee_inflation.window_hours),
            false_transactions: false_transactions::spans(&cfg.false_transactions),
            phantom_listing: phantom_listing::span(&cfg.phantom_listing),
            late_dispatch: late_dispatch::span(&cfg.late_dispatch),
            small_parcel_ms: hours_ms(cfg.small_parcel_restriction.window_hours),
            reply_turn_ms: slow_response::turn_ms(&cfg.slow_response),
            slow_response: slow_response::span(&cfg.slow_response),
        }
    }
}

/// Every window length state is bucketed or expired by, named by (one of) its config keys: what a
/// hot reload must leave alone. The cooldown only sets how long alert history is kept: not here.
pub(super) fn windows(p: &Plan, cfg: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("state.order_retention_hours", p.order_ms.to_string()),
        ("state.listing_retention_hours", p.listing_ms.to_string()),
        ("standing.window_days", p.standing_ms.to_string()),
        ("fake_shipment.window_hours", format!("{:?}", p.fake_shipment)),
        // Named first: the generic entry below holds it too, and the first difference is reported.
        ("rating_manipulation.drip.window_days", cfg.rating_manipulation.drip.window_days.to_string()),
        ("rating_manipulation windows", format!("{:?}", p.rating)),
        ("shipping_fee_inflation.window_hours", p.shipping_fee_ms.to_string()),
        ("false_transactions windows", format!("{:?}", p.false_transactions)),
        ("phantom_listing.window_hours", format!("{:?}", p.phantom_listing)),
        ("late_dispatch.window_hours", format!("{:?}", p.late_dispatch)),
        ("small_parcel_restriction.window_hours", p.small_parcel_ms.to_string()),
        ("slow_response windows", format!("{:?} {:?}", p.reply_turn_ms, p.slow_response)),
        ("rating_manipulation.drip.history_days", cfg.rating_manipulation.drip.history_days.to_string()),
        ("rating_manipulation.ring_window_hours", cfg.rating_manipulation.ring_window_hours.to_string()),
        ("price_dumping.median_window_hours", cfg.price_dumping.median_window_hours.to_string()),
        ("shipping_fee_inflation.median_window_hours", cfg.shipping_fee_inflation.median_window_hours.to_string()),
        ("fake_shipment.reuse_window_hours", cfg.fake_shipment.reuse_window_hours.to_string()),
        ("price_dumping.sketch_relative_accuracy", cfg.price_dumping.sketch_relative_accuracy.to_string()),
        ("state.sweep_interval_minutes", cfg.state.sweep_interval_minutes.to_string()),
    ]
}

pub(super) struct Sweeps {
    pub plan: Plan,
    interval_ms: i64,
    next: Millis,
    /// Time of the latest sweep: a seller's state is read as if swept then.
    pub last: Millis,
    /// (no eviction before this time, seller). Lazily invalidated: an entry counts only while it
    /// equals the seller's `queued`.
    queue: BinaryHeap<Reverse<(Millis, Id)>>,
}

impl Sweeps {
    pub fn new(cfg: &Config, cooldown_ms: i64) -> Self {
        Sweeps {
            plan: Plan::new(cfg, cooldown_ms),
            interval_ms: hours_ms(cfg.state.sweep_interval_minutes / 60.0),
            next: Millis::MIN,
            last: Millis::MIN,
            queue: BinaryHeap::new(),
        }
    }

    /// After a seller changed: queue it earlier if it could now be empty sooner.
    pub fn note(&mut self, seller_id: &str, s: &mut SellerState) {
        let due = s.empty_lower_bound(&self.plan);
        if s.queued.is_none_or(|q| due < q) {
            s.queued = Some(due);
            self.queue.push(Reverse((due, seller_id.into())));
        }
    }
}

/// Brings a seller's state up to the latest sweep before it is read. True when that leaves nothing:
/// the caller then evicts the seller (the queue normally did so at the sweep itself).
pub(super) fn catch_up_state(cfg: &Config, sweeps: &Sweeps, s: &mut SellerState) -> bool {
    s.swept_at < sweeps.last && s.sweep(cfg, &sweeps.plan, sweeps.last)
}

impl Detector {
    /// [`catch_up_state`] by id, evicting the seller if nothing is left.
    pub(super) fn catch_up(&mut self, seller_id: &str) {
        let Some(s) = self.sellers.get_mut(seller_id) else { return };
        if catch_up_state(&self.cfg, &self.sweeps, s) {
            self.sellers.remove(seller_id);
            self.stats.sellers_evicted += 1;
        }
    }

    /// Once an event-time sweep interval: evict the sellers left with nothing (only those whose
    /// bound has passed can be), so memory tracks the live population, not history.
    pub(super) fn maybe_sweep(&mut self, now: Millis) {
        if now < self.sweeps.next {
            return;
        }
        self.sweeps.next = now + self.sweeps.interval_ms;
        self.sweeps.last = now;
        let sw = &mut self.sweeps;
        while sw.queue.peek().is_some_and(|Reverse((due, _))| *due <= now) {
            let Some(Reverse((due, id))) = sw.queue.pop() else { break };
            let Some(s) = self.sellers.get_mut(&id).filter(|s| s.queued == Some(due)) else { continue };
            s.queued = None;
            if s.sweep(&self.cfg, &sw.plan, now) {
                self.sellers.remove(&id);
                self.stats.sellers_evicted += 1;
            } else {
                // Not empty yet although the bound has passed (state the bound does not cover):
                // look again at the next sweep at the earliest.
                let due = s.empty_lower_bound(&sw.plan).max(now + 1);
                s.queued = Some(due);
                sw.queue.push(Reverse((due, id)));
            }
        }
        self.market.sweep(now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{listing, message, order, review, D, H, O, T0};
    use super::*;
    use crate::decode::Event;

    /// The incremental detector against one that sweeps every seller at every sweep (as before).
    fn run_both(events: &[Event]) -> (Detector, Vec<(Millis, bool)>) {
        let cfg = Config::default();
        let (mut inc, mut full) = (Detector::new(&cfg).unwrap(), Detector::new(&cfg).unwrap());
        let mut seen = Vec::new();
        for ev in events {
            let mut out = Vec::new();
            inc.on_event(ev, &mut out);
            full.on_event(ev, &mut out);
            let ids: Vec<Id> = full.sellers.keys().cloned().collect();
            for id in ids {
                full.catch_up(&id);
            }
            let mut a: Vec<_> = inc.sellers.keys().collect();
            let mut b: Vec<_> = full.sellers.keys().collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "tracked sellers differ at {}", ev.ts);
            assert_eq!(inc.stats.sellers_evicted, full.stats.sellers_evicted);
            seen.push((ev.ts, inc.sellers.contains_key("idle")));
        }
        (inc, seen)
    }

    #[test]
    fn idle_sellers_leave_at_the_same_sweep_active_ones_stay() {
        let mut evs = vec![
            listing("idle", T0, "L1", "toys", 10.0),
            order("orders", T0, O::default()),
            review("reviews", T0 + 40 * D, "o-x", "b1", 3, None),
            message("chats", T0 + H, "c1"),
        ];
        // One event an hour from an active seller drives the hourly sweeps for 70 days.
        for h in 1..70 * 24 {
            evs.push(listing("active", T0 + h * H + 1, "L9", "toys", 10.0));
        }
        evs.sort_by_key(|e| e.ts);
        let (d, seen) = run_both(&evs);
        assert!(d.sellers.contains_key("active"));
        // The idle seller's listing is kept 720 h: the hourly sweep just after that evicts it.
        let last_seen = seen.iter().rfind(|(_, idle)| *idle).map(|(t, _)| *t);
        assert_eq!(last_seen, Some(T0 + 719 * H + 1));
        for id in ["idle", "orders", "chats"] {
            assert!(!d.sellers.contains_key(id), "{id} is evicted");
        }
        assert!(d.stats.sellers_evicted >= 3);
    }
}
