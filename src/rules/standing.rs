//! Seller standing: each seller's trailing 30-day record (positive feedback, on-time dispatch,
//! replies in time, disputes, valid tracked shipments, open violations) and Good Seller
//! eligibility, published to a compacted topic (key = seller id) when it changes materially.
//! Ranking and badge systems consume it; it is state, not an alert.

use serde::{Deserialize, Serialize};

use crate::alert::{rfc3339, Severity};
use crate::config::StandingConfig;
use crate::decode::{Millis, DAY_MS};
use crate::window::{Counter, Span};

/// A rate over the window: `hits` of `total`.
#[derive(Debug, Default)]
struct Rate {
    hits: Counter,
    total: Counter,
}

impl Rate {
    fn record(&mut self, span: Span, ts: Millis, hit: bool) {
        self.total.add(span, ts, 1);
        if hit {
            self.hits.add(span, ts, 1);
        }
    }

    fn read(&mut self, span: Span, now: Millis) -> (Option<f64>, u64) {
        let total = self.total.count(span, now);
        let hits = self.hits.count(span, now);
        ((total > 0).then(|| hits as f64 / total as f64), total)
    }

    fn is_empty(&self) -> bool {
        self.total.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct State {
    feedback: Rate,
    dispatch: Rate,
    replies: Rate,
    disputes: Counter,
    orders: Counter,
    tracking: Rate,
    violations: Vec<(Millis, &'static str, Severity)>,
    first_seen: Option<Millis>,
    last: Option<(Millis, Standing)>,
    version: u64,
}

/// The published record (JSON on the standing topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    pub seller_id: String,
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
        self.first_seen = Some(self.first_seen.map_or(ts, |f| f.min(ts)));
    }
    pub fn order(&mut self, cfg: &StandingConfig, ts: Millis) {
        self.orders.add(span(cfg), ts, 1);
    }
    pub fn dispute(&mut self, cfg: &StandingConfig, ts: Millis) {
        self.disputes.add(span(cfg), ts, 1);
    }
    pub fn review(&mut self, cfg: &StandingConfig, ts: Millis, rating: u8) {
        self.feedback.record(span(cfg), ts, rating >= cfg.positive_min_rating);
    }
    pub fn shipment(&mut self, cfg: &StandingConfig, ts: Millis, valid_tracking: bool) {
        self.tracking.record(span(cfg), ts, valid_tracking);
    }
    pub fn due(&mut self, cfg: &StandingConfig, ts: Millis, on_time: bool) {
        self.dispatch.record(span(cfg), ts, on_time);
    }
    pub fn turn(&mut self, cfg: &StandingConfig, ts: Millis, answered: bool) {
        self.replies.record(span(cfg), ts, answered);
    }
    pub fn violation(&mut self, ts: Millis, rule: &'static str, severity: Severity) {
        self.violations.push((ts, rule, severity));
    }

    /// The current record, if it differs materially from the last one published (or none was).
    pub fn publish(&mut self, cfg: &StandingConfig, seller_id: &str, now: Millis) -> Option<Standing> {
        if self.last.as_ref().is_some_and(|(t, _)| now - t < (cfg.min_interval_minutes * 60_000.0) as i64) {
            return None;
        }
        let next = self.snapshot(cfg, seller_id, now);
        let material = match &self.last {
            None => true,
            Some((_, prev)) => differs(prev, &next, cfg.material_change),
        };
        if !material {
            return None;
        }
        self.version += 1;
        let next = Standing { version: self.version, ..next };
        self.last = Some((now, next.clone()));
        Some(next)
    }

    fn snapshot(&mut self, cfg: &StandingConfig, seller_id: &str, now: Millis) -> Standing {
        let sp = span(cfg);
        let (feedback, reviews) = self.feedback.read(sp, now);
        let (dispatch, due) = self.dispatch.read(sp, now);
        let (replies, messages) = self.replies.read(sp, now);
        let (tracking, shipments) = self.tracking.read(sp, now);
        let orders = self.orders.count(sp, now);
        let disputes = self.disputes.count(sp, now);
        self.violations.retain(|(t, _, _)| now - t < sp.len_ms);
        let mut open = std::collections::BTreeMap::new();
        for (_, rule, _) in &self.violations {
            *open.entry(rule.to_string()).or_default() += 1;
        }
        let high = self.violations.iter().any(|(_, _, s)| *s >= Severity::High);
        let mut unmet = Vec::new();
        let age_days = self.first_seen.map(|f| (now - f) as f64 / DAY_MS as f64);
        if age_days.is_some_and(|d| d < cfg.good_seller_min_age_days) {
            unmet.push(format!("active for less than {} days", cfg.good_seller_min_age_days));
        }
        if reviews < cfg.good_seller_min_reviews as u64 {
            unmet.push(format!("fewer than {} reviews", cfg.good_seller_min_reviews));
        } else if feedback.is_some_and(|f| f < cfg.good_seller_min_positive) {
            unmet.push(format!("positive feedback below {:.0}%", cfg.good_seller_min_positive * 100.0));
        }
        if high {
            unmet.push("an open high-severity violation".into());
        }
        let round = |x: Option<f64>| x.map(|v| (v * 1000.0).round() / 1000.0);
        Standing {
            seller_id: seller_id.to_string(),
            as_of: rfc3339(now),
            version: self.version,
            window_days: cfg.window_days,
            positive_feedback_rate: round(feedback),
            reviews,
            on_time_dispatch_rate: round(dispatch),
            orders_due: due,
            replied_in_time_rate: round(replies),
            buyer_messages: messages,
            dispute_rate: round((orders > 0).then(|| disputes as f64 / orders as f64)),
            orders,
            disputes,
            valid_tracking_rate: round(tracking),
            shipments,
            open_violations: open,
            good_seller: unmet.is_empty(),
            good_seller_unmet: unmet,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.feedback.is_empty()
            && self.dispatch.is_empty()
            && self.replies.is_empty()
            && self.tracking.is_empty()
            && self.orders.is_empty()
            && self.disputes.is_empty()
            && self.violations.is_empty()
    }

    pub fn sweep(&mut self, cfg: &StandingConfig, now: Millis) -> bool {
        let sp = span(cfg);
        for r in [&mut self.feedback, &mut self.dispatch, &mut self.replies, &mut self.tracking] {
            r.read(sp, now);
        }
        self.orders.expire(sp, now);
        self.disputes.expire(sp, now);
        self.violations.retain(|(t, _, _)| now - t < sp.len_ms);
        self.is_empty()
    }
}

/// Material change: a rate moved by `delta` or more (or appeared), the open violations changed, or
/// eligibility (or the reasons against it) changed.
fn differs(a: &Standing, b: &Standing, delta: f64) -> bool {
    let moved = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() >= delta,
        (None, None) => false,
        _ => true,
    };
    moved(a.positive_feedback_rate, b.positive_feedback_rate)
        || moved(a.on_time_dispatch_rate, b.on_time_dispatch_rate)
        || moved(a.replied_in_time_rate, b.replied_in_time_rate)
        || moved(a.dispute_rate, b.dispute_rate)
        || moved(a.valid_tracking_rate, b.valid_tracking_rate)
        || a.open_violations != b.open_violations
        || a.good_seller != b.good_seller
        || a.good_seller_unmet != b.good_seller_unmet
}
