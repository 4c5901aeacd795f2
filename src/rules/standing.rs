//! Seller standing: each seller's trailing 30-day record (positive feedback, on-time dispatch,
//! replies in time, disputes, valid tracked shipments, open violations) and Good Seller
//! eligibility, published to a compacted topic (key = seller id) when it changes materially.
//! Ranking and badge systems consume it; it is state, not an alert.

use serde::{Deserialize, Serialize};

use crate::alert::{rfc3339, Severity};
use crate::config::StandingConfig;
use crate::decode::{Millis, DAY_MS};
use crate::window::{Counters, Lazy, Span};

/// A rate over the window: its total is series `.0` of the window's counts, its hits `.0 + 1`.
#[derive(Debug, Clone, Copy)]
struct Rate(usize);

const FEEDBACK: Rate = Rate(0);
const DISPATCH: Rate = Rate(2);
const REPLIES: Rate = Rate(4);
const TRACKING: Rate = Rate(6);
const ORDERS: usize = 8;
const DISPUTES: usize = 9;
const SERIES: usize = 10;

impl Rate {
    /// `hits` of `total` in `counts`, and the total.
    fn read(self, counts: &[u64; SERIES]) -> (Option<f64>, u64) {
        let (total, hits) = (counts[self.0], counts[self.0 + 1]);
        ((total > 0).then(|| hits as f64 / total as f64), total)
    }
}

#[derive(Debug)]
pub struct State {
    /// Created by the first record, freed when a sweep empties it: a seller that only ever
    /// replied keeps just its age and its last publication.
    window: Lazy<Window>,
    /// `Millis::MAX` until the first event (every tracked seller has one: no `Option` needed).
    first_seen: Millis,
    /// When the last record was published and what `differs` compares in it.
    last: Option<(Millis, Marks)>,
    version: u64,
    /// `(from, until, publisher)`: a reading at any time in `[from, until)` under that publisher
    /// equals the last one (nothing recorded since, nothing expires before `until`), so it would
    /// decide the same: not material. Most events change no count; this spares their reading.
    quiet: Option<(Millis, Millis, u64)>,
}

impl Default for State {
    fn default() -> Self {
        State { window: Lazy::default(), first_seen: Millis::MAX, last: None, version: 0, quiet: None }
    }
}

