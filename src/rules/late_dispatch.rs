//! `late_dispatch` (seed rule: fulfil all orders within a clearly specified time frame). Each order
//! gets an event-time timer at its promised dispatch time; if it has not shipped (nor been
//! cancelled) by then it is late. Seller alert: ≥ `min_late` late and ≥ `min_ratio` of the orders
//! that fell due in the window — small shops make small samples.

use serde_json::json;

use super::policy::RatePolicy;
use super::state::SellerState;
use super::Emitter;
use crate::alert::rfc3339;
use crate::config::LateDispatchConfig;
use crate::decode::Id;
use crate::decode::{hours_ms, Millis};
use crate::window::{RateWindow, Span};

#[derive(Debug, Default)]
pub struct State {
    window: RateWindow<(Id, Millis)>,
}

impl State {
    pub fn sweep(&mut self, span: Span, now: Millis) -> bool {
        self.window.sweep(span, now)
    }
}

pub(super) fn span(cfg: &LateDispatchConfig) -> Span {
    RateWindow::<()>::span(hours_ms(cfg.window_hours))
}

/// Timer: order `order_id` (placed by event `placed_event`) is due now. Returns whether it shipped
/// on time (`None` when it does not count: unknown or cancelled). Alerts only when enabled.
pub fn on_due(
    cfg: &LateDispatchConfig,
    seller: &mut SellerState,
    seller_id: &str,
    (order_id, placed_event): (&str, &str),
    due: Millis,
    em: &mut Emitter,
) -> Option<bool> {
    let order = seller.orders.get(order_id)?;
    if order.cancelled {
        return None;
    }
    let late = order.shipped_ts.is_none_or(|t| t > due);
    if !cfg.enabled {
        return Some(!late);
    }
    let placed = order.placed_ts;
    let st = &mut seller.late_dispatch.make().window;
    st.count_total(span(cfg), due);
    if !late {
        return Some(true);
    }
    st.flag(due, (order_id.into(), placed));
    let counts = st.counts(span(cfg), due);
    let items = |s: &SellerState| {
        let flagged = s.late_dispatch.get().into_iter().flat_map(|st| st.window.flagged.iter());
        flagged
            .map(|(t, (o, p))| json!({ "order_id": &**o, "placed_at": rfc3339(*p), "due_at": rfc3339(*t) }))
            .collect()
    };
    let policy = RatePolicy {
        rule: "late_dispatch",
        window_hours: cfg.window_hours,
        min_count: cfg.min_late,
        min_ratio: cfg.min_ratio,
        scale: &cfg.severity,
        flagged_as: "not shipped by their promised dispatch time",
        out_of: "orders that fell due",
        chance: Some((cfg.honest_rate, cfg.max_chance)),
    };
    policy.emit(em, seller, seller_id, counts, items, || format!("{placed_event}#late"), due);
    Some(false)
}
