//! `rating_manipulation.drip`: review fraud that comes as a steady drip rather than a burst.
//!
//! Bought reviews are spread over weeks, a few a day, so no 24-hour window ever holds many. What
//! gives them away is who writes them and how: on a public benchmark of real reviews labelled by a
//! platform's spam filter, a review that is the account's first on the platform, at an extreme
//! rating (1 or 5) and ≥ 1.5 stars from the seller's running mean is spam ~2.8× as often as the
//! average review, and an account's later reviews far less often than its first. The distance is
//! taken here from the running *median* star of the seller's *established* reviewers (see
//! [`Stars`]): the fraud itself would drag a mean of all reviews.
//!
//! So each review is classed from what the stream holds, in event time:
//!
//! * **inflate**: five stars, from an account's first review on the platform (or an account younger
//!   than `new_account_days`), and either ≥ `min_distance` above the established median (below) or
//!   from a new account (a shop whose every review is bought has a median of five: only the
//!   accounts' age shows it);
//! * **attack**: one star, from an account's first review (or a new account), ≥ `min_distance`
//!   below the established median. The seller counts only those for orders delivered before
//!   the review: a one-star for a parcel that never came is a complaint, not an attack.
//!
//! The platform counts the same classes over every seller ([`Reviewers`], a cross-seller view that
//! every instance builds from the whole topic, so its base shares equal a single instance's). A
//! seller is flagged when its share of one class is ≥ `min_factor` × the platform's base share of
//! that class, with ≥ `min_suspicious` such reviews, and an honest seller would reach that count
//! with probability below `max_chance` (binomial tail at the base share: a small shop's unlucky
//! week and a big shop's honest volume both stay quiet). An attack alert names the seller as the
//! target (its rating is being manipulated), not as the one who broke the rule.
//!
//! Memory: a buyer who reviewed in the last `history_days` costs one hash-map slot of a 64-bit
//! hash of the id and a day number: 17 bytes a bucket with its control byte, 19–39 bytes a buyer
//! as the table fills between doublings (`buyer_history_bytes`; 100 000 buyers: 22 bytes each). Two ids share a hash with odds ~n²/2⁶⁵ (1 in 370 000 for 10 M buyers):
//! one of them then looks like a returning reviewer, which can only hide a review, never flag one.
//! A seller's running star histogram is exponentially decayed (time constant `window_days`), 48
//! bytes and its id, kept on every instance for every seller with established reviewers.

use std::hash::BuildHasher;

use serde_json::json;

use super::policy::{binomial_tail, round3};
use super::state::SellerState;
use super::{Emitter, Finding, Map};
use crate::config::{DripConfig, RatingConfig};
use crate::decode::{Event, Id, Millis, Review, DAY_MS};
use crate::window::{Counters, Span, TimedLog};

pub const RULE: &str = "rating_manipulation.drip";

/// The two suspicious classes of review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inflate,
    Attack,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Inflate => "inflate",
            Direction::Attack => "attack",
        }
    }

    /// Its series in the platform's and the seller's counters (0 is every review).
    fn series(self) -> usize {
        match self {
            Direction::Inflate => 1,
            Direction::Attack => 2,
        }
    }
}

/// What one review looked like when it arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    pub rating: u8,
    /// No earlier review by this buyer on any seller within `history_days`.
    pub first_review: bool,
    /// The review says the account is younger than `new_account_days`.
    pub new_account: bool,
    /// The running median star of the seller's established reviewers before this review, or the
    /// platform's while the seller's rests on fewer than `median_min_reviews`.
    pub median: f64,
    pub seller_median: bool,
    pub class: Option<Direction>,
}

/// A seller's running rating from its established reviewers (accounts that reviewed before and are
/// not new): how many gave each star, each weighing e^(−age / τ). Its centre is the weighted
/// median. Fresh accounts' reviews are the ones in question, so they never move the yardstick they
/// are measured by: a drip or an attack, however large, would otherwise drag a mean (or, past half
/// the reviews, a median) towards itself, and a seller hit by one-stars would see its honest fives
/// drift "far" from it.
#[derive(Debug, Clone, Copy, Default)]
struct Stars {
    weight: [f64; 5],
    at: Millis,
}

impl Stars {
    fn decay(&mut self, ts: Millis, tau_ms: f64) {
        if ts > self.at {
            let k = (-((ts - self.at) as f64) / tau_ms).exp();
            self.weight.iter_mut().for_each(|w| *w *= k);
            self.at = ts;
        }
    }

    fn total(&self) -> f64 {
        self.weight.iter().sum()
    }

    /// The weighted median star (the midpoint of two when the weights split exactly in half).
    fn median(&self) -> f64 {
        let half = self.total() / 2.0;
        let mut below = 0.0;
        for (i, w) in self.weight.iter().enumerate() {
            below += w;
            if below > half {
                return (i + 1) as f64;
            }
            if below == half {
                let next = (i + 1..5).find(|j| self.weight[*j] > 0.0).unwrap_or(i);
                return (i + 1 + next + 1) as f64 / 2.0;
            }
        }
        3.0
    }
}