/// The trailing window's counts (all on the standing span, so one deque) and open violations.
#[derive(Debug, Default)]
struct Window {
    counts: Counters<SERIES>,
    violations: Vec<(Millis, &'static str, Severity)>,
}

/// The parts of a record the material-change test looks at, kept as plain numbers so deciding
/// costs no strings; the record itself is built only when it will be published.
/// Every seller keeps the last one, hence NaN for "no rate" (rates are finite) and a boxed slice.
#[derive(Debug, Clone)]
struct Marks {
    /// Rounded rates in record order: feedback, dispatch, replies, disputes, tracking; NaN: none.
    rates: [f64; 5],
    /// Open violations per rule, sorted by rule name (as the record's map is).
    open: Box<[(&'static str, u64)]>,
    /// `Unmet` bits; the reasons' text and order follow from them.
    unmet: u8,
}

/// Why a seller is not a Good Seller, in the order the record lists them.
const UNMET_AGE: u8 = 1;
const UNMET_REVIEWS: u8 = 2;
const UNMET_POSITIVE: u8 = 4;
const UNMET_HIGH: u8 = 8;

/// Everything one reading yields; becomes a record only when published.
struct Reading {
    marks: Marks,
    reviews: u64,
    due: u64,
    messages: u64,
    orders: u64,
    disputes: u64,
    shipments: u64,
}

/// Standing settings derived once per config: the window, the gate and the reasons' text.
#[derive(Debug, Clone)]
pub struct Publisher {
    cfg: StandingConfig,
    span: Span,
    min_interval_ms: i64,
    /// Indexed by the bit position of `UNMET_*`.
    reasons: [String; 4],
    /// Unique per `new`: a reading remembered under one config says nothing under another.
    id: u64,
}

impl Publisher {
    pub fn new(cfg: &StandingConfig) -> Self {
        Publisher {
            cfg: cfg.clone(),
            span: span(cfg),
            min_interval_ms: (cfg.min_interval_minutes * 60_000.0) as i64,
            reasons: [
                format!("active for less than {} days", cfg.good_seller_min_age_days),
                format!("fewer than {} reviews", cfg.good_seller_min_reviews),
                format!("positive feedback below {:.0}%", cfg.good_seller_min_positive * 100.0),
                "an open high-severity violation".into(),
            ],
            id: NEXT_PUBLISHER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

static NEXT_PUBLISHER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The published record (JSON on the standing topic, key = seller id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "sellerguard seller standing v1")]
pub struct Standing {
    pub seller_id: String,
    /// RFC 3339 event time of the reading.
    #[schemars(extend("format" = "date-time"))]
    pub as_of: String,
    pub version: u64,
    pub window_days: f64,
    pub positive_feedback_rate: Option<f64>,
    pub reviews: u64,
    pub on_time_dispatch_rate: Option<f64>,
    pub orders_due: u64,
    pub replied_in_time_rate: Option<f64>,
    pub buyer_messages: u64,
    pub dispute_rate: Option<f64>,
    pub orders: u64,
    pub disputes: u64,
    pub valid_tracking_rate: Option<f64>,
    pub shipments: u64,
    pub open_violations: std::collections::BTreeMap<String, u64>,
    pub good_seller: bool,
    /// Why the seller is not (or not yet) a Good Seller; empty when eligible.
    pub good_seller_unmet: Vec<String>,
}

fn span(cfg: &StandingConfig) -> Span {
    Span::new((cfg.window_days * DAY_MS as f64) as i64, cfg.window_days.ceil() as i64)
}

impl State {
    pub fn seen(&mut self, ts: Millis) {
        if ts < self.first_seen {
            self.first_seen = ts;
            self.quiet = None;
        }
    }
    /// The window, to record something in: the last reading no longer holds.
    fn changed(&mut self) -> &mut Window {
        self.quiet = None;
        self.window.make()
    }
    pub fn order(&mut self, cfg: &StandingConfig, ts: Millis) {
        self.changed().counts.add_to(ORDERS, span(cfg), ts, 1);
    }
    pub fn dispute(&mut self, cfg: &StandingConfig, ts: Millis) {
        self.changed().counts.add_to(DISPUTES, span(cfg), ts, 1);
    }
    pub fn review(&mut self, cfg: &StandingConfig, ts: Millis, rating: u8) {
        self.changed().record(span(cfg), ts, FEEDBACK, rating >= cfg.positive_min_rating);
    }
    pub fn shipment(&mut self, cfg: &StandingConfig, ts: Millis, valid_tracking: bool) {
        self.changed().record(span(cfg), ts, TRACKING, valid_tracking);
    }
    pub fn due(&mut self, cfg: &StandingConfig, ts: Millis, on_time: bool) {
        self.changed().record(span(cfg), ts, DISPATCH, on_time);
    }
    pub fn turn(&mut self, cfg: &StandingConfig, ts: Millis, answered: bool) {
        self.changed().record(span(cfg), ts, REPLIES, answered);
    }
    pub fn violation(&mut self, ts: Millis, rule: &'static str, severity: Severity) {
        self.changed().violations.push((ts, rule, severity));
    }

    /// The current record, if it differs materially from the last one published (or none was).
    pub fn publish(&mut self, p: &Publisher, seller_id: &str, now: Millis) -> Option<Standing> {
        if self.last.as_ref().is_some_and(|(t, _)| now - t < p.min_interval_ms) {
            return None;
        }
        // With no material-change threshold every reading is news: nothing to spare.
        let same = |(from, until, id): (Millis, Millis, u64)| id == p.id && from <= now && now < until;
        if p.cfg.material_change > 0.0 && self.quiet.is_some_and(same) {
            return None;
        }
        let next = self.read(p, now);
        let material = match &self.last {
            None => true,
            Some((_, prev)) => differs(prev, &next.marks, p.cfg.material_change),
        };
        if !material {
            return None;
        }
        self.version += 1;
        let record = next.record(p, seller_id, now, self.version);
        self.last = Some((now, next.marks));
        Some(record)
    }

    fn read(&mut self, p: &Publisher, now: Millis) -> Reading {
        let (cfg, sp) = (&p.cfg, p.span);
        // No window reads as an empty one (which allocates nothing).
        let mut empty = Window::default();
        let w = self.window.get_mut().unwrap_or(&mut empty);
        let counts = w.counts.counts(sp, now);
        let (feedback, reviews) = FEEDBACK.read(&counts);
        let (dispatch, due) = DISPATCH.read(&counts);
        let (replies, messages) = REPLIES.read(&counts);
        let (tracking, shipments) = TRACKING.read(&counts);
        let (orders, disputes) = (counts[ORDERS], counts[DISPUTES]);
        w.violations.retain(|(t, _, _)| now - t < sp.len_ms);
        // Until when this reading holds with nothing recorded: the oldest bucket or violation
        // leaves the window, or the seller comes of age (1 ms short of it, for rounding).
        let mut until = w.counts.next_expiry(sp).unwrap_or(Millis::MAX);
        until = w.violations.iter().fold(until, |u, (t, _, _)| u.min(t.saturating_add(sp.len_ms)));
        let mut open: Vec<(&'static str, u64)> = Vec::new();
        if !w.violations.is_empty() {
            let mut rules: Vec<&'static str> = w.violations.iter().map(|(_, r, _)| *r).collect();
            rules.sort_unstable();
            for r in rules {
                match open.last_mut() {
                    Some((last, n)) if *last == r => *n += 1,
                    _ => open.push((r, 1)),
                }
            }
        }
        let high = w.violations.iter().any(|(_, _, s)| *s >= Severity::High);
        let mut unmet = 0;
        let age_days = (self.first_seen != Millis::MAX).then(|| (now - self.first_seen) as f64 / DAY_MS as f64);
        if age_days.is_some_and(|d| d < cfg.good_seller_min_age_days) {
            unmet |= UNMET_AGE;
            let of_age = (cfg.good_seller_min_age_days * DAY_MS as f64) as i64;
            until = until.min(self.first_seen.saturating_add(of_age).saturating_sub(1));
        }
        self.quiet = Some((now, until, p.id));
        if reviews < cfg.good_seller_min_reviews as u64 {
            unmet |= UNMET_REVIEWS;
        } else if feedback.is_some_and(|f| f < cfg.good_seller_min_positive) {
            unmet |= UNMET_POSITIVE;
        }
        if high {
            unmet |= UNMET_HIGH;
        }
        let round = |x: Option<f64>| x.map_or(f64::NAN, |v| (v * 1000.0).round() / 1000.0);
        let dispute_rate = (orders > 0).then(|| disputes as f64 / orders as f64);
        Reading {
            marks: Marks {
                rates: [round(feedback), round(dispatch), round(replies), round(dispute_rate), round(tracking)],
                open: open.into_boxed_slice(),
                unmet,
            },
            reviews,
            due,
            messages,
            orders,
            disputes,
            shipments,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.window.get().is_none_or(Window::is_empty)
    }

    pub fn sweep(&mut self, cfg: &StandingConfig, now: Millis) -> bool {
        // Before `until` a sweep removes nothing a reading sees; from it on, the reading is stale.
        if self.quiet.is_some_and(|(_, until, _)| now >= until) {
            self.quiet = None;
        }
        self.window.sweep(|w| w.sweep(cfg, now))
    }
}

impl Window {
    fn record(&mut self, span: Span, ts: Millis, rate: Rate, hit: bool) {
        self.counts.add_to(rate.0, span, ts, 1);
        if hit {
            self.counts.add_to(rate.0 + 1, span, ts, 1);
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.violations.is_empty()
    }

    fn sweep(&mut self, cfg: &StandingConfig, now: Millis) -> bool {
        let sp = span(cfg);
        self.counts.expire(sp, now);
        self.violations.retain(|(t, _, _)| now - t < sp.len_ms);
        self.is_empty()
    }
}

impl Reading {
    fn record(&self, p: &Publisher, seller_id: &str, now: Millis, version: u64) -> Standing {
        let m = &self.marks;
        let [feedback, dispatch, replies, dispute_rate, tracking] = m.rates.map(|r| (!r.is_nan()).then_some(r));
        let unmet: Vec<String> =
            (0..p.reasons.len()).filter(|i| m.unmet & (1 << i) != 0).map(|i| p.reasons[i].clone()).collect();
        Standing {
            seller_id: seller_id.to_string(),
            as_of: rfc3339(now),
            version,
            window_days: p.cfg.window_days,
            positive_feedback_rate: feedback,
            reviews: self.reviews,
            on_time_dispatch_rate: dispatch,
            orders_due: self.due,
            replied_in_time_rate: replies,
            buyer_messages: self.messages,
            dispute_rate,
            orders: self.orders,
            disputes: self.disputes,
            valid_tracking_rate: tracking,
            shipments: self.shipments,
            open_violations: m.open.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            good_seller: m.unmet == 0,
            good_seller_unmet: unmet,
        }
    }
}

/// Material change: a rate moved by `delta` or more (or appeared), the open violations changed, or
/// eligibility (or the reasons against it) changed. The reasons' texts are distinct, so equal
/// bits mean equal reason lists, and eligibility is "no bits".
fn differs(a: &Marks, b: &Marks, delta: f64) -> bool {
    let moved = |x: f64, y: f64| match (x.is_nan(), y.is_nan()) {
        (false, false) => (x - y).abs() >= delta,
        (true, true) => false,
        _ => true,
    };
    a.rates.iter().zip(&b.rates).any(|(x, y)| moved(*x, *y)) || a.open != b.open || a.unmet != b.unmet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::HOUR_MS;

    const T: Millis = 1_800_000_000_000;

    fn cfg() -> StandingConfig {
        StandingConfig {
            good_seller_min_age_days: 182.5,
            good_seller_min_reviews: 3,
            good_seller_min_positive: 0.955,
            ..StandingConfig::default()
        }
    }

    proptest::proptest! {
        /// Remembering the last reading changes no decision: the same calls on a state that must
        /// read every time publish the same records.
        #[test]
        fn a_remembered_reading_decides_as_a_fresh_one(
            ops in proptest::collection::vec((0u8..9, 0i64..(3 * DAY_MS), 1u8..6), 1..120),
            min_age_days in 0.0f64..2.0,
        ) {
            let cfg = StandingConfig {
                window_days: 1.0,
                good_seller_min_age_days: min_age_days,
                good_seller_min_reviews: 2,
                min_interval_minutes: 30.0,
                ..cfg()
            };
            let p = Publisher::new(&cfg);
            let (mut cached, mut fresh) = (State::default(), State::default());
            let mut now = T;
            for (op, step, stars) in ops {
                now += step / 8;
                for st in [&mut cached, &mut fresh] {
                    match op {
                        0 => st.seen(now - step),
                        1 => st.order(&cfg, now),
                        2 => st.review(&cfg, now, stars),
                        3 => st.due(&cfg, now, stars > 2),
                        4 => st.violation(now, "late_dispatch", if stars > 4 { Severity::High } else { Severity::Low }),
                        5 => { st.sweep(&cfg, now); }
                        _ => {}
                    }
                }
                fresh.quiet = None;
                let (a, b) = (cached.publish(&p, "s", now), fresh.publish(&p, "s", now));
                proptest::prop_assert_eq!(a, b, "at {}", now - T);
            }
        }
    }

    /// The decision uses numbers and bits; the record must still say what the per-call text said.
    #[test]
    fn publishes_only_material_changes_with_the_configured_reasons() {
        let cfg = cfg();
        let p = Publisher::new(&cfg);
        let mut st = State::default();
        st.seen(T);
        for i in 0..4 {
            st.review(&cfg, T + i, if i == 0 { 3 } else { 5 });
        }
        let first = st.publish(&p, "s", T + 10).expect("first record is always published");
        assert_eq!(first.version, 1);
        assert_eq!(first.positive_feedback_rate, Some(0.75));
        assert_eq!(first.good_seller_unmet, ["active for less than 182.5 days", "positive feedback below 96%"]);
        assert!(st.publish(&p, "s", T + 20).is_none(), "within the interval");
        assert!(st.publish(&p, "s", T + HOUR_MS + 10).is_none(), "nothing material changed");

        // Only the reasons change (an open high-severity violation): published.
        st.violation(T + HOUR_MS, "small_parcel_restriction", Severity::High);
        st.violation(T + HOUR_MS, "late_dispatch", Severity::Low);
        st.violation(T + HOUR_MS, "late_dispatch", Severity::Low);
        let next = st.publish(&p, "s", T + 2 * HOUR_MS).expect("violations are material");
        assert_eq!(next.version, 2);
        assert_eq!(next.as_of, rfc3339(T + 2 * HOUR_MS));
        assert_eq!(next.good_seller_unmet.last().map(String::as_str), Some("an open high-severity violation"));
        let open: Vec<_> = next.open_violations.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        assert_eq!(open, [("late_dispatch", 2), ("small_parcel_restriction", 1)]);
        assert!(!next.good_seller);

        // A rate moving by less than `material_change` is not news; by more, it is.
        st.review(&cfg, T + 3 * HOUR_MS, 5);
        assert!(st.publish(&p, "s", T + 4 * HOUR_MS).is_some(), "0.75 → 0.8");
        for i in 0..40 {
            st.review(&cfg, T + 5 * HOUR_MS + i, 5);
        }
        let r = st.publish(&p, "s", T + 6 * HOUR_MS).expect("0.8 → 0.978");
        assert_eq!(r.positive_feedback_rate, Some(0.978));
        st.review(&cfg, T + 7 * HOUR_MS, 5);
        assert!(st.publish(&p, "s", T + 8 * HOUR_MS).is_none(), "0.978 → 0.978");
    }
}
