//! Per-seller state (orders, listings, each family's windows, cooldowns) and the cross-seller
//! market view (category price medians, shipping-fee medians, tracking numbers in use).
//!
//! The market view covers the sellers this instance sees; with several instances each sees its own
//! partitions' sellers (documented in the README under scale-out).

use std::collections::VecDeque;

use super::sweep::Plan;
use super::tracking::normalize;
use super::{
    fake_shipment, false_transactions, late_dispatch, phantom_listing, price_dumping, rating, shipping_fee,
    slow_response, small_parcel, standing, Map,
};
use crate::alert::Severity;
use crate::config::Config;
use crate::decode::Id;
use crate::decode::{hours_ms, Listing, Millis, OrderPlaced, OrderShipped};
use crate::window::{Lazy, WindowedMedian};

/// Most sellers use few families: each family's state is created on first write and freed when a
/// sweep empties it, so an idle seller holds a null pointer per family.
#[derive(Debug)]
pub struct SellerState {
    pub orders: Orders,
    pub listings: Listings,
    pub fake_shipment: Lazy<fake_shipment::State>,
    pub rating: Lazy<rating::State>,
    pub shipping_fee: Lazy<shipping_fee::State>,
    /// Not lazy as a whole: part of it must outlive its windows (see the type).
    pub false_transactions: false_transactions::State,
    pub phantom_listing: Lazy<phantom_listing::State>,
    pub late_dispatch: Lazy<late_dispatch::State>,
    pub small_parcel: Lazy<small_parcel::State>,
    pub slow_response: Lazy<slow_response::State>,
    pub standing: standing::State,
    /// Last alert per (rule, shadow): event time and severity. A handful of rules: a Vec beats a map.
    cooldowns: Vec<((&'static str, bool), Millis, Severity)>,
    pub last_ts: Millis,
    /// The input partition its events arrive on (input is keyed by seller): which instance owns it.
    pub partition: i32,
    /// The latest detector sweep applied to this state.
    pub(super) swept_at: Millis,
    /// Due time of this seller's live entry in the sweep queue.
    pub(super) queued: Option<Millis>,
    /// Newest event time recorded in `standing` (its counters and violations only expire);
    /// `Millis::MIN`: none.
    standing_touch: Millis,
}

impl SellerState {
    /// A new seller, first seen after the sweep at `swept_at`.
    pub(super) fn new(swept_at: Millis) -> Self {
        SellerState {
            orders: Orders::default(),
            listings: Listings::default(),
            fake_shipment: Lazy::default(),
            rating: Lazy::default(),
            shipping_fee: Lazy::default(),
            false_transactions: Default::default(),
            phantom_listing: Lazy::default(),
            late_dispatch: Lazy::default(),
            small_parcel: Lazy::default(),
            slow_response: Lazy::default(),
            standing: Default::default(),
            cooldowns: Vec::new(),
            last_ts: 0,
            partition: 0,
            swept_at,
            queued: None,
            standing_touch: Millis::MIN,
        }
    }

    /// The standing record, for recording something at `ts`.
    pub fn standing_at(&mut self, ts: Millis) -> &mut standing::State {
        self.standing_touch = self.standing_touch.max(ts);
        &mut self.standing
    }

    /// Cooldown check-and-record: true when an alert for `rule` may go out now.
    /// Would an alert for `rule` go out now? (No change: lets a rule skip building evidence.)
    pub fn cooldown_would_allow(&self, rule: (&str, bool), ts: Millis, sev: Severity, cooldown_ms: i64) -> bool {
        match self.cooldowns.iter().find(|((r, s), _, _)| *r == rule.0 && *s == rule.1) {
            Some((_, last_ts, last_sev)) => ts - *last_ts >= cooldown_ms || sev > *last_sev,
            None => true,
        }
    }

    pub fn cooldown_allows(&mut self, rule: (&'static str, bool), ts: Millis, sev: Severity, cooldown_ms: i64) -> bool {
        match self.cooldowns.iter_mut().find(|(r, _, _)| *r == rule) {
            Some((_, last_ts, last_sev)) => {
                if ts - *last_ts < cooldown_ms && sev <= *last_sev {
                    return false;
                }
                *last_ts = ts;
                *last_sev = sev;
                true
            }
            None => {
                self.cooldowns.push((rule, ts, sev));
                true
            }
        }
    }

    /// Expire old state; returns true when nothing is left and the seller can be forgotten.
    pub(super) fn sweep(&mut self, cfg: &Config, p: &Plan, now: Millis) -> bool {
        self.swept_at = now;
        let orders = self.orders.expire(now - p.order_ms);
        let listings = self.listings.expire(now - p.listing_ms);
        let fs = self.fake_shipment.sweep(|s| s.sweep(p.fake_shipment, now));
        let rt = self.rating.sweep(|s| s.sweep(&p.rating, now));
        let sf = self.shipping_fee.sweep(|s| s.sweep(p.shipping_fee_ms, now));
        let ft = self.false_transactions.sweep(&p.false_transactions, now);
        let pl = self.phantom_listing.sweep(|s| s.sweep(p.phantom_listing, now));
        let ld = self.late_dispatch.sweep(|s| s.sweep(p.late_dispatch, now));
        let sp = self.small_parcel.sweep(|s| s.sweep(p.small_parcel_ms, now));
        let sr = self.slow_response.sweep(|s| s.sweep(p.reply_turn_ms, p.slow_response, now));
        let st = self.standing.sweep(&cfg.standing, now);
        self.cooldowns.retain(|(_, t, _)| now - *t < p.cooldown_ms);
        let families = fs && rt && sf && ft && pl && ld && sp && sr && st;
        families && orders && listings && self.cooldowns.is_empty()
    }

    /// A time before which no sweep can leave this seller empty: from the newest order, listing,
    /// cooldown and standing entry, which leave only by expiry. The families' windows are shorter
    /// than order retention in practice; a seller whose bound passes early is just looked at again.
    pub(super) fn empty_lower_bound(&self, p: &Plan) -> Millis {
        // Plain maxima: runs after every event, and an array of options read back whole stalled
        // on store forwarding (5 % of the engine's cycles).
        let mut bound = Millis::MIN;
        if let Some(t) = self.orders.newest() {
            bound = bound.max(t.saturating_add(p.order_ms + 1));
        }
        if let Some(t) = self.listings.newest() {
            bound = bound.max(t.saturating_add(p.listing_ms + 1));
        }
        for (_, t, _) in &self.cooldowns {
            bound = bound.max(t.saturating_add(p.cooldown_ms));
        }
        if self.standing_touch > Millis::MIN {
            bound = bound.max(self.standing_touch.saturating_add(p.standing_ms));
        }
        bound
    }
}

/// What the rules remember of one order.
#[derive(Debug, Clone)]
pub struct OrderRec {
    pub placed_ts: Millis,
    pub buyer_id: Id,
    pub listing_id: Id,
    pub price: f64,
    pub shipping_method: Option<Id>,
    pub buyer_created_at: Option<Millis>,
    pub shipped_ts: Option<Millis>,
    pub tracking: Option<Id>,
    pub carrier: Option<Id>,
    pub scanned: bool,
    pub delivered: bool,
    pub cancelled: bool,
}

/// Was the reviewer's account younger than `days` at review time? The account's creation time comes
/// from the review, else from the order it reviews; unknown means not new.
pub fn new_account(review: &crate::decode::Review, order: Option<&OrderRec>, ts: Millis, days: f64) -> bool {
    let created = review.buyer_created_at.or_else(|| order.and_then(|o| o.buyer_created_at));
    created.is_some_and(|c| ts - c < hours_ms(days * 24.0))
}

/// A seller's orders by id. Lazy: many sellers have none.
#[derive(Debug, Default)]
pub struct Orders(Lazy<OrderBook>);

/// Orders by id, with an insertion-ordered queue for expiry.
#[derive(Debug, Default)]
struct OrderBook {
    by_id: Map<Id, OrderRec>,
    expiry: VecDeque<(Millis, Id)>,
}

impl OrderRec {
    /// What is known of an order first seen at `ts` through a later event (placed before this
    /// instance started): no buyer, no chosen method.
    fn stub(ts: Millis) -> Self {
        OrderRec {
            placed_ts: ts,
            buyer_id: "".into(),
            listing_id: "".into(),
            price: 0.0,
            shipping_method: None,
            buyer_created_at: None,
            shipped_ts: None,
            tracking: None,
            carrier: None,
            scanned: false,
            delivered: false,
            cancelled: false,
        }
    }
}

impl Orders {
    pub fn insert(&mut self, o: &OrderPlaced, ts: Millis) {
        // An earlier event may have made a stub (shipment recorded before the purchase): keep what
        // it learnt (shipped, scanned, delivered, cancelled), fill in the order's own fields.
        let rec = self.entry(&o.order_id, ts);
        rec.placed_ts = ts;
        rec.buyer_id = o.buyer_id.clone();
        rec.listing_id = o.listing_id.clone();
        rec.price = o.price;
        rec.shipping_method = Some(o.shipping_method.clone());
        rec.buyer_created_at = o.buyer_created_at;
    }

    /// The order's record, created as a stub when unknown so its scans and deliveries still count.
    fn entry(&mut self, order_id: &str, ts: Millis) -> &mut OrderRec {
        let book = self.0.make();
        if !book.by_id.contains_key(order_id) {
            book.expiry.push_back((ts, order_id.into()));
            book.by_id.insert(order_id.into(), OrderRec::stub(ts));
        }
        book.by_id.get_mut(order_id).expect("inserted above")
    }

    pub fn get(&self, order_id: &str) -> Option<&OrderRec> {
        self.0.get()?.by_id.get(order_id)
    }

    fn get_mut(&mut self, order_id: &str) -> Option<&mut OrderRec> {
        self.0.get_mut()?.by_id.get_mut(order_id)
    }

    pub fn mark_shipped(&mut self, s: &OrderShipped, ts: Millis) {
        let o = self.entry(&s.order_id, ts);
        if o.shipped_ts.is_none() {
            o.shipped_ts = Some(ts);
            o.tracking = Some(normalize(&s.tracking_number).into());
            o.carrier = Some(s.carrier.clone());
        }
    }

    /// A carrier scan may precede the seller's `order_shipped` in event time: keep it either way.
    pub fn mark_scanned(&mut self, order_id: &str, ts: Millis) {
        self.entry(order_id, ts).scanned = true;
    }

    /// Returns true the first time an order is seen delivered (so deliveries are counted once).
    pub fn mark_delivered(&mut self, order_id: &str) -> bool {
        match self.get_mut(order_id) {
            Some(o) if !o.delivered => {
                o.delivered = true;
                true
            }
            _ => false,
        }
    }

    pub fn mark_cancelled(&mut self, order_id: &str) {
        if let Some(o) = self.get_mut(order_id) {
            o.cancelled = true;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.0.get().map_or(0, |b| b.by_id.len())
    }

    /// Event time of the newest order (its expiry bounds the seller's).
    fn newest(&self) -> Option<Millis> {
        self.0.get()?.expiry.back().map(|(t, _)| *t)
    }

    /// Drops orders placed before `cutoff`; true when none is left.
    fn expire(&mut self, cutoff: Millis) -> bool {
        self.0.sweep(|b| {
            while b.expiry.front().is_some_and(|(t, _)| *t < cutoff) {
                if let Some((_, id)) = b.expiry.pop_front() {
                    b.by_id.remove(&id);
                }
            }
            b.by_id.is_empty()
        })
    }
}

#[derive(Debug, Clone)]
pub struct ListingRec {
    pub price: f64,
    /// Last known stock, if the seller reports it.
    pub stock: Option<u32>,
    pub last_ts: Millis,
    /// Boxed: few listings are dumped, and inline it would more than double every record.
    pub dump: Option<Box<price_dumping::Dump>>,
}

/// A seller's listings by id. Lazy: many sellers have none.
#[derive(Debug, Default)]
pub struct Listings(Lazy<ListingBook>);

#[derive(Debug, Default)]
struct ListingBook {
    by_id: Map<Id, ListingRec>,
    /// At most the latest `last_ts` among them (for the sweep queue).
    newest: Option<Millis>,
    /// At most the earliest `last_ts` among them: an hourly sweep skips the pass over every
    /// listing when none can have expired, as is usual.
    oldest: Millis,
}

impl Listings {
    pub fn get(&self, id: &str) -> Option<&ListingRec> {
        self.0.get()?.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut ListingRec> {
        self.0.get_mut()?.by_id.get_mut(id)
    }

    /// Records the listing's new price and returns its record (for the caller to annotate).
    pub fn upsert(&mut self, l: &Listing, ts: Millis) -> &mut ListingRec {
        let book = self.0.make();
        let rec = ListingRec { price: l.price, stock: l.stock, last_ts: ts, dump: None };
        let r = book.by_id.entry(l.listing_id.clone()).or_insert(rec);
        // `newest` may only err low: a late event moving a listing back resets it to that time.
        book.newest = if ts < r.last_ts { Some(ts) } else { book.newest.max(Some(ts)) };
        book.oldest = book.oldest.min(ts);
        r.price = l.price;
        r.last_ts = ts;
        if l.stock.is_some() {
            r.stock = l.stock;
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.0.get().is_none_or(|b| b.by_id.is_empty())
    }

    /// The lowest current price among the seller's listings.
    pub fn cheapest_price(&self) -> Option<f64> {
        self.0.get()?.by_id.values().map(|r| r.price).min_by(f64::total_cmp)
    }

    fn newest(&self) -> Option<Millis> {
        self.0.get()?.newest
    }

    /// Drops listings not updated since `cutoff`; true when none is left.
    fn expire(&mut self, cutoff: Millis) -> bool {
        self.0.sweep(|b| {
            if b.oldest < cutoff {
                let mut oldest = Millis::MAX;
                b.by_id.retain(|_, r| {
                    let keep = r.last_ts >= cutoff;
                    if keep {
                        oldest = oldest.min(r.last_ts);
                    }
                    keep
                });
                b.oldest = oldest;
            }
            b.by_id.is_empty()
        })
    }
}

/// Where a tracking number was last used.
#[derive(Debug, Clone)]
pub struct TrackingUse {
    pub order_id: Id,
    pub seller_id: Id,
    pub ts: Millis,
}

/// Orders whose fees are comparable: shipping method, weight band, route (when known).
type FeePeers = (Id, u8, Option<Id>);

/// Cross-seller baselines and indexes.
pub struct Market {
    /// Five-star reviews by buyer and by seller: the review-ring view.
    pub reviews: super::ring::ReviewGraph,
    /// Who reviewed before, sellers' running means, the platform's base shares: the drip view.
    pub reviewers: super::drip::Reviewers,
    ring_window_ms: i64,
    category_prices: Map<Id, WindowedMedian>,
    fees: Map<FeePeers, WindowedMedian>,
    tracking: Map<Id, TrackingUse>,
    tracking_expiry: VecDeque<(Millis, Id)>,
    price_window_ms: i64,
    fee_window_ms: i64,
    reuse_window_ms: i64,
    accuracy: f64,
}

impl Market {
    pub fn new(cfg: &Config) -> Self {
        Market {
            reviews: Default::default(),
            reviewers: super::drip::Reviewers::new(&cfg.rating_manipulation.drip),
            ring_window_ms: hours_ms(cfg.rating_manipulation.ring_window_hours),
            category_prices: Map::default(),
            fees: Map::default(),
            tracking: Map::default(),
            tracking_expiry: VecDeque::new(),
            price_window_ms: hours_ms(cfg.price_dumping.median_window_hours),
            fee_window_ms: hours_ms(cfg.shipping_fee_inflation.median_window_hours),
            reuse_window_ms: hours_ms(cfg.fake_shipment.reuse_window_hours),
            accuracy: cfg.price_dumping.sketch_relative_accuracy,
        }
    }

    pub fn category_price(&mut self, category: &str) -> &mut WindowedMedian {
        if !self.category_prices.contains_key(category) {
            let m = WindowedMedian::new(self.price_window_ms, self.accuracy);
            self.category_prices.insert(category.into(), m);
        }
        self.category_prices.get_mut(category).expect("inserted above")
    }

    /// Median listing price of a category, if it has enough samples.
    pub fn category_median(&mut self, category: &str, now: Millis, min_samples: u32) -> Option<(f64, u64)> {
        let m = self.category_prices.get_mut(category)?;
        let med = m.median(now, min_samples as u64)?;
        Some((med, m.samples(now)))
    }

    /// Peer fees for a method and weight band, on one route when the order names it.
    /// A low quantile of a category's listing prices (for the new-listing dumping line).
    pub fn category_quantile(&mut self, category: &str, now: Millis, q: f64, min_samples: u32) -> Option<f64> {
        self.category_prices.get_mut(category)?.quantile(now, q, min_samples as u64)
    }

    pub fn fee_baseline(&mut self, method: &str, band: u8, route: Option<&str>) -> &mut WindowedMedian {
        let mut method = Id::from(method);
        method.make_ascii_lowercase();
        let key = (method, band, route.map(Into::into));
        let (w, acc) = (self.fee_window_ms, self.accuracy);
        self.fees.entry(key).or_insert_with(|| WindowedMedian::new(w, acc))
    }

    /// Records `number` for this order and returns its previous use by another order within the
    /// reuse window, if any.
    pub fn use_tracking(&mut self, number: &str, order_id: &str, seller_id: &str, ts: Millis) -> Option<TrackingUse> {
        let now_use = TrackingUse { order_id: order_id.into(), seller_id: seller_id.into(), ts };
        let prev = self.tracking.insert(number.into(), now_use);
        self.tracking_expiry.push_back((ts, number.into()));
        prev.filter(|p| &*p.order_id != order_id && ts - p.ts <= self.reuse_window_ms)
    }

    pub fn sweep(&mut self, now: Millis) {
        self.reviews.sweep(now, self.ring_window_ms);
        self.reviewers.sweep(now);
        let cutoff = now - self.reuse_window_ms;
        while self.tracking_expiry.front().is_some_and(|(t, _)| *t < cutoff) {
            if let Some((t, n)) = self.tracking_expiry.pop_front() {
                // Only forget the number if this queue entry is its latest use.
                if self.tracking.get(&n).is_some_and(|u| u.ts <= t) {
                    self.tracking.remove(&n);
                }
            }
        }
        for m in self.category_prices.values_mut().chain(self.fees.values_mut()) {
            m.samples(now);
        }
    }
}
