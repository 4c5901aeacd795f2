//! `small_parcel_restriction` (seed rule, exact: the platform restricts small parcels for a seller
//! with two or more disputes in the last month due to an expiring protection period). The alert
//! says that the restriction applies and until when: the moment fewer than `min_disputes` such
//! disputes remain in the trailing window.

use serde_json::json;

use super::policy::excess;
use super::state::SellerState;
use super::{Emitter, Finding};
use crate::alert::rfc3339;
use crate::config::SmallParcelConfig;
use crate::decode::Id;
use crate::decode::{hours_ms, DisputeReason, Event, Millis};
use crate::window::TimedLog;

#[derive(Debug, Default)]
pub struct State {
    disputes: TimedLog<Id>,
}

impl State {
    pub fn sweep(&mut self, window_ms: i64, now: Millis) -> bool {
        self.disputes.expire(window_ms, now);
        self.disputes.is_empty()
    }
}

pub fn on_dispute(
    cfg: &SmallParcelConfig,
    seller: &mut SellerState,
    seller_id: &str,
    ev: &Event,
    (order_id, reason): (&str, DisputeReason),
    em: &mut Emitter,
) {
    if reason != DisputeReason::ProtectionExpired {
        return;
    }
    let len = hours_ms(cfg.window_hours);
    let st = &mut seller.small_parcel.make().disputes;
    st.push(ev.ts, order_id.into());
    st.expire(len, ev.ts);
    let n = st.len();
    let min = cfg.min_disputes as usize;
    if n < min {
        return;
    }
    // The restriction lasts while `min` disputes stay in the window: until the `min`-th newest leaves.
    let until = st.iter().rev().nth(min - 1).map_or(ev.ts, |(t, _)| *t) + len;
    let evidence = json!({
        "restriction": "small_parcels",
        "restricted_until": rfc3339(until),
        "window_hours": cfg.window_hours,
        "protection_expired_disputes": st.iter().map(|(t, o)| json!({ "order_id": &**o, "opened_at": rfc3339(*t) })).collect::<Vec<_>>(),
        "thresholds": { "min_disputes": cfg.min_disputes },
    });
    let message = format!(
        "Seller {seller_id}: {n} disputes for an expired protection period in {} days; small parcels are restricted until {}.",
        cfg.window_hours / 24.0,
        rfc3339(until)
    );
    let score = excess(n as f64, min as f64);
    let f = Finding::at_event("small_parcel_restriction", &cfg.severity, score, ev, evidence, message);
    em.emit(seller_id, seller, f);
}