/// The platform's side: who has reviewed before, every seller's running star histogram, and the base shares.
#[derive(Debug)]
pub struct Reviewers {
    /// 64-bit hash of the buyer id → day (since the epoch) of their latest review.
    last_review: Map<u64, u32>,
    hasher: foldhash::fast::FixedState,
    sellers: Map<Id, Stars>,
    /// Every review, inflate-class and attack-class reviews, in the window…
    platform: Counters<3>,
    /// …and the platform's star histogram of established reviewers over the same window.
    platform_stars: Counters<5>,
    span: Span,
    tau_ms: f64,
    history_days: u32,
    /// When the buyers and sellers are next combed for ones to forget: once a day of event time
    /// (the history is kept in whole days, and a faded histogram costs only its bytes meanwhile).
    /// Combing at every sweep was 80 % of the signal's cost.
    next_comb: Millis,
}

pub fn span(cfg: &DripConfig) -> Span {
    let days = cfg.window_days.ceil().max(1.0) as i64;
    Span::new((cfg.window_days * DAY_MS as f64) as i64, days)
}

impl Reviewers {
    pub fn new(cfg: &DripConfig) -> Self {
        Reviewers {
            last_review: Map::default(),
            hasher: foldhash::fast::FixedState::with_seed(0x5e11e7),
            sellers: Map::default(),
            platform: Counters::default(),
            platform_stars: Counters::default(),
            span: span(cfg),
            tau_ms: cfg.window_days * DAY_MS as f64,
            history_days: cfg.history_days.ceil() as u32,
            next_comb: Millis::MIN,
        }
    }

    /// Classes a review from what it was when it arrived, then records it. Every review of every
    /// seller comes here, whichever instance judges the seller.
    pub fn review(&mut self, cfg: &RatingConfig, seller_id: &str, r: &Review, ts: Millis) -> Features {
        let d = &cfg.drip;
        let day = ts.div_euclid(DAY_MS).clamp(0, u32::MAX as i64) as u32;
        let key = self.hasher.hash_one(&*r.buyer_id);
        let first_review = self.last_review.get(&key).is_none_or(|last| day.saturating_sub(*last) > self.history_days);
        let new_account = r.buyer_created_at.is_some_and(|c| ((ts - c) as f64) < cfg.new_account_days * DAY_MS as f64);
        let fresh = first_review || new_account;
        let tau = self.tau_ms;
        let own = self.sellers.get_mut(seller_id).map(|m| {
            m.decay(ts, tau);
            *m
        });
        // Effective reviews (each weighted by its age): a hair under a whole number is that number.
        let seller_median = own.is_some_and(|m| m.total() + 1e-6 >= d.median_min_reviews);
        let median = match own {
            Some(m) if seller_median => m.median(),
            _ => {
                let counts = self.platform_stars.counts(self.span, ts);
                let platform = Stars { weight: counts.map(|c| c as f64), at: ts };
                if platform.total() > 0.0 {
                    platform.median()
                } else {
                    f64::from(r.rating)
                }
            }
        };
        let distance = (f64::from(r.rating) - median).abs();
        let class = match r.rating {
            5 if fresh && (distance >= d.min_distance || new_account) => Some(Direction::Inflate),
            1 if fresh && distance >= d.min_distance => Some(Direction::Attack),
            _ => None,
        };
        self.platform.add_to(0, self.span, ts, 1);
        if let Some(c) = class {
            self.platform.add_to(c.series(), self.span, ts, 1);
        }
        // Only established reviewers set the yardstick: fresh accounts are the reviews in question.
        if !fresh {
            let star = usize::from(r.rating.clamp(1, 5)) - 1;
            let m = self.sellers.entry(seller_id.into()).or_default();
            m.decay(ts, tau);
            m.weight[star] += 1.0;
            self.platform_stars.add_to(star, self.span, ts, 1);
        }
        let slot = self.last_review.entry(key).or_insert(day);
        *slot = (*slot).max(day);
        Features { rating: r.rating, first_review, new_account, median, seller_median, class }
    }

    /// The platform's reviews and reviews of `class` in the window ending at `now`.
    fn base(&mut self, class: Direction, now: Millis) -> (u64, u64) {
        let c = self.platform.counts(self.span, now);
        (c[0], c[class.series()])
    }

    /// Forgets buyers silent for `history_days` and sellers whose histogram has decayed to nothing.
    pub fn sweep(&mut self, now: Millis) {
        self.platform.expire(self.span, now);
        self.platform_stars.expire(self.span, now);
        if now < self.next_comb {
            return;
        }
        self.next_comb = now.saturating_add(DAY_MS);
        let today = now.div_euclid(DAY_MS).max(0) as u32;
        let keep = self.history_days;
        self.last_review.retain(|_, day| today.saturating_sub(*day) <= keep);
        let tau = self.tau_ms;
        self.sellers.retain(|_, m| {
            m.decay(now, tau);
            m.total() >= 0.01
        });
    }

    pub fn buyers(&self) -> usize {
        self.last_review.len()
    }

