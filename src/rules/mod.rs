//! Rules: per-seller state, the cross-seller market view, and one file per rule family.
//!
//! [`Detector::on_event`] takes events in event-time order (the engine's sequencer guarantees it)
//! and [`Detector::fire_timers`] advances event-time timers. Both are synchronous and do no I/O.
//! Each family turns events into *signals* on its own per-seller state and, when a seller crosses
//! its policy, hands a [`Finding`] to [`Emitter`], which applies the cooldown and builds the alert.

pub mod drip;
pub mod fake_shipment;
pub mod false_transactions;
pub mod late_dispatch;
pub mod phantom_listing;
pub mod policy;
pub mod price_dumping;
pub mod rating;
pub mod ring;
pub mod shipping_fee;
pub mod slow_response;
pub mod small_parcel;
pub mod snooze;
pub mod standing;
pub mod state;
mod sweep;
pub mod timer;
pub mod tracking;

use std::collections::HashMap;

use crate::alert::{alert_id, rfc3339, Alert, Severity};
use crate::config::Config;
use crate::decode::Id;
use crate::decode::{hours_ms, Body, Event, Millis};
use crate::window::TimerQueue;
pub use state::{Market, OrderRec, SellerState};
pub use timer::{Timer, TimerKind};

/// Hash map for keys that come from the input (seller, order, buyer ids). foldhash instead of the
/// standard SipHash: several times cheaper on short ids, and still seeded at random per map, so a
/// sender cannot prepare colliding ids offline (HashDoS). Iteration order is random either way.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`Map`].
pub type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// The rule families, in the order reports list them.
pub const FAMILIES: [&str; 9] = [
    "fake_shipment",
    "rating_manipulation",
    "price_dumping",
    "shipping_fee_inflation",
    "false_transactions",
    "phantom_listing",
    "late_dispatch",
    "small_parcel_restriction",
    "slow_response",
];

/// What a family found: everything the alert needs except the id and wall-clock time.
pub struct Finding {
    /// `<family>` or `<family>.<signal>`.
    pub rule: &'static str,
    pub score: f64,
    pub severity: Severity,
    /// The event (or timer) that completed the evidence: with rule and seller it makes the id.
    pub trigger: String,
    pub event_time: Millis,
    pub evidence: serde_json::Value,
    pub message: String,
}

impl Finding {
    /// A finding completed by event `ev` (the usual case; timers build theirs by hand).
    pub fn at_event(
        rule: &'static str,
        scale: &crate::alert::SeverityScale,
        score: f64,
        ev: &Event,
        evidence: serde_json::Value,
        message: String,
    ) -> Self {
        Finding {
            rule,
            score,
            severity: scale.severity(score),
            trigger: ev.event_id.to_string(),
            event_time: ev.ts,
            evidence,
            message,
        }
    }
}

/// How long a seller is not re-alerted for a rule (unless severity rises), and which rules are in
/// shadow mode.
#[derive(Debug, Clone)]
pub struct Cooldowns {
    default_ms: i64,
    by_rule: HashMap<String, i64>,
    shadow: Vec<String>,
}

impl Cooldowns {
    fn new(cfg: &crate::config::AlertsConfig) -> Self {
        Cooldowns {
            default_ms: hours_ms(cfg.cooldown_hours),
            by_rule: cfg.cooldown_hours_by_rule.iter().map(|(r, h)| (r.clone(), hours_ms(*h))).collect(),
            shadow: cfg.shadow.clone(),
        }
    }

    pub fn is_shadow(&self, rule: &str) -> bool {
        self.shadow.iter().any(|e| crate::config::names_rule(e, rule))
    }

    pub fn for_rule(&self, rule: &str) -> i64 {
        self.by_rule.get(rule).copied().unwrap_or(self.default_ms)
    }

    /// The longest cooldown: how long a seller's alert history must be kept.
    pub fn longest(&self) -> i64 {
        self.by_rule.values().copied().fold(self.default_ms, i64::max)
    }
}

