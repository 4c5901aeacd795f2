//! `fake_shipment`: shipments that are not real (seed rules: ship on time with real international
//! tracking numbers, by the method the buyer chose; do not fake dispatches).
//!
//! Per-shipment signals: the tracking number is invalid for its carrier (or the carrier is not one
//! that assigns international tracking numbers), the number was used on another order within the
//! reuse window, no carrier scan arrived within the scan deadline (an event-time timer), or the
//! shipping method differs from the buyer's choice. A shipment counts once however many signals it
//! has. Seller alert: in the window, ≥ `min_flagged` flagged shipments that are ≥ `min_flagged_ratio`
//! of the seller's shipments.

use serde_json::json;

use super::policy::{count_and_ratio, round3};
use super::state::SellerState;
use super::tracking::{normalize_cow, CarrierRegistry, TrackingVerdict};
use super::{Emitter, Finding};
use crate::config::{Config, FakeShipmentConfig};
use crate::decode::Id;
use crate::decode::{hours_ms, Event, Millis, OrderShipped};
use crate::window::{RateWindow, Span};

/// Flagged shipments out of all shipments in the window.
#[derive(Debug, Default)]
pub struct State {
    window: RateWindow<Flagged>,
}

impl State {
    /// True when nothing is left in the windows.
    pub fn sweep(&mut self, span: Span, now: Millis) -> bool {
        self.window.sweep(span, now)
    }
}

#[derive(Debug, Clone)]
struct Flagged {
    order_id: Id,
    tracking_number: Id,
    carrier: Id,
    invalid: Option<TrackingVerdict>,
    reused_by: Option<(Id, Id)>,
    method: Option<(Id, Id)>,
    no_scan: bool,
}

impl Flagged {
    fn signals(&self) -> Vec<&'static str> {
        let mut s = Vec::with_capacity(4);
        if self.invalid.is_some() {
            s.push("invalid_tracking");
        }
        if self.reused_by.is_some() {
            s.push("reused_tracking");
        }
        if self.no_scan {
            s.push("no_scan");
        }
        if self.method.is_some() {
            s.push("method_mismatch");
        }
        s
    }

    fn evidence(&self) -> serde_json::Value {
        let mut v = json!({
            "order_id": &*self.order_id,
            "tracking_number": &*self.tracking_number,
            "carrier": &*self.carrier,
            "signals": self.signals(),
        });
        if let Some(verdict) = self.invalid {
            v["tracking_verdict"] = json!(verdict.as_str());
        }
        if let Some((order, seller)) = &self.reused_by {
            v["reused_from"] = json!({ "order_id": &**order, "seller_id": &**seller });
        }
        if let Some((chosen, used)) = &self.method {
            v["method_chosen"] = json!(&**chosen);
            v["method_used"] = json!(&**used);
        }
        v
    }
}

pub(super) fn span(cfg: &FakeShipmentConfig) -> Span {
    RateWindow::<Flagged>::span(hours_ms(cfg.window_hours))
}

/// Handles `order_shipped`; returns the event time at which the scan deadline expires, and
/// whether the tracking number was valid and unused (for the seller's standing).
#[allow(clippy::too_many_arguments)]
pub fn on_shipped(
    cfg: &Config,
    carriers: &CarrierRegistry,
    market: &mut super::Market,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    s: &OrderShipped,
    em: &mut Emitter,
) -> (Millis, bool) {
    let fc = &cfg.fake_shipment;
    seller.fake_shipment.make().window.count_total(span(fc), ev.ts);

    let verdict = carriers.check(&s.carrier, &s.tracking_number);
    let number = normalize_cow(&s.tracking_number);
    let reused = market.use_tracking(&number, &s.order_id, seller_id, ev.ts);
    let method = match seller.orders.get(&s.order_id).and_then(|o| o.shipping_method.as_deref()) {
        Some(chosen) if fc.check_shipping_method && !chosen.eq_ignore_ascii_case(&s.shipping_method) => {
            Some((chosen.into(), s.shipping_method.clone()))
        }
        _ => None,
    };
    let invalid = (!verdict.is_valid()).then_some(verdict);
    let tracking_ok = invalid.is_none() && reused.is_none();
    // Most shipments are clean: the record (with its copied ids) is built only for a flagged one.
    if !tracking_ok || method.is_some() {
        let flag = Flagged {
            order_id: s.order_id.clone(),
            tracking_number: number.into(),
            carrier: s.carrier.clone(),
            invalid,
            reused_by: reused.map(|u| (u.order_id, u.seller_id)),
            method,
            no_scan: false,
        };
        seller.fake_shipment.make().window.flag(ev.ts, flag);
        evaluate(fc, seller, seller_id, ev.ts, ev.event_id.to_string(), em);
    }
    (ev.ts + hours_ms(fc.scan_deadline_hours), tracking_ok)
}

