//! `slow_response` (seed rule: respond to buyer messages within 24 hours). A buyer message opens a
//! turn in its conversation with an event-time timer at `reply_within_hours`; a seller reply closes
//! it. Seller alert: ≥ `min_unanswered` turns unanswered in time and ≥ `min_ratio` of the turns in
//! the window. Further buyer messages while a turn is open do not restart its clock.

use serde_json::json;

use super::policy::RatePolicy;
use super::state::SellerState;
use super::Emitter;
use crate::alert::rfc3339;
use crate::config::SlowResponseConfig;
use crate::decode::Id;
use crate::decode::{hours_ms, Millis};
use crate::window::{RateWindow, Span};

#[derive(Debug, Default)]
pub struct State {
    /// Open turns: conversation → time of the first unanswered buyer message.
    open: super::Map<Id, Millis>,
    /// Turns answered before their deadline fired (conversation, opened): the timer counts them.
    answered: super::Set<(Id, Millis)>,
    window: RateWindow<(Id, Millis)>,
}

impl State {
    /// `turn_ms`: see [`turn_ms`].
    pub fn sweep(&mut self, turn_ms: i64, span: Span, now: Millis) -> bool {
        self.open.retain(|_, t| *t > now - turn_ms);
        self.answered.retain(|(_, t)| *t > now - turn_ms);
        self.window.sweep(span, now) && self.open.is_empty() && self.answered.is_empty()
    }
}

/// A turn older than the window plus the reply time can no longer count anywhere.
pub(super) fn turn_ms(cfg: &SlowResponseConfig) -> i64 {
    hours_ms(cfg.window_hours + cfg.reply_within_hours)
}

pub(super) fn span(cfg: &SlowResponseConfig) -> Span {
    RateWindow::<()>::span(hours_ms(cfg.window_hours))
}

/// Returns the reply deadline to schedule when this message opens a turn.
pub fn on_buyer_message(
    cfg: &SlowResponseConfig,
    seller: &mut SellerState,
    conversation: &str,
    ts: Millis,
) -> Option<Millis> {
    let st = seller.slow_response.make();
    if st.open.contains_key(conversation) {
        return None;
    }
    st.open.insert(conversation.into(), ts);
    st.window.count_total(span(cfg), ts);
    Some(ts + hours_ms(cfg.reply_within_hours))
}

pub fn on_reply(seller: &mut SellerState, conversation: &str) {
    // Most replies answer nothing open: they must not create the state.
    let Some(st) = seller.slow_response.get_mut() else { return };
    if let Some(opened) = st.open.remove(conversation) {
        st.answered.insert((conversation.into(), opened));
    }
}

/// Timer: the turn opened at `opened` is due. Returns whether it was answered in time (`None` for a
/// stale timer). Alerts only when enabled.
pub fn on_deadline(
    cfg: &SlowResponseConfig,
    seller: &mut SellerState,
    seller_id: &str,
    (conversation, opened, message_event): (&str, Millis, &str),
    due: Millis,
    em: &mut Emitter,
) -> Option<bool> {
    // No state: nothing open or answered, a stale timer (as with an empty state).
    let st = seller.slow_response.get_mut()?;
    let answered = match st.answered.remove(&(conversation.into(), opened)) {
        true => true,
        false if st.open.get(conversation) == Some(&opened) => false,
        false => return None,
    };
    if answered {
        return Some(true);
    }
    st.open.remove(conversation);
    if !cfg.enabled {
        return Some(false);
    }
    st.window.flag(due, (conversation.into(), opened));
    let counts = st.window.counts(span(cfg), due);
    let items = |s: &SellerState| {
        let flagged = s.slow_response.get().into_iter().flat_map(|st| st.window.flagged.iter());
        flagged.map(|(_, (c, o))| json!({ "conversation_id": &**c, "buyer_message_at": rfc3339(*o) })).collect()
    };
    let policy = RatePolicy {
        rule: "slow_response",
        window_hours: cfg.window_hours,
        min_count: cfg.min_unanswered,
        min_ratio: cfg.min_ratio,
        scale: &cfg.severity,
        flagged_as: "not answered within the reply deadline",
        out_of: "buyer messages",
        chance: Some((cfg.honest_rate, cfg.max_chance)),
    };
    policy.emit(em, seller, seller_id, counts, items, || format!("{message_event}#no_reply"), due);
    Some(false)
}