/// Cooldown and alert construction, the same for every family.
pub struct Emitter<'a> {
    pub cooldowns: &'a Cooldowns,
    pub out: &'a mut Vec<Alert>,
    pub suppressed: &'a mut HashMap<&'static str, u64>,
}

impl Emitter<'_> {
    /// True (and counted as suppressed) when the cooldown would drop an alert of `rule` at this
    /// severity now: rules whose evidence is costly check this first.
    pub fn suppressed(&mut self, seller: &SellerState, rule: &'static str, ts: Millis, severity: Severity) -> bool {
        let shadow = self.cooldowns.is_shadow(rule);
        let quiet = !seller.cooldown_would_allow((rule, shadow), ts, severity, self.cooldowns.for_rule(rule));
        if quiet {
            *self.suppressed.entry(rule).or_default() += 1;
        }
        quiet
    }

    /// Emits unless the seller had an alert of the same rule within the cooldown at the same or a
    /// higher severity.
    pub fn emit(&mut self, seller_id: &str, seller: &mut SellerState, f: Finding) {
        // A shadow rule keeps its own cooldowns (switched live, it alerts at once) and does not
        // touch the seller's standing: nothing it finds reaches production outputs.
        let shadow = self.cooldowns.is_shadow(f.rule);
        if !seller.cooldown_allows((f.rule, shadow), f.event_time, f.severity, self.cooldowns.for_rule(f.rule)) {
            *self.suppressed.entry(f.rule).or_default() += 1;
            return;
        }
        if !shadow {
            seller.standing_at(f.event_time).violation(f.event_time, f.rule, f.severity);
        }
        self.out.push(Alert {
            alert_id: alert_id(f.rule, seller_id, &f.trigger),
            rule: f.rule.to_string(),
            seller_id: seller_id.to_string(),
            severity: f.severity,
            score: policy::round3(f.score),
            event_time: rfc3339(f.event_time),
            // Filled in by the engine from its clock: rules take no wall-clock time.
            detected_at: String::new(),
            evidence: f.evidence,
            message: f.message,
            // Stamped by the engine, which knows the version in force.
            config_version: String::new(),
            shadow,
        });
    }
}

fn carrier_registry(cfg: &Config) -> Result<tracking::CarrierRegistry, crate::config::ConfigError> {
    tracking::CarrierRegistry::new(&cfg.fake_shipment.carriers).map_err(|e| crate::config::ConfigError::Invalid {
        key: format!("fake_shipment.carriers.{}", e.carrier),
        problem: e.message,
        fix: "write a valid regex".into(),
    })
}

/// Counters the detector keeps for telemetry (plain integers: no metrics crate in the rules).
#[derive(Debug, Default, Clone)]
pub struct DetectorStats {
    pub suppressed_by_rule: HashMap<&'static str, u64>,
    pub timers_fired: u64,
    pub sellers_evicted: u64,
    /// Sellers dropped because `state.max_sellers` was reached.
    pub sellers_capped: u64,
}

pub struct Detector {
    cfg: Config,
    carriers: tracking::CarrierRegistry,
    /// Boxed: the table keeps 2× spare slots, and a slot holding the 1.7 KB state inline wastes them.
    sellers: Map<Id, Box<SellerState>>,
    market: Market,
    timers: TimerQueue<Timer>,
    cooldowns: Cooldowns,
    sweeps: sweep::Sweeps,
    standing_out: Vec<standing::Standing>,
    standing: standing::Publisher,
    log: crate::telemetry::RateLimitedLog,
    pub stats: DetectorStats,
}

impl Detector {
    pub fn new(cfg: &Config) -> Result<Self, crate::config::ConfigError> {
        cfg.validate()?;
        let carriers = carrier_registry(cfg)?;
        Ok(Detector {
            market: Market::new(cfg),
            cfg: cfg.clone(),
            carriers,
            sellers: Map::default(),
            timers: TimerQueue::default(),
            cooldowns: Cooldowns::new(&cfg.alerts),
            sweeps: sweep::Sweeps::new(cfg, Cooldowns::new(&cfg.alerts).longest()),
            standing_out: Vec::new(),
            standing: standing::Publisher::new(&cfg.standing),
            log: crate::telemetry::RateLimitedLog::new(std::time::Duration::from_secs(10)),
            stats: DetectorStats::default(),
        })
    }