    /// Heap bytes of the buyer history: the map's slots and control bytes.
    pub fn buyer_history_bytes(&self) -> usize {
        // hashbrown: buckets are the next power of two above capacity × 8/7, each one slot of the
        // entry and one control byte.
        let buckets = (self.last_review.capacity() * 8 / 7).next_power_of_two();
        buckets * (std::mem::size_of::<(u64, u32)>() + 1)
    }
}

/// A seller's own side: its reviews and suspicious reviews in the window, and the latest of them.
#[derive(Debug, Default)]
pub struct State {
    /// Every review, inflate-class, attack-class (for delivered orders).
    counts: Counters<3>,
    cited: TimedLog<Note>,
}

impl State {
    pub fn sweep(&mut self, span: Span, now: Millis) -> bool {
        self.counts.expire(span, now);
        self.cited.expire(span.len_ms, now);
        self.counts.is_empty() && self.cited.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Note {
    event_id: Id,
    order_id: Id,
    buyer_id: Id,
    features: Features,
    delivered: bool,
}

/// A review of a seller this instance judges, with its features from [`Reviewers::review`].
pub fn on_review(
    cfg: &RatingConfig,
    reviewers: &mut Reviewers,
    seller: &mut SellerState,
    seller_id: &str,
    (ev, r, f): (&Event, &Review, Features),
    em: &mut Emitter,
) {
    let d = &cfg.drip;
    let span = reviewers.span;
    let delivered = seller.orders.get(&r.order_id).is_some_and(|o| o.delivered);
    // A one-star review for a parcel that never came is a complaint: not counted as an attack.
    let counted = f.class.filter(|c| *c == Direction::Inflate || delivered);
    let st = &mut seller.rating.make().drip;
    st.counts.add_to(0, span, ev.ts, 1);
    let Some(class) = counted else { return };
    st.counts.add_to(class.series(), span, ev.ts, 1);
    let note = Note {
        event_id: ev.event_id.clone(),
        order_id: r.order_id.clone(),
        buyer_id: r.buyer_id.clone(),
        features: f,
        delivered,
    };
    st.cited.push(ev.ts, note);
    st.cited.expire(span.len_ms, ev.ts);
    let c = st.counts.counts(span, ev.ts);
    let (n, k) = (c[0], c[class.series()]);
    let (platform_n, platform_k) = reviewers.base(class, ev.ts);
    if platform_n < u64::from(d.min_platform_reviews) || k < u64::from(d.min_suspicious) {
        return;
    }
    let base = platform_k as f64 / platform_n as f64;
    let share = k as f64 / n as f64;
    if share < d.min_factor * base {
        return;
    }
    let chance = binomial_tail(n, k, base);
    if chance >= d.max_chance {
        return;
    }
    let score = ((k as f64 / f64::from(d.min_suspicious)) * (share / (d.min_factor * base))).sqrt();
    if em.suppressed(seller, RULE, ev.ts, cfg.severity.severity(score)) {
        return;
    }
    let cited = seller.rating.get().map(|s| cite(&s.drip, class, d.max_cited as usize)).unwrap_or_default();
    let evidence = json!({
        "direction": class.name(),
        "window_days": d.window_days,
        "seller": { "reviews": n, "suspicious": k, "share": round3(share) },
        "platform": { "reviews": platform_n, "suspicious": platform_k, "base_share": round3(base) },
        "chance_if_honest": chance,
        "thresholds": { "min_suspicious": d.min_suspicious, "min_factor": d.min_factor, "max_chance": d.max_chance,
                        "min_distance": d.min_distance, "new_account_days": cfg.new_account_days },
        "reviews": cited,
    });
    let days = cfg.new_account_days;
    let what = match class {
        Direction::Inflate => format!(
            "five-star reviews from accounts younger than {days} days, or from first-time reviewers far above its usual rating"
        ),
        Direction::Attack => format!(
            "one-star reviews of delivered orders from first-time reviewers or accounts younger than {days} days, far below its usual rating: the seller looks targeted"
        ),
    };
    let message = format!(
        "Seller {seller_id}: {k} of its {n} reviews in {} days are {what} ({:.0}% against {:.1}% platform-wide; chance if honest {chance:.1e}).",
        d.window_days,
        share * 100.0,
        base * 100.0
    );
    em.emit(seller_id, seller, Finding::at_event(RULE, &cfg.severity, score, ev, evidence, message));
}

/// The latest cited reviews of `class`, newest first, with what made each suspicious.
fn cite(st: &State, class: Direction, max: usize) -> Vec<serde_json::Value> {
    let notes = st.cited.iter().rev().filter(|(_, x)| x.features.class == Some(class)).take(max);
    notes
        .map(|(t, x)| {
            let f = &x.features;
            json!({ "event_id": &*x.event_id, "order_id": &*x.order_id, "buyer_id": &*x.buyer_id,
                    "at": crate::alert::rfc3339(*t), "rating": f.rating, "first_review": f.first_review,
                    "new_account": f.new_account, "median_before": f.median,
                    "median_of": if f.seller_median { "seller" } else { "platform" },
                    "delivered_before": x.delivered })
        })
        .collect()
}