/// The scan deadline of a shipment passed: flag it if the carrier never scanned it.
pub fn on_scan_deadline(
    cfg: &Config,
    seller: &mut SellerState,
    seller_id: &str,
    order_id: &str,
    shipped_event: &str,
    due: Millis,
    em: &mut Emitter,
) {
    let fc = &cfg.fake_shipment;
    let Some(order) = seller.orders.get(order_id) else {
        return;
    };
    if order.scanned || order.delivered || order.cancelled {
        return;
    }
    let (tracking_number, carrier) = (order.tracking.clone(), order.carrier.clone());
    let log = &mut seller.fake_shipment.make().window.flagged;
    let mut found = false;
    for (_, f) in log.iter_mut().filter(|(_, f)| &*f.order_id == order_id) {
        f.no_scan = true;
        found = true;
    }
    if !found {
        log.push(
            due,
            Flagged {
                order_id: order_id.into(),
                tracking_number: tracking_number.unwrap_or_default(),
                carrier: carrier.unwrap_or_default(),
                invalid: None,
                reused_by: None,
                method: None,
                no_scan: true,
            },
        );
    }
    evaluate(fc, seller, seller_id, due, format!("{shipped_event}#no_scan"), em);
}

fn evaluate(
    fc: &FakeShipmentConfig,
    seller: &mut SellerState,
    seller_id: &str,
    now: Millis,
    trigger: String,
    em: &mut Emitter,
) {
    let (flagged, shipments) = seller.fake_shipment.make().window.counts(span(fc), now);
    let Some(score) = count_and_ratio(flagged, shipments, fc.min_flagged, fc.min_flagged_ratio) else {
        return;
    };
    // The evidence lists every flagged shipment in the window: build it only if it can go out.
    if em.suppressed(seller, "fake_shipment", now, fc.severity.severity(score)) {
        return;
    }
    let st = &seller.fake_shipment.make().window;
    let mut by_signal = serde_json::Map::new();
    for (_, f) in st.flagged.iter() {
        for s in f.signals() {
            let n = by_signal.entry(s).or_insert(json!(0));
            *n = json!(n.as_u64().unwrap_or(0) + 1);
        }
    }
    let summary = by_signal.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ");
    let ratio = flagged as f64 / shipments as f64;
    let evidence = json!({
        "window_hours": fc.window_hours,
        "flagged_shipments": flagged,
        "shipments": shipments,
        "flagged_ratio": round3(ratio),
        "thresholds": { "min_flagged": fc.min_flagged, "min_flagged_ratio": fc.min_flagged_ratio },
        "signals": by_signal,
        "shipments_flagged": st.flagged.iter().map(|(t, f)| {
            let mut e = f.evidence();
            e["flagged_at"] = json!(crate::alert::rfc3339(*t));
            e
        }).collect::<Vec<_>>(),
    });
    let message = format!(
        "Seller {seller_id}: {flagged} of {shipments} shipments in the last {}h look fake ({summary}); policy is ≥{} and ≥{:.0}%.",
        fc.window_hours,
        fc.min_flagged,
        fc.min_flagged_ratio * 100.0
    );
    em.emit(
        seller_id,
        seller,
        Finding {
            rule: "fake_shipment",
            score,
            severity: fc.severity.severity(score),
            trigger,
            event_time: now,
            evidence,
            message,
        },
    );
}