    pub fn sellers_tracked(&self) -> usize {
        self.sellers.len()
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Switches to `cfg` (thresholds, rule switches, severities, cooldowns, shadow rules) keeping
    /// every window, timer and seller. Refused, with the old config left in force, when `cfg` is
    /// invalid or changes a window length: state is bucketed by those, so they need a restart
    /// (which rebuilds state from the input's lookback).
    pub fn reload(&mut self, cfg: &Config) -> Result<(), crate::config::ConfigError> {
        cfg.validate()?;
        let carriers = carrier_registry(cfg)?;
        let cooldowns = Cooldowns::new(&cfg.alerts);
        let plan = sweep::Plan::new(cfg, cooldowns.longest());
        let (old, new) = (sweep::windows(&self.sweeps.plan, &self.cfg), sweep::windows(&plan, cfg));
        if let Some(((key, was), (_, now))) = old.iter().zip(&new).find(|(a, b)| a != b) {
            return Err(crate::config::ConfigError::Invalid {
                key: (*key).into(),
                problem: format!("window length {was} → {now} cannot change while running (state is bucketed by it)"),
                fix: "keep the running value to reload the rest, or restart to apply it".into(),
            });
        }
        self.carriers = carriers;
        self.standing = standing::Publisher::new(&cfg.standing);
        self.sweeps.plan = plan;
        self.cooldowns = cooldowns;
        self.cfg = cfg.clone();
        Ok(())
    }

    pub fn timers_pending(&self) -> usize {
        self.timers.len()
    }

    /// Moves the standing records published since the last call, in publication order, to `out`
    /// (this side keeps its buffer: no allocation per publication).
    pub fn take_standing_into(&mut self, out: &mut Vec<standing::Standing>) {
        out.append(&mut self.standing_out);
    }

    fn publish_standing(&mut self, seller_id: &str, now: Millis) {
        if let Some(s) = self.sellers.get_mut(seller_id).filter(|_| self.cfg.standing.enabled) {
            self.standing_out.extend(s.standing.publish(&self.standing, seller_id, now));
        }
    }

    /// The input partition a tracked seller's events come from.
    pub fn seller_partition(&self, seller_id: &str) -> Option<i32> {
        self.sellers.get(seller_id).map(|s| s.partition)
    }

    /// Process one event (in event-time order); alerts are appended to `out`.
    pub fn on_event(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        self.on_event_from(0, ev, out)
    }

    /// An event of a seller another instance judges (its partition is not ours): it feeds only the
    /// cross-seller views: category and fee baselines, tracking numbers, review rings. Those views
    /// then equal a single instance's, and a ring it completes still alerts the sellers we own.
    pub fn observe(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        self.maybe_sweep(ev.ts);
        let (cfg, market) = (&self.cfg, &mut self.market);
        let mut ring_block = None;
        match &ev.body {
            Body::Listing(l) => price_dumping::feed_baseline(&cfg.price_dumping, market, l, ev.ts),
            Body::OrderPlaced(o) if cfg.shipping_fee_inflation.enabled => shipping_fee::observe(cfg, market, o, ev.ts),
            Body::OrderShipped(s) if cfg.fake_shipment.enabled => {
                let number = tracking::normalize_cow(&s.tracking_number);
                market.use_tracking(&number, &s.order_id, &ev.seller_id, ev.ts);
            }
            Body::Review(r) => {
                drip_features(cfg, market, ev, r);
                ring_block = ring_check(cfg, market, ev, r)
            }
            _ => {}
        }
        if let Some(block) = ring_block {
            self.on_ring(&block, ev, out);
        }
    }

    /// Process one event read from `partition` (in event-time order); alerts are appended to `out`.
    pub fn on_event_from(&mut self, partition: i32, ev: &Event, out: &mut Vec<Alert>) {
        self.maybe_sweep(ev.ts);
        // One probe of the seller map for a known seller; the id is copied only for a new one.
        let last_sweep = self.sweeps.last;
        let seller = match self.sellers.get_mut(&*ev.seller_id) {
            Some(s) => {
                if sweep::catch_up_state(&self.cfg, &self.sweeps, s) {
                    // Nothing was left: as if evicted and seen anew.
                    **s = SellerState::new(last_sweep);
                    self.stats.sellers_evicted += 1;
                }
                s
            }
            None => {
                if self.sellers.len() >= self.cfg.state.max_sellers {
                    self.evict_least_recent();
                }
                self.sellers.entry(ev.seller_id.clone()).or_insert_with(|| Box::new(SellerState::new(last_sweep)))
            }
        };
        seller.partition = partition;
        seller.last_ts = seller.last_ts.max(ev.ts);
        seller.standing.seen(ev.ts);
        let sc = &self.cfg.standing;
        let mut em = Emitter { cooldowns: &self.cooldowns, out, suppressed: &mut self.stats.suppressed_by_rule };
        let cfg = &self.cfg;
        let market = &mut self.market;
        let sid: &str = &ev.seller_id;
        let mut ring_block = None;
        match &ev.body {
            Body::Listing(l) => {
                if cfg.price_dumping.enabled {
                    price_dumping::on_listing(&cfg.price_dumping, market, seller, sid, ev, l, &mut em);
                } else {
                    seller.listings.upsert(l, ev.ts);
                }
                price_dumping::feed_baseline(&cfg.price_dumping, market, l, ev.ts);
            }
            Body::OrderPlaced(o) => {
                seller.standing_at(ev.ts).order(sc, ev.ts);
                if cfg.shipping_fee_inflation.enabled {
                    shipping_fee::on_order(cfg, market, seller, sid, ev, o, &mut em);
                }
                if cfg.phantom_listing.enabled {
                    phantom_listing::on_order(&cfg.phantom_listing, seller, sid, ev, o, &mut em);
                }
                if cfg.false_transactions.enabled {
                    let checks = false_transactions::on_order(&cfg.false_transactions, seller, sid, ev, o, &mut em);
                    for at in checks.into_iter().flatten() {
                        self.timers.schedule(at, Timer::for_seller(TimerKind::BrushingCheck, sid));
                    }
                }
                // Always scheduled: the standing's on-time rate needs it even with the rule off.
                let due = ev.ts + hours_ms(o.promised_dispatch_hours as f64);
                let timer = Timer::new(TimerKind::DispatchDeadline, sid, &o.order_id, 0, &ev.event_id);
                self.timers.schedule(due, timer);
                seller.orders.insert(o, ev.ts);
            }
            Body::OrderShipped(s) => {
                if cfg.fake_shipment.enabled {
                    let (due, tracking_ok) =
                        fake_shipment::on_shipped(cfg, &self.carriers, market, seller, sid, ev, s, &mut em);
                    seller.standing_at(ev.ts).shipment(sc, ev.ts, tracking_ok);
                    let timer = Timer::new(TimerKind::ScanDeadline, sid, &s.order_id, 0, &ev.event_id);
                    self.timers.schedule(due, timer);
                }
                seller.orders.mark_shipped(s, ev.ts);
            }
            Body::TrackingScan(t) => {
                seller.orders.mark_scanned(&t.order_id, ev.ts);
                if t.status == crate::decode::ScanStatus::Delivered {
                    rating::on_delivered(&cfg.rating_manipulation, seller, &t.order_id, ev.ts);
                }
            }
            Body::OrderDelivered { order_id } => {
                if cfg.false_transactions.enabled {
                    false_transactions::on_delivered(&cfg.false_transactions, seller, sid, ev, order_id, &mut em);
                }
                rating::on_delivered(&cfg.rating_manipulation, seller, order_id, ev.ts);
            }
            Body::Review(r) => {
                seller.standing_at(ev.ts).review(sc, ev.ts, r.rating);
                if cfg.rating_manipulation.enabled {
                    rating::on_review(&cfg.rating_manipulation, seller, sid, ev, r, &mut em);
                }
                if let Some(f) = drip_features(cfg, market, ev, r) {
                    let reviewers = &mut market.reviewers;
                    drip::on_review(&cfg.rating_manipulation, reviewers, seller, sid, (ev, r, f), &mut em);
                }
                ring_block = ring_check(cfg, market, ev, r);
                if cfg.false_transactions.enabled {
                    false_transactions::on_review(&cfg.false_transactions, seller, sid, ev, r, &mut em);
                }
            }
            Body::OrderCancelled { order_id, by, reason } => {
                seller.orders.mark_cancelled(order_id);
                if cfg.phantom_listing.enabled {
                    phantom_listing::on_cancelled(
                        &cfg.phantom_listing,
                        seller,
                        sid,
                        ev,
                        (order_id, *by, reason),
                        &mut em,
                    );
                }
            }
            Body::DisputeOpened { order_id, reason, .. } => {
                seller.standing_at(ev.ts).dispute(sc, ev.ts);
                if cfg.small_parcel_restriction.enabled {
                    small_parcel::on_dispute(
                        &cfg.small_parcel_restriction,
                        seller,
                        sid,
                        ev,
                        (order_id, *reason),
                        &mut em,
                    );
                }
            }
            Body::BuyerMessage { conversation_id, .. } => {
                if cfg.slow_response.enabled {
                    if let Some(due) =
                        slow_response::on_buyer_message(&cfg.slow_response, seller, conversation_id, ev.ts)
                    {
                        let timer = Timer::new(TimerKind::ReplyDeadline, sid, conversation_id, ev.ts, &ev.event_id);
                        self.timers.schedule(due, timer);
                    }
                }
            }
            Body::SellerReply { conversation_id } => slow_response::on_reply(seller, conversation_id),
        }
        self.sweeps.note(sid, seller);
        match ring_block {
            None if self.cfg.standing.enabled => {
                self.standing_out.extend(seller.standing.publish(&self.standing, sid, ev.ts));
            }
            None => {}
            // The ring may alert this seller too: its standing is published after that.
            Some(block) => {
                self.on_ring(&block, ev, out);
                self.publish_standing(&ev.seller_id, ev.ts);
            }
        }
    }

    fn on_ring(&mut self, block: &ring::Block, ev: &Event, out: &mut Vec<Alert>) {
        self.emit_ring(block, ev, out);
        for s in &block.sellers {
            if **s != *ev.seller_id {
                self.publish_standing(s, ev.ts);
            }
        }
    }

    /// A review ring alerts every seller in the block we track (each through its own cooldown).
    fn emit_ring(&mut self, block: &ring::Block, ev: &Event, out: &mut Vec<Alert>) {
        for s in &block.sellers {
            self.catch_up(s);
        }
        let rc = &self.cfg.rating_manipulation;
        let (nb, ns) = (block.buyers.len(), block.sellers.len());
        let score = ((nb as f64 / rc.ring_min_buyers as f64) * (ns as f64 / rc.ring_min_sellers as f64)).sqrt();
        let evidence = serde_json::json!({
            "buyers": block.buyers,
            "sellers": block.sellers,
            "window_hours": rc.ring_window_hours,
            "completed_by": { "buyer_id": match &ev.body { Body::Review(r) => &*r.buyer_id, _ => "" }, "seller_id": &*ev.seller_id },
            "thresholds": { "ring_min_buyers": rc.ring_min_buyers, "ring_min_sellers": rc.ring_min_sellers },
        });
        for seller_id in &block.sellers {
            let Some(state) = self.sellers.get_mut(seller_id) else { continue };
            let others = ns - 1;
            let message = format!(
                "Seller {seller_id}: the same {nb} buyers rated it and {others} other sellers five stars within {}h (review ring).",
                rc.ring_window_hours
            );
            let mut em = Emitter { cooldowns: &self.cooldowns, out, suppressed: &mut self.stats.suppressed_by_rule };
            let f = Finding::at_event("rating_manipulation.ring", &rc.severity, score, ev, evidence.clone(), message);
            em.emit(seller_id, state, f);
            self.sweeps.note(seller_id, state);
        }
    }

    /// Fire every timer due at or before `upto` (event time), in (due, key) order.
    pub fn fire_timers(&mut self, upto: Millis, out: &mut Vec<Alert>) {
        while let Some((due, timer)) = self.timers.pop_due(upto) {
            self.stats.timers_fired += 1;
            let who = timer.seller();
            let Some(state) = self.sellers.get_mut(who) else { continue };
            if sweep::catch_up_state(&self.cfg, &self.sweeps, state) {
                self.sellers.remove(who);
                self.stats.sellers_evicted += 1;
                continue;
            }
            let mut em = Emitter { cooldowns: &self.cooldowns, out, suppressed: &mut self.stats.suppressed_by_rule };
            let cfg = &self.cfg;
            let (subject, event) = (timer.subject(), timer.event());
            match timer.kind {
                TimerKind::ScanDeadline => {
                    fake_shipment::on_scan_deadline(cfg, state, who, subject, event, due, &mut em);
                }
                TimerKind::DispatchDeadline => {
                    if let Some(on_time) =
                        late_dispatch::on_due(&cfg.late_dispatch, state, who, (subject, event), due, &mut em)
                    {
                        state.standing_at(due).due(&cfg.standing, due, on_time);
                    }
                }
                TimerKind::ReplyDeadline => {
                    let turn = (subject, timer.opened, event);
                    if let Some(answered) =
                        slow_response::on_deadline(&cfg.slow_response, state, who, turn, due, &mut em)
                    {
                        state.standing_at(due).turn(&cfg.standing, due, answered);
                    }
                }
                TimerKind::BrushingCheck => {
                    false_transactions::on_brushing_check(&cfg.false_transactions, state, who, due, &mut em);
                }
            }
            self.sweeps.note(who, state);
            if cfg.standing.enabled {
                self.standing_out.extend(state.standing.publish(&self.standing, who, due));
            }
        }
    }

    /// Drops the least recently active tenth of the sellers (at least one): a sort once per many
    /// new sellers, not a per-event LRU update.
    fn evict_least_recent(&mut self) {
        let keep = self.cfg.state.max_sellers - (self.cfg.state.max_sellers / 10).max(1);
        let mut by_age: Vec<(Millis, Id)> = self.sellers.iter().map(|(k, s)| (s.last_ts, k.clone())).collect();
        let drop = by_age.len().saturating_sub(keep);
        if drop == 0 {
            return;
        }
        // Partition so that the `drop` oldest come first (ties broken by id: deterministic).
        by_age.select_nth_unstable(drop - 1);
        for (_, k) in by_age.into_iter().take(drop) {
            self.sellers.remove(&k);
        }
        self.stats.sellers_capped += drop as u64;
        if let Some(held) = self.log.allow("seller_cap") {
            let total = self.stats.sellers_capped;
            tracing::warn!(
                evicted = drop,
                evicted_total = total,
                max_sellers = self.cfg.state.max_sellers,
                similar_held_back = held,
                "seller cap reached: evicted the least recently active"
            );
        }
    }
}

/// Every review feeds the drip view (whichever instance judges its seller): its features, when
/// the signal is on.
fn drip_features(cfg: &Config, market: &mut Market, ev: &Event, r: &crate::decode::Review) -> Option<drip::Features> {
    let rc = &cfg.rating_manipulation;
    (rc.enabled && rc.drip.enabled).then(|| market.reviewers.review(rc, &ev.seller_id, r, ev.ts))
}

/// A five-star review joins the review graph; returns the ring block it completes, if any.
fn ring_check(cfg: &Config, market: &mut Market, ev: &Event, r: &crate::decode::Review) -> Option<ring::Block> {
    let rc = &cfg.rating_manipulation;
    if !rc.enabled || r.rating != 5 {
        return None;
    }
    let (b, s) = (rc.ring_min_buyers as usize, rc.ring_min_sellers as usize);
    market.reviews.add((&r.buyer_id, &ev.seller_id, ev.ts), hours_ms(rc.ring_window_hours), b, s)
}

#[cfg(test)]
mod tests;
